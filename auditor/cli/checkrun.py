"""`dropout-audit check` from options to exit code: configuration, discovery, audit,
baseline, fixes and reports.

Kept out of cli.py so the command's declaration stays a list of options, and so the order
of precedence (command line over configuration file over defaults) lives in one place.

Imports inside functions (`cli.progress`, `core.catalogue`, `pathspec`, `report`,
`report.locations`, `run.baseline`, ...) are deferred for start-up time: a run that never takes
that path never pays for them.
"""

from __future__ import annotations

import os
import sys

from auditor.core.record import Record

FORMATS = ("full", "concise", "json", "sarif", "github", "gitlab", "junit")


class Request(Record):
    """What `check` was asked to do: click's options for `check`, with click's defaults
    (auditor/cli/launch.py builds one without click). `formats`: the raw --format values, FMT or
    FMT:FILE."""

    __slots__ = ("paths", "formats", "output_file", "select", "ignore", "extend_select", "fail_on",
                 "exit_zero", "statistics", "rules_dirs", "max_file_size", "config", "fix", "diff",
                 "unsafe_fixes", "baseline", "write_baseline", "root", "no_progress", "jobs", "no_cache",
                 "cache_dir", "exclude", "extend_exclude", "force_exclude", "quiet", "verbose", "color",
                 "stdin_filename", "show_files", "show_settings")

    def __init__(self, paths: tuple = (), formats: tuple = (), output_file: str | None = None,
                 select: tuple = (), ignore: tuple = (), extend_select: tuple = (),
                 fail_on: str | None = None, exit_zero: bool = False, statistics: bool = False,
                 rules_dirs: tuple = (), max_file_size: int | None = None, config: str | None = None,
                 fix: bool = False, diff: bool = False, unsafe_fixes: bool = False,
                 baseline: str | None = None, write_baseline: str | None = None, root: str | None = None,
                 no_progress: bool = False, jobs: int | None = None, no_cache: bool = False,
                 cache_dir: str | None = None, exclude: tuple = (), extend_exclude: tuple = (),
                 force_exclude: bool = False, quiet: bool = False, verbose: bool = False, color: str = "auto",
                 stdin_filename: str | None = None, show_files: bool = False, show_settings: bool = False):
        self.paths = paths
        self.formats = formats
        self.output_file = output_file
        self.select = select
        self.ignore = ignore
        self.extend_select = extend_select
        self.fail_on = fail_on
        self.exit_zero = exit_zero
        self.statistics = statistics
        self.rules_dirs = rules_dirs
        self.max_file_size = max_file_size
        self.config = config
        self.fix = fix
        self.diff = diff
        self.unsafe_fixes = unsafe_fixes
        self.baseline = baseline
        self.write_baseline = write_baseline
        self.root = root
        self.no_progress = no_progress
        self.jobs = jobs
        self.no_cache = no_cache
        self.cache_dir = cache_dir
        self.exclude = exclude
        self.extend_exclude = extend_exclude
        self.force_exclude = force_exclude
        self.quiet = quiet
        self.verbose = verbose
        self.color = color
        self.stdin_filename = stdin_filename
        self.show_files = show_files
        self.show_settings = show_settings

    @property
    def reads_stdin(self) -> bool:
        """`check - --stdin-filename PATH` (or --stdin-filename alone): the text comes from stdin."""
        return self.paths == ("-",) or (not self.paths and self.stdin_filename is not None)


def split_codes(values) -> tuple:
    out = []
    for v in values:
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return tuple(out)


def parse_formats(values, output_file) -> list:
    """[(format, file or None)]: `--format sarif:out.sarif` or `--format sarif -o out.sarif`."""
    pairs = []
    for value in values or ("full",):
        fmt, sep, target = value.partition(":")
        if fmt not in FORMATS:
            raise UsageProblem(f"--format: '{fmt}' is not one of {', '.join(FORMATS)}")
        pairs.append((fmt, target if sep and target else None))
    if output_file:
        free = [i for i, (_, target) in enumerate(pairs) if target is None]
        if not free:
            raise UsageProblem("--output-file: every --format already names its file")
        pairs[free[-1]] = (pairs[free[-1]][0], output_file)  # the --format it follows
    if sum(1 for _, target in pairs if target is None) > 1:
        raise UsageProblem("--format: only one format can go to standard output; give the others a file "
                               "(--format FMT:FILE)")
    return pairs


