"""Run the rules over files, one directory at a time, and produce findings.

Directories are the unit of work because a Setup never spans two of them; holding one
directory's parsed sources at a time keeps memory flat however large the tree is.

Imports inside functions (`run.parallel`, `run.suppress`, `setup.graph`, `setup.links`) are
deferred for start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import gc
import os
import sys

from auditor import checks, sources
from auditor.checks.base import Context
from auditor.core import catalogue
from auditor.core.model import SEVERITY_RANK, Finding, Span
from auditor.core.model import finding_identity as identity
from auditor.core.record import Record
from auditor.core.selectors import check as check_selectors
from auditor.core.selectors import matches as selector_matches
from auditor.setup import resolve
from auditor.sources.text import DEFAULT_MAX_FILE_SIZE, SKIPPED, FileProblem, decode, is_data_file, read_text

UNREADABLE = "DRP001"


class Options(Record):
    __slots__ = ("select", "ignore", "rule_dirs", "max_file_size", "params", "severities", "only_given",
                 "inline_suppressions", "per_file_ignores", "config_root", "baseline", "fingerprints", "root",
                 "models", "given_source_rules")

    def __init__(self, select: tuple = (), ignore: tuple = (), rule_dirs: tuple = (),
                 max_file_size: int = DEFAULT_MAX_FILE_SIZE,
                 params: dict | None = None,      # code -> params overriding the rule's
                 severities: dict | None = None,  # code -> severity
                 # Post-processing (auditor/run/suppress.py): which findings are reported and which are hidden.
                 only_given: frozenset | None = None,  # report only these paths (siblings are read for setup rules)
                 inline_suppressions: bool = True,     # honour `# dropout-audit: ignore[...]` comments
                 per_file_ignores: tuple = (),         # (gitignore-style pattern, codes) relative to config_root
                 config_root: str = ".",
                 baseline=None,                        # auditor.run.baseline.Baseline
                 fingerprints: bool = False,           # remember what each fixable file held (for --fix)
                 root: str = ".",                      # the checked root: links are followed only inside it
                 models: dict | None = None,           # user's model reference -> model type or config.json path
                 # with only_given: source-scope rules run on the given files only (the others are still
                 # read for their setups); the language server's re-check of one edited file
                 given_source_rules: bool = False):
        self.select = select
        self.ignore = ignore
        self.rule_dirs = rule_dirs
        self.max_file_size = max_file_size
        self.params = {} if params is None else params
        self.severities = {} if severities is None else severities
        self.only_given = only_given
        self.inline_suppressions = inline_suppressions
        self.per_file_ignores = per_file_ignores
        self.config_root = config_root
        self.baseline = baseline
        self.fingerprints = fingerprints
        self.root = root
        self.models = {} if models is None else models
        self.given_source_rules = given_source_rules


def matches(rule, selectors) -> bool:
    """A selector is a code (DRP201), a code prefix (DRP2, DRP), a category or a rule name."""
    return any(selector_matches(rule, sel) for sel in selectors)


def active_rules(options: Options, rules: list | None = None) -> list:
    """The rules this run applies. Every selector must name a rule (core.selectors): an unknown
    one raises UnknownSelector rather than silently selecting nothing."""
    rules = catalogue.load(options.rule_dirs) if rules is None else rules
    check_selectors(options.select, rules, "--select")
    check_selectors(options.ignore, rules, "--ignore")
    for _pattern, codes in options.per_file_ignores:
        check_selectors(codes, rules, "per-file-ignores")
    chosen = []
    for rule in rules:
        if options.select and not matches(rule, options.select):
            continue
        if options.ignore and matches(rule, options.ignore):
            continue
        if rule.code in options.params:
            rule.params = {**rule.params, **options.params[rule.code]}
        if rule.code in options.severities:
            rule.severity = options.severities[rule.code]
        chosen.append(rule)
    return chosen


class Engine:
    def __init__(self, options: Options | None = None, rules: list | None = None):
        """rules: the catalogue when the caller has loaded it already (to check selectors)."""
        self.options = options or Options()
        self.rules = active_rules(self.options, rules)
        registry = checks.load_all()
        self.readers = sources.readers()
        self.suffixes = tuple(self.readers)
        self.bound = []
        for rule in self.rules:
            if rule.check in ("probe", "suppression"):
                continue  # emitted by the runtime probe / by auditor.run.suppress, not by a primitive
            if rule.check not in registry:
                raise catalogue.RuleError(f"{rule.origin}: check '{rule.check}' does not exist")
            scope, fn = registry[rule.check]
            self.bound.append((rule, scope, fn))
        self.files_checked = 0
        self.fingerprints = {}  # path -> (sha256 of the text read, size, mtime_ns), for --fix
        self.linked = {}        # path -> Source, the files links reached (read once per run)
        self.deps = set()       # files the current directory's links named (read or missing), for the cache

    def load(self, path: str, data: bytes | None = None):
        reader = self.readers.get(sources.suffix_of(path))
        if reader is None or is_data_file(os.path.basename(path)):
            return None
        try:
            text = read_text(path, self.options.max_file_size) if data is None else decode(data)
        except FileProblem as exc:
            return sources.located_problem(path, exc.code, str(exc))
        src = reader(path, text)
        if src is None:
            from auditor.setup import links

            src = links.linker_source(path, text)
        return src

    def skipped_findings(self, skipped) -> list:
        """DRP004 for each path the walk could not enter (an unreadable directory): every
        skipped path is said, at info, so a silent pass never hides an unread folder."""
        rule = next((r for r in self.rules if r.code == SKIPPED), None)
        if rule is None:
            return []
        out = []
        for path, reason in skipped:
            f = Finding(code=rule.code, name=rule.name, category=rule.category, severity=rule.severity,
                        path=path, span=Span(1, 1, 1, 1, 0, 0), message=reason, key="skipped-directory")
            out.append(f)
        if self.options.per_file_ignores or self.options.only_given is not None:
            from auditor.run import suppress

            out = suppress.apply(self, out, [])
        return out

    def load_linked(self, path: str):
        """A file a link names, read at most once per run (None: nothing the readers know)."""
        key = os.path.normpath(path)
        if key not in self.linked:
            if len(self.linked) > 4096:
                self.linked.clear()
            src = self.load(path) if os.path.isfile(path) else None
            self.linked[key] = None if src is None or src.kind == "unreadable" else src
        self.deps.add(key)
        return self.linked[key]

    def check_paths(self, paths, jobs: int = 1, cache=None):
        """Findings for every file, in path order, a directory at a time.

        With jobs > 1 or a cache, auditor.run.parallel schedules the directories (same order).
        """
        self.linked = {}  # a re-audit (--fix) must see the linked files as they are now
        if jobs > 1 or cache is not None:
            from auditor.run import parallel

            yield from parallel.check_paths(self, paths, jobs, cache)
            return
        reported = set()  # a setup can span directories: a finding on a shared linked file once
        for directory, group in resolve.by_directory(paths):
            for f in self.check_directory(directory, group):
                if identity(f) not in reported:
                    reported.add(identity(f))
                    yield f

    def load_directory(self, paths: list, blobs: list | None = None) -> list:
        """The Sources of one directory's files (None results, non-training files, dropped).
        blobs: the files' bytes when the caller has already read them (to hash them)."""
        return [src for src in (self._load_counted(p, blobs, i) for i, p in enumerate(paths)) if src is not None]

    def _load_counted(self, path: str, blobs, i: int):
        self.files_checked += 1
        return self.load(path, None if blobs is None else blobs[i])

    def check_directory(self, directory: str, paths: list, blobs: list | None = None) -> list:
        """Code files are read last, one at a time, and each lets its tree go after its own
        pass: the other files (the artifacts every driver's setup shares) are read first."""
        self.deps = set()
        code = [i for i, p in enumerate(paths) if sources.suffix_of(p) in sources.CODE_SUFFIXES]
        if not code:
            return self.check_sources(directory, self.load_directory(paths, blobs))
        is_code = set(code)
        held = [src for src in (self._load_counted(p, blobs, i) for i, p in enumerate(paths) if i not in is_code)
                if src is not None]
        streamed = (self._load_counted(paths[i], blobs, i) for i in code)
        _sibling_reads()  # reads of an earlier directory are not this one's
        found = self.check_sources(directory, held, (src for src in streamed if src is not None))
        self.deps.update(_sibling_reads())
        return found

    def check_sources(self, directory: str, loaded: list, streamed=()) -> list:
        """Findings of one directory. `loaded` sources are held until the end; `streamed` ones
        (code) are checked one at a time, with the setups they drive, and then keep only
        their facts (issue #17: a directory of many scripts never holds all their trees)."""
        from auditor.setup import graph

        found = []
        artifacts = graph.artifacts_of(loaded)
        done = []
        streamed = iter(streamed)
        while True:
            with _collector_paused():
                src = next(streamed, None)  # reading and parsing the file happen here
                if src is None:
                    break
                found.extend(self._source_pass(src, graph.setups_of(self, directory, src, artifacts)))
                self.release(src)
            done.append(src)
        grouped = [s for src in loaded for s in graph.setups_of(self, directory, src, artifacts)]
        for src in loaded:
            found.extend(self._source_pass(src, ()))
        found.extend(self._setup_pass(grouped))
        loaded = loaded + done
        found.extend(self._setup_pass(graph.lone_setup(self, directory, loaded, artifacts)))
        unique = {identity(f): f for f in found}
        from auditor.run import suppress

        reported = suppress.apply(self, list(unique.values()), loaded)
        for src in loaded:  # findings in notebooks move from the joined code to their cells
            for fact in src.facts:
                if hasattr(fact, "relocate"):
                    fact.relocate(reported)
        return sorted(reported, key=Finding.sort_key)

    def release(self, src) -> None:
        """What outlives a checked code file: settings, fields, links and its directives;
        its parsed tree and its text go (a --fix run keeps the text to fingerprint it)."""
        kept = []
        for fact in src.facts:
            if getattr(fact, "releasable", False):
                fact.release()
            else:
                kept.append(fact)
        src.facts[:] = kept
        if src.text and not self.options.fingerprints:
            if self.options.inline_suppressions:
                from auditor.run import suppress

                suppress.keep_directives(src)
            src.text = ""

    def _source_pass(self, src, setups) -> list:
        """The source-scope rules on one file, then the setup-scope rules on the setups it makes.
        A source-scope rule reports on its own file, except those marked `on_linked_files`: with
        `given_source_rules`, a file that is read only for its setups runs those alone."""
        found = []
        ctx = Context(source=src)
        given = self.options.only_given
        own = not self.options.given_source_rules or given is None or os.path.normpath(src.path) in given
        for rule, scope, fn in self.bound:
            if scope == "source" and (src.kind != "linker" or getattr(fn, "reads_links", False)) \
                    and (own or getattr(fn, "on_linked_files", False)):
                found.extend(_finding(rule, h) for h in fn(ctx, rule))
        found.extend(self._setup_pass(setups))
        return found

    def _setup_pass(self, setups) -> list:
        from auditor.setup import graph

        found = []
        for setup in setups:
            ctx = Context(setup=setup, plan=graph.plan(setup))
            for rule, scope, fn in self.bound:
                if scope == "setup":
                    found.extend(_finding(rule, h) for h in fn(ctx, rule))
        return found


