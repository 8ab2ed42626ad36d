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
                 "cache_dir")

    def __init__(self, paths: tuple = (), formats: tuple = (), output_file: str | None = None,
                 select: tuple = (), ignore: tuple = (), extend_select: tuple = (),
                 fail_on: str | None = None, exit_zero: bool = False, statistics: bool = False,
                 rules_dirs: tuple = (), max_file_size: int | None = None, config: str | None = None,
                 fix: bool = False, diff: bool = False, unsafe_fixes: bool = False,
                 baseline: str | None = None, write_baseline: str | None = None, root: str | None = None,
                 no_progress: bool = False, jobs: int | None = None, no_cache: bool = False,
                 cache_dir: str = ".dropout_audit_cache"):
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


def load_config(config: str | None, start: str):
    """The validated configuration (`config.Loaded`) given by --config, else the nearest one
    above `start`; None when there is none. Raises ConfigProblem."""
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


def with_linkers(files: list, found: list) -> list:
    from auditor.setup.resolve import directory_of

    merged = set(files) | set(found)
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
    print(message, file=sys.stderr, flush=True)


def _scheduling(req: Request, engine):
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

        cache = Cache.for_engine(engine, req.cache_dir)
    return jobs, cache


def options_from(req: Request, loaded) -> dict:
    """The engine's Options (as keywords) for this request and configuration, without the
    root: an option given on the command line replaces the same key of the file. Raises
    ConfigProblem for a bad configuration or baseline, catalogue.RuleError for bad rules."""
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
        options.update(severities=cfg.severity, config_root=loaded.root,
                       per_file_ignores=tuple(cfg.per_file_ignores.items()))
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
    if cfg and (cfg.params or cfg.severity):
        from auditor.core import catalogue
        from auditor.run import config

        try:
            options["params"] = loaded.check_rules(catalogue.load(rule_dirs))
        except config.ConfigError as exc:
            raise ConfigProblem(str(exc)) from None
    return options


def run(req: Request) -> int:
    from auditor.core.catalogue import RuleError
    from auditor.run.discover import discover
    from auditor.run.engine import Engine, Options, exit_code

    outputs = parse_formats(req.formats, req.output_file)
    loaded = load_config(req.config, req.paths[0] if req.paths else ".")
    cfg = loaded.cfg if loaded else None
    fail_on = req.fail_on or (cfg.fail_on if cfg else None) or "warning"
    paths = list(req.paths) or ["."]
    from auditor.setup.link import link_root

    try:
        options = options_from(req, loaded)
        options["root"] = link_root(req.root, paths)
        engine = Engine(Options(**options))
    except RuleError as exc:
        raise UsageProblem(str(exc)) from None
    found = discover(paths, engine.suffixes)
    for missing in found.missing:
        raise UsageProblem(f"path does not exist: {missing}")
    exclude = (lambda fs: excluded(fs, cfg.exclude, loaded.root)) if cfg and cfg.exclude else (lambda fs: fs)
    files = given = exclude(found.files)
    if all(os.path.isfile(p) for p in paths):
        files = exclude(siblings(given, engine.suffixes))
        files = with_linkers(files, exclude(linkers(given, engine.options.root)))
        if cfg is None or cfg.report_only_given:
            engine.options.only_given = frozenset(os.path.normpath(p) for p in given)
    root = req.root or "."
    stdout_formats = [fmt for fmt, target in outputs if target is None]

    def audit():
        from auditor.cli import progress

        engine.files_checked = 0
        if engine.options.baseline is not None:
            engine.options.baseline.reset()  # each audit (one per --fix pass) starts from the full baseline
        with progress.bar(len(files), stdout_formats, req.no_progress) as bar:
            return list(engine.check_paths(bar.track(files), jobs=jobs, cache=cache))

    if req.fix or req.diff:
        engine.options.fingerprints = True
    jobs, cache = _scheduling(req, engine)
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
    from auditor.report import write_report

    for fmt, target in outputs:
        if target is None:
            write_report(findings, fmt, sys.stdout, root=root, files_checked=files_checked, rules=engine.rules,
                         statistics=req.statistics, files=reported)
            continue
        try:
            with open(target, "w", encoding="utf-8", newline="\n") as fh:
                write_report(findings, fmt, fh, root=root, files_checked=files_checked, rules=engine.rules,
                             statistics=req.statistics, color=False, files=reported)
        except OSError as exc:
            raise ConfigProblem(f"{target}: cannot write report: {exc.strerror or exc}") from None
    return exit_code(findings, fail_on, req.exit_zero)


def _diff(findings, engine, req: Request, root: str) -> int:
    from auditor.run import fix

    fixes, refused = fix.plan(findings, engine.fingerprints, req.unsafe_fixes)
    for message in refused:
        _say(message)
    sys.stdout.write(fix.unified_diff(fixes, root))
    n = sum(len(ff.applied) for ff in fixes)
    hidden = 0 if req.unsafe_fixes else fix.unsafe_only(findings)
    note = f" ({hidden} more with --unsafe-fixes)" if hidden else ""
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
    _say(f"Fixed {total} finding{'s' if total != 1 else ''} ({remaining} remaining{note}).")
    return findings