def _config(req: Request):
    start = req.stdin_filename if req.reads_stdin and req.stdin_filename else (req.paths[0] if req.paths else ".")
    return load_config(req.config, start)


def load_config(config: str | None, start: str):
    """The validated configuration (`config.Loaded`) given by --config, else the nearest one
    above `start`; None when there is none. Raises ConfigProblem. The language server loads
    it the same way for a buffer's file."""
    from auditor.run import config_file

    try:
        if config:
            found = (config, config_file.read(config))
        else:
            found = config_file.find(start)
    except config_file.ConfigFileError as exc:
        raise ConfigProblem(str(exc)) from None
    if found is None:
        return None
    from auditor.run import config

    try:
        return config.load(*found)
    except config.ConfigError as exc:
        raise ConfigProblem(str(exc)) from None


def _check_selectors(req: Request, loaded, rules) -> None:
    """Every selector must name a rule: one typo in `--select` used to turn every rule off.
    On the command line it is a usage error, in the configuration a configuration error;
    both exit 2 with the selector and the closest real ones."""
    from auditor.core.selectors import UnknownSelector, check

    try:
        for option, values in (("--select", req.select), ("--ignore", req.ignore),
                               ("--extend-select", req.extend_select)):
            check(split_codes(values), rules, option)
    except UnknownSelector as exc:
        raise UsageProblem(str(exc)) from None
    if loaded is None:
        return
    cfg = loaded.cfg
    prefix = loaded.key_prefix()
    try:
        for key, values in (("select", cfg.select), ("ignore", cfg.ignore), ("extend-select", cfg.extend_select)):
            check(values or (), rules, f"{prefix}{key}")
        for pattern, values in cfg.per_file_ignores.items():
            check(values, rules, f'{prefix}per-file-ignores."{pattern}"')
    except UnknownSelector as exc:
        raise ConfigProblem(str(exc)) from None


def siblings(files, suffixes) -> list:
    """The given files plus the readable files beside them, grouped by directory: setup-level
    rules compare a recipe with the config.json next to it even when only the recipe is staged.
    Paths are normalised so that one directory is one group, however it was spelled."""
    from auditor.setup.resolve import directory_of

    out = {os.path.normpath(p) for p in files}
    for directory in {directory_of(p) for p in out}:
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    if (entry.name.lower().endswith(suffixes) and not entry.is_symlink()
                            and entry.is_file(follow_symlinks=False)):
                        out.add(os.path.normpath(os.path.join(directory, entry.name)))
        except OSError:
            continue
    return sorted(out, key=lambda p: (directory_of(p), os.path.basename(p)))


_LINKER_SUFFIXES = (".sh", ".py")
_LINKER_MAX_BYTES = 1 << 20


def linkers(files, root: str) -> list:
    """Scripts in the parent directories of the given files (up to the root) whose bytes name
    one of them: a launch script one level up running the staged recipe, a script parsing the
    staged YAML. Read so that the setup graph can follow their links forwards to the staged
    file; only the given files are reported. A byte scan of a few directories' scripts, not a
    walk of the repository (siblings are read already)."""
    from auditor.setup.resolve import directory_of

    root_real = os.path.realpath(root)
    names = {}
    for path in files:
        directory = directory_of(os.path.normpath(path))
        for _ in range(32):
            real = os.path.realpath(directory)
            if real == root_real or not real.startswith(root_real.rstrip(os.sep) + os.sep):
                break
            directory = os.path.dirname(directory) or "."
            names.setdefault(directory, set()).add(os.path.basename(path).encode())
    out = []
    for directory, wanted in names.items():
        try:
            with os.scandir(directory) as it:
                entries = [e for e in it if e.name.endswith(_LINKER_SUFFIXES) and not e.is_symlink()
                           and e.is_file(follow_symlinks=False)]
            for entry in entries:
                if entry.stat(follow_symlinks=False).st_size > _LINKER_MAX_BYTES:
                    continue
                with open(entry.path, "rb") as fh:
                    data = fh.read(_LINKER_MAX_BYTES)
                if any(name in data for name in wanted):
                    out.append(os.path.normpath(os.path.join(directory, entry.name)))
        except OSError:
            continue
    return out