def _sibling_reads() -> set:
    """The package modules the code checks read beside a script (checks/code/siblings.py):
    the cache entry of the directory depends on them as on linked files."""
    module = sys.modules.get("auditor.checks.code.siblings")
    return module.take_read() if module is not None else set()


class _collector_paused:
    """The cyclic collector stays off while one code file is read, parsed, checked and
    released. Its tree (hundreds of thousands of nodes, no cycles) is freed by reference
    counting at the release, before the collector runs again, so no collection ever walks
    it; with the collector on, every young-generation pass after the parse walked the whole
    tree once more (about 2 of the 20 CPU seconds on Transformers' models/). What a file's
    pass leaves in cycles is collected as usual once the collector is back on."""

    __slots__ = ("was",)

    def __enter__(self):
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.was:
            gc.enable()


MAX_MESSAGE = 400


_WORD_SLACK = 40  # how far a cut may move back to a space so that no word is split


def one_line(message: str) -> str:
    """Messages quote raw values, which can be block scalars or 50k-digit numbers; one
    bounded line keeps line-based formats (concise, github annotations) parseable. A long one
    keeps its head and its tail, cut at spaces where there are any (a quoted 50k-digit value
    has none), with " ... " for what was left out."""
    message = message.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    if len(message) > MAX_MESSAGE:
        half = (MAX_MESSAGE - 5) // 2
        head, tail = message[:half], message[-half:]
        space = head.rfind(" ", half - _WORD_SLACK)
        if space > 0:
            head = head[:space]
        space = tail.find(" ", 0, _WORD_SLACK)
        if space >= 0:
            tail = tail[space + 1:]
        message = head + " ... " + tail
    return message


def _finding(rule, hit) -> Finding:
    severity = rule.severity
    if hit.severity and SEVERITY_RANK[hit.severity] > SEVERITY_RANK[severity]:
        severity = hit.severity
    return Finding(code=rule.code, name=rule.name, category=rule.category, severity=severity,
                   path=hit.path, span=hit.span, message=one_line(hit.message), fix=hit.fix, key=hit.key)


def exit_code(findings, fail_on: str = "warning", exit_zero: bool = False) -> int:
    if exit_zero:
        return 0
    limit = SEVERITY_RANK[fail_on]
    return 1 if any(SEVERITY_RANK[f.severity] <= limit and not f.suppressed for f in findings) else 0