def with_linkers(files: list, linkers: list) -> list:
    from auditor.setup.resolve import directory_of

    merged = set(files) | set(linkers)
    return sorted(merged, key=lambda p: (directory_of(p), os.path.basename(p)))


def excluded(files, patterns, root: str) -> list:
    """Drop files matching the configured excludes, relative to the config file's folder
    (not to the path walked), and explicit files too, so a pre-commit hook honours them."""
    import pathspec

    from auditor.report.locations import relative

    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    return [p for p in files if not spec.match_file(relative(p, root))]


class UsageProblem(Exception):
    """A command line that cannot run: the CLI shows it with its usage text, exit code 2.

    This module raises plain exceptions rather than click's so that a plain `check PATHS`
    (the pre-commit shape) can run without importing click (auditor/cli/launch.py)."""


class ConfigProblem(Exception):
    """Bad configuration, baseline or output target: exit code 2, like a usage error."""


def _say(message: str) -> None:
    """stderr, with control characters of file names and quoted text shown escaped."""
    from auditor.report.safe_text import terminal_safe

    print(terminal_safe(message), file=sys.stderr, flush=True)


def _scheduling(req: Request, engine, loaded=None):
    """(jobs, cache) for this run. Fixing, diffing and baselines keep per-file state in the
    engine (what each file held, how many baseline entries were used), which worker processes
    and cached results would not bring back, so those runs are serial and uncached."""
    stateful = req.fix or req.diff or req.write_baseline or engine.options.baseline is not None
    if stateful:
        return 1, None
    jobs = req.jobs
    if jobs is None:
        from auditor.run.parallel import default_jobs

        jobs = default_jobs()
    cache = None
    if not req.no_cache:
        from auditor.run.cache import Cache

        cache = Cache.for_engine(engine, req.cache_dir or _project_cache_dir(req, loaded))
    return jobs, cache


def _project_cache_dir(req: Request, loaded) -> str:
    """The findings cache lives at the project root, as ruff's does, not wherever the command
    was started: the configuration file's folder, else the nearest folder above the first path
    holding .git or pyproject.toml, else the current directory."""
    from auditor.run.cache import DEFAULT_DIR

    if loaded is not None:
        return os.path.join(loaded.root, DEFAULT_DIR)
    here = os.path.abspath(req.paths[0] if req.paths else ".")
    if not os.path.isdir(here):
        here = os.path.dirname(here)
    while True:
        if os.path.exists(os.path.join(here, ".git")) or os.path.isfile(os.path.join(here, "pyproject.toml")):
            return os.path.relpath(os.path.join(here, DEFAULT_DIR))
        parent = os.path.dirname(here)
        if parent == here:
            return DEFAULT_DIR
        here = parent


_COLOR = {"auto": None, "always": True, "never": False}


def _verbose(req: Request, message: str) -> None:
    if req.verbose:
        _say(f"dropout-audit: {message}")


def _usage_checks(req: Request) -> None:
    if req.color not in _COLOR:
        raise UsageProblem(f"--color: '{req.color}' is not one of auto, always, never")
    if "-" in req.paths and req.paths != ("-",):
        raise UsageProblem("`-` (read standard input) cannot be combined with other paths")
    if req.reads_stdin:
        if not req.stdin_filename:
            raise UsageProblem("reading standard input (`-`) needs --stdin-filename PATH: the name decides how "
                               "the text is read and where findings point")
        if req.fix or req.diff or req.write_baseline:
            raise UsageProblem("--fix, --diff and --write-baseline work on files, not on standard input")
    elif req.stdin_filename is not None:
        raise UsageProblem("--stdin-filename names the text read from standard input: give `-` as the path")
    if req.quiet and req.verbose:
        raise UsageProblem("--quiet and --verbose contradict each other")


def _base_options(req: Request, loaded) -> dict:
    """The engine's Options (as keywords) that need no rule catalogue, without the root: an
    option given on the command line replaces the same key of the file."""
    cfg = loaded.cfg if loaded else None
    select = split_codes(req.select) or tuple((cfg.select if cfg else None) or ())
    ignore = split_codes(req.ignore) or tuple((cfg.ignore if cfg else None) or ())
    extend = split_codes(req.extend_select) or (tuple(cfg.extend_select) if cfg else ())
    if select and extend:
        select = select + extend
    rule_dirs = tuple(req.rules_dirs) or (tuple(loaded.resolve(d) for d in cfg.rule_dirs) if cfg else ())
    options = dict(select=select, ignore=ignore, rule_dirs=rule_dirs)
    if req.max_file_size:
        options["max_file_size"] = req.max_file_size
    if cfg:
        options.update(config_root=loaded.root, per_file_ignores=tuple(cfg.per_file_ignores.items()))
        if cfg.models:
            from auditor.run import config

            try:
                options["models"] = loaded.models()
            except config.ConfigError as exc:
                raise ConfigProblem(str(exc)) from None
    if req.baseline and not req.write_baseline:
        from auditor.run import baseline

        try:
            options["baseline"] = baseline.load(req.baseline)
        except baseline.BaselineError as exc:
            raise ConfigProblem(str(exc)) from None
    return options


def _rule_options(loaded, rules) -> dict:
    """The configuration's rule params and severities, checked against the loaded rules."""
    cfg = loaded.cfg if loaded else None
    if not (cfg and (cfg.params or cfg.severity)):
        return {}
    from auditor.run import config

    try:
        return {"params": loaded.check_rules(rules), "severities": loaded.severities(rules)}
    except config.ConfigError as exc:
        raise ConfigProblem(str(exc)) from None


def options_from(req: Request, loaded) -> dict:
    """The engine's Options (as keywords) for this request and configuration, without the root,
    as `check` builds them (the language server uses it). Raises ConfigProblem for a bad
    configuration or baseline, catalogue.RuleError for bad rules."""
    options = _base_options(req, loaded)
    cfg = loaded.cfg if loaded else None
    if cfg and (cfg.params or cfg.severity):
        from auditor.core import catalogue

        options.update(_rule_options(loaded, catalogue.load(options["rule_dirs"])))
    return options


def run(req: Request) -> int:
    import time

    from auditor.core.catalogue import RuleError
    from auditor.run.discover import discover
    from auditor.run.engine import Engine, Options

    started = time.perf_counter()
    _usage_checks(req)
    outputs = parse_formats(req.formats, req.output_file)
    loaded = _config(req)
    _verbose(req, f"configuration: {loaded.path if loaded else 'none found (defaults)'}")
    cfg = loaded.cfg if loaded else None

    fail_on = req.fail_on or (cfg.fail_on if cfg else None) or "warning"
    options = _base_options(req, loaded)

    paths = [req.stdin_filename] if req.reads_stdin else (list(req.paths) or ["."])
    if req.root is not None and not os.path.isdir(req.root):
        raise UsageProblem(f"--root: not a directory: {req.root}")
    from auditor.setup.link import link_root

    options["root"] = link_root(req.root, paths)
    try:
        from auditor.core import catalogue

        rules = catalogue.load(options["rule_dirs"])
        _check_selectors(req, loaded, rules)
        options.update(_rule_options(loaded, rules))
        engine = Engine(Options(**options), rules)
    except RuleError as exc:
        raise UsageProblem(str(exc)) from None
    # Excludes on the command line follow ruff: --exclude replaces the default exclusions (the
    # SKIP_DIRS folders) and the configuration's `exclude`; --extend-exclude adds to them; both
    # are gitignore-style, relative to the current directory, and apply to paths named on the
    # command line only with --force-exclude.
    cli_excludes = split_codes(req.exclude) + split_codes(req.extend_exclude)
    walk = {}
    if cli_excludes:
        from auditor.run.discover import SKIP_DIRS

        walk = dict(excludes=cli_excludes, exclude_root=os.getcwd(), force_exclude=req.force_exclude,
                    skip_dirs=frozenset() if req.exclude else SKIP_DIRS)
    if req.reads_stdin:
        return _run_stdin(req, engine, outputs, fail_on, started)
    found = discover(paths, engine.suffixes, **walk)
    for missing in found.missing:
        raise UsageProblem(f"path does not exist: {missing}")
    if found.data_files:
        _verbose(req, f"passed over as data, not configuration: {', '.join(found.data_files[:10])}"
                      f"{' ...' if len(found.data_files) > 10 else ''}")
    if found.excluded:
        _verbose(req, f"{found.excluded} path{'s' if found.excluded != 1 else ''} named on the command line "
                      "excluded (--force-exclude)")
    config_excludes = cfg.exclude if cfg and cfg.exclude and not req.exclude else ()

    def exclude(fs):
        if config_excludes:
            fs = excluded(fs, config_excludes, loaded.root)
        if cli_excludes:
            fs = excluded(fs, cli_excludes, os.getcwd())
        return fs

    files = given = excluded(found.files, config_excludes, loaded.root) if config_excludes else found.files
    if paths and all(os.path.isfile(p) for p in paths):
        named = {os.path.normpath(p) for p in given}  # named and not force-excluded: always read
        beside = siblings(given, engine.suffixes)
        kept = set(exclude(beside))
        files = [p for p in beside if p in named or p in kept]
        files = with_linkers(files, exclude(linkers(given, engine.options.root)))
        if cfg is None or cfg.report_only_given:
            engine.options.only_given = frozenset(os.path.normpath(p) for p in given)
    root = req.root or "."
    stdout_formats = [fmt for fmt, target in outputs if target is None]
    if req.show_settings:
        _show_settings(req, loaded, engine, fail_on, outputs, cli_excludes, config_excludes)
        return 0
    if req.show_files:
        from auditor.report import shown_path
        from auditor.report.safe_text import terminal_safe

        for path in files:
            sys.stdout.write(terminal_safe(shown_path(path, req.root)) + "\n")
        return 0
    _verbose(req, f"{len(files)} file{'s' if len(files) != 1 else ''} to read ({len(found.files)} found"
                  f"{', the rest beside them or linking to them' if len(files) > len(found.files) else ''})")

    def audit():
        from auditor.cli import progress

        engine.files_checked = 0
        if engine.options.baseline is not None:
            engine.options.baseline.reset()  # each audit (one per --fix pass) starts from the full baseline
        with progress.bar(len(files), stdout_formats, req.no_progress) as bar:
            return list(engine.check_paths(bar.track(files), jobs=jobs, cache=cache)) + \
                engine.skipped_findings(found.skipped)

    if req.fix or req.diff:
        engine.options.fingerprints = True
    jobs, cache = _scheduling(req, engine, loaded)
    _verbose(req, f"jobs: {jobs}; findings cache: {cache.root if cache is not None else 'off'}")
    findings = audit()

    if req.write_baseline:
        from auditor.run import baseline

        n = baseline.write(findings, req.write_baseline)
        _say(f"Wrote {n} finding{'s' if n != 1 else ''} to the baseline {req.write_baseline}")
        return 0

    if req.diff:
        return _diff(findings, engine, req, root)
    if req.fix:
        findings = _fix(findings, engine, req, audit)

    files_checked = len(engine.options.only_given) if engine.options.only_given is not None else engine.files_checked
    reported = sorted(os.path.normpath(p) for p in files
                      if engine.options.only_given is None or os.path.normpath(p) in engine.options.only_given)
    return _finish(req, engine, findings, outputs, fail_on, files_checked, reported, started)


def _finish(req: Request, engine, findings, outputs, fail_on, files_checked, reported, started) -> int:
    """Write every report, then the exit code."""
    import time

    from auditor.report import write_report
    from auditor.run.engine import exit_code

    for fmt, target in outputs:
        options = dict(root=req.root, files_checked=files_checked, rules=engine.rules, statistics=req.statistics,
                       files=reported, quiet=req.quiet)
        if target is None:
            write_report(findings, fmt, sys.stdout, color=_COLOR[req.color], **options)
            continue
        import io

        buffer = io.StringIO()  # the whole report first: a failure never leaves a truncated file
        write_report(findings, fmt, buffer, color=False, **options)
        try:
            with open(target, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(buffer.getvalue())
        except OSError as exc:
            raise ConfigProblem(f"{target}: cannot write report: {exc.strerror or exc}") from None
    _verbose(req, f"{files_checked} file{'s' if files_checked != 1 else ''} checked in "
                  f"{time.perf_counter() - started:.2f} s")
    from auditor.run.suppress import unknown_selectors

    unknown = unknown_selectors(findings)
    for f in unknown:
        _say(f"error: {f.path}:{f.span.line}:{f.span.column}: {f.message}")
    if unknown:
        return 2
    return exit_code(findings, fail_on, req.exit_zero)


def _run_stdin(req: Request, engine, outputs, fail_on, started) -> int:
    """`check - --stdin-filename PATH`: the text on standard input is checked as the file PATH
    (an editor's unsaved buffer), with the files beside PATH read from disk for the rules that
    compare a setup's files; only PATH is reported."""
    from auditor.setup.resolve import directory_of

    data = sys.stdin.buffer.read()
    path = os.path.normpath(req.stdin_filename)
    files = siblings([path], engine.suffixes) if os.path.isdir(directory_of(path)) else [path]
    if path not in files:
        files = sorted(files + [path], key=lambda p: (directory_of(p), os.path.basename(p)))
    engine.options.only_given = frozenset([path])
    blobs = [data if p == path else None for p in files]
    _verbose(req, f"standard input read as {path} ({len(data)} bytes), with {len(files) - 1} file(s) beside it")
    findings = engine.check_directory(directory_of(path), files, blobs)
    return _finish(req, engine, findings, outputs, fail_on, 1, [path], started)


def _show_settings(req: Request, loaded, engine, fail_on, outputs, cli_excludes, config_excludes) -> None:
    """--show-settings (ruff's name): what this run would use, resolved, and nothing else."""
    from auditor.run.discover import SKIP_DIRS

    o = engine.options
    rows = [
        ("configuration", loaded.path if loaded else "none (defaults)"),
        ("select", ", ".join(o.select) or "all rules"),
        ("ignore", ", ".join(o.ignore) or "-"),
        ("active rules", ", ".join(r.code for r in engine.rules)),
        ("fail-on", fail_on),
        ("formats", ", ".join(f"{fmt}:{target}" if target else fmt for fmt, target in outputs)),
        ("exclude", ", ".join(split_codes(req.exclude)) or
         f"defaults ({', '.join(sorted(SKIP_DIRS))})" + (f" + {', '.join(config_excludes)}" if config_excludes else "")),
        ("extend-exclude", ", ".join(split_codes(req.extend_exclude)) or "-"),
        ("force-exclude", str(req.force_exclude).lower()),
        ("per-file-ignores", "; ".join(f"{p} = {', '.join(c)}" for p, c in o.per_file_ignores) or "-"),
        ("severity overrides", ", ".join(f"{k} = {v}" for k, v in sorted(o.severities.items())) or "-"),
        ("params overrides", ", ".join(sorted(o.params)) or "-"),
        ("rule dirs", ", ".join(o.rule_dirs) or "-"),
        ("max-file-size", str(o.max_file_size)),
        ("root (links followed inside)", o.root),
        ("report paths relative to", req.root or "as given"),
        ("models", ", ".join(f"{k} = {v}" for k, v in sorted(o.models.items())) or "-"),
        ("cache", "off" if req.no_cache else (req.cache_dir or _project_cache_dir(req, loaded))),
        ("jobs", str(req.jobs or "number of CPUs")),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        sys.stdout.write(f"{key:<{width}}  {value}\n")


def _diff(findings, engine, req: Request, root: str) -> int:
    from auditor.run import fix

    fixes, refused = fix.plan(findings, engine.fingerprints, req.unsafe_fixes)
    for message in refused:
        _say(message)
    sys.stdout.write(fix.unified_diff(fixes, root))
    n = sum(len(ff.applied) for ff in fixes)
    hidden = 0 if req.unsafe_fixes else fix.unsafe_only(findings)
    note = f" ({hidden} more with --unsafe-fixes)" if hidden else ""
    if not req.quiet:
        _say(f"Would fix {n} finding{'s' if n != 1 else ''}{note}.")
    return 1 if n else 0


def _fix(findings, engine, req: Request, audit) -> list:
    from auditor.run import fix

    total = 0
    for _ in range(fix.MAX_PASSES):
        fixes, refused = fix.plan(findings, engine.fingerprints, req.unsafe_fixes)
        refused += fix.write(fixes)
        for message in refused:
            _say(message)
        done = sum(len(ff.applied) for ff in fixes)
        total += done
        if not done:
            break
        engine.fingerprints.clear()
        findings = audit()
    hidden = 0 if req.unsafe_fixes else fix.unsafe_only(findings)
    note = f"; {hidden} more with --unsafe-fixes" if hidden else ""
    remaining = sum(1 for f in findings if not f.suppressed)
    if not req.quiet:
        _say(f"Fixed {total} finding{'s' if total != 1 else ''} ({remaining} remaining{note}).")
    return findings
