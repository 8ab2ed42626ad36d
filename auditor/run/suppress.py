"""Deciding which findings are reported: inline directives, per-file ignores, the baseline and
the subset of files a pre-commit hook was given.

Findings are marked `suppressed` rather than dropped so that SARIF can still list them (code
scanning shows dismissed alerts as such instead of re-opening them); the other formats hide
them. A directive that suppresses nothing is reported as DRP002, because stale suppressions
quietly hide the next real problem on that line.

Directive syntax, in any file with `#` comments (YAML, Python, shell):

    lora_dropout: 0.6  # dropout-audit: ignore[DRP201] sweep on purpose
    # dropout-audit: ignore[DRP201] applies to the next line when alone on its line
    # dropout-audit: ignore-file[DRP300] anywhere in the file: the whole file

Codes may be full codes or prefixes (DRP2); `ignore` without brackets covers every code.
JSON has no comments: config.json files are covered by per-file-ignores and the baseline.

Imports inside functions (`core.catalogue`, `pathspec`) are deferred for
start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import os

from auditor.core.lazy_regex import LazyRegex
from auditor.core.model import Finding, Span
from auditor.core.record import Record
from auditor.core.selectors import closest, is_known, matches, matches_finding
from auditor.sources.text import FileProblem, read_text, text_digest

UNUSED = "DRP002"
_LINKED_SUFFIXES = (".yaml", ".yml", ".json")

_DIRECTIVE = LazyRegex(r"#\s*dropout-audit:\s*(?P<kind>ignore-file|ignore)\b(?:\[(?P<codes>[^\]]*)\])?(?P<reason>[^\n]*)")


class Directive(Record):
    __slots__ = ("line", "targets", "codes", "reason", "span", "file_level", "used")

    def __init__(self,
                 line: int,       # where the comment is
                 targets: tuple,  # lines it covers (empty for a file-level directive)
                 codes: tuple,    # () means every code
                 reason: str, span: Span, file_level: bool,
                 used: set | None = None):  # codes (or "*") that matched a finding
        self.line = line
        self.targets = targets
        self.codes = codes
        self.reason = reason
        self.span = span
        self.file_level = file_level
        self.used = set() if used is None else used


def parse(text: str) -> list:
    """Directives of one file. Only comments count: a `#` is taken as the start of a comment
    when the directive text follows it, which is exact for YAML and shell and close enough
    for Python (a string that spells a directive is vanishingly rare)."""
    out = []
    if "dropout-audit:" not in text:
        return out
    offset = 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        m = _DIRECTIVE.search(line)
        if m:
            codes = tuple(c.strip() for c in (m.group("codes") or "").split(",") if c.strip())
            own_line = not line[:m.start()].strip()
            file_level = m.group("kind") == "ignore-file"
            targets = () if file_level else ((number, number + 1) if own_line else (number,))
            end_col = m.start() + len(m.group(0).rstrip())
            span = Span(number, m.start() + 1, number, end_col + 1, offset + m.start(), offset + end_col)
            out.append(Directive(number, targets, codes, m.group("reason").strip(), span, file_level))
        offset += len(line)
    return out


def _covers(directive: Directive, finding) -> str | None:
    """The directive selector that covers the finding (or "*" for a bare directive), else None.
    A selector is a code, a prefix, a category or a rule name, as on the command line."""
    if not directive.codes:
        return "*"
    for c in directive.codes:
        if matches_finding(finding, c):
            return c
    return None


def _relative(path: str, root: str) -> str:
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    except ValueError:  # another drive on Windows
        rel = path
    return rel.replace(os.sep, "/")


class PerFileIgnores:
    """gitignore-style patterns (pathspec, as discovery uses) relative to the config's folder."""

    def __init__(self, table, root: str):
        import pathspec

        self.root = root
        self.entries = [(pathspec.GitIgnoreSpec.from_lines([pattern]), tuple(codes), pattern)
                        for pattern, codes in table]

    def match(self, finding) -> str | None:
        rel = _relative(finding.path, self.root)
        for spec, codes, pattern in self.entries:
            if spec.match_file(rel) and any(matches_finding(finding, c) for c in codes):
                return pattern
        return None


def _hide(finding, kind: str, justification: str) -> None:
    finding.suppressed = True
    finding.suppression = (kind, justification)


def apply(engine, findings: list, loaded: list) -> list:
    """Mark suppressed findings, add DRP002 for unused directives, keep only the given files."""
    opts = engine.options
    if opts.fingerprints:
        _remember(engine, findings, loaded)
    if opts.inline_suppressions:
        findings = _inline(engine, findings, loaded)
    if opts.per_file_ignores:
        pfi = getattr(engine, "_per_file_ignores", None)
        if pfi is None:
            pfi = engine._per_file_ignores = PerFileIgnores(opts.per_file_ignores, opts.config_root)
        for f in findings:
            if not f.suppressed:
                pattern = pfi.match(f)
                if pattern:
                    _hide(f, "external", f"per-file-ignores: {pattern}")
    if opts.baseline is not None:
        for f in findings:
            if not f.suppressed and opts.baseline.covers(f):
                _hide(f, "external", "baseline")
    if opts.only_given is not None:
        findings = [f for f in findings if os.path.normpath(f.path) in opts.only_given]
    return findings


class Directives:
    """The directives of a file whose text the engine has let go after its pass (issue #17)."""

    __slots__ = ("items",)

    def __init__(self, items: list):
        self.items = items


def keep_directives(src) -> None:
    """Parse a source's directives now, so that its text need not be held until the end."""
    src.facts.append(Directives(parse(src.text)))


def _directives_of(src):
    for fact in src.facts:
        if isinstance(fact, Directives):
            return fact.items
    return parse(src.text) if src.text else None


def _inline(engine, findings: list, loaded: list) -> list:
    held = {}
    for src in loaded:
        directives = _directives_of(src)
        if directives is not None:
            held[src.path] = directives
    by_path = {}
    for f in findings:
        by_path.setdefault(f.path, []).append(f)
    active = {r.code: r for r in engine.rules}
    extra = []
    for path, directives in held.items():
        if not directives:
            continue
        _match(by_path.get(path, ()), directives)
        rule = active.get(UNUSED)
        if rule is not None:
            extra.extend(_unused(engine, rule, path, directives, active))
    here = {os.path.normpath(p) for p in held}
    for path, found in by_path.items():
        if os.path.normpath(path) not in here:
            # A setup placed these on a file its links reach in another directory (DRP132 on
            # the parsed YAML): that file's directives apply. Its unused ones are reported when
            # its own directory is checked, not here, where only some of its findings exist.
            _match(found, parse(_linked_text(engine, path)))
    return findings + extra


def _match(findings, directives: list) -> None:
    for f in findings:
        for d in directives:
            if d.file_level or f.span.line in d.targets:
                hit = _covers(d, f)
                if hit:
                    d.used.add(hit)
                    if not f.suppressed:
                        _hide(f, "inSource", d.reason or "dropout-audit directive")


def _linked_text(engine, path: str) -> str:
    """The text of a linked file: as the run read it, else through the bounded reader."""
    src = engine.linked.get(os.path.normpath(path))
    if src is not None and src.text:
        return src.text
    try:
        return read_text(path, engine.options.max_file_size)
    except (FileProblem, OSError):
        return ""


def _unused(engine, rule, path: str, directives: list, active: dict):
    known = None
    # rules another directory's setup may place on this recipe through a link (DRP132 on the
    # YAML a script parses): their directives may be used by a run this one does not see
    remote = () if not path.endswith(_LINKED_SUFFIXES) else \
        [r for r, _scope, fn in engine.bound if getattr(fn, "on_linked_files", False)]
    for d in directives:
        if not d.codes:
            if not d.used and not remote:
                yield _finding(rule, path, d, f"unused suppression: no finding {_where(d)}")
            continue
        for code in d.codes:
            if code in d.used or any(matches(r, code) for r in remote):
                continue
            if any(matches(a, code) for a in active.values()):
                yield _finding(rule, path, d, f"unused suppression of {code}: no {code} finding {_where(d)}", code)
                continue
            if known is None:
                from auditor.core import catalogue

                known = catalogue.load(engine.options.rule_dirs)
            if not is_known(code, known):
                yield _finding(rule, path, d, f"{UNKNOWN}: {code!r} in a suppression comment"
                                              f"{_did_you_mean(closest(code, known))}", code)
            # a known code that is not selected in this run: it may be used in another run


UNKNOWN = "unknown rule selector"  # the start of the message of a suppression naming no rule


def _did_you_mean(suggestions: list) -> str:
    return f" (did you mean {', '.join(suggestions)}?)" if suggestions else ""


def unknown_selectors(findings) -> list:
    """The DRP002 findings of suppressions that name no rule: the run exits 2 on them, as on an
    unknown --select (a typo there silently suppresses nothing, or everything it was meant to)."""
    return [f for f in findings if f.code == UNUSED and f.message.startswith(UNKNOWN)]


def _where(d: Directive) -> str:
    return "in this file" if d.file_level else f"on line {d.targets[-1]}" if len(d.targets) == 1 else \
        f"on line {d.targets[0]} or {d.targets[1]}"


def _finding(rule, path, d: Directive, message: str, code: str = "") -> Finding:
    return Finding(code=rule.code, name=rule.name, category=rule.category, severity=rule.severity, path=path,
                   span=d.span, message=message, key=f"suppression:{code or '*'}:{d.reason}")


def _remember(engine, findings: list, loaded: list) -> None:
    fixable = {f.path for f in findings if f.fix is not None}
    for src in loaded:
        if src.path in fixable and src.text:
            try:
                st = os.stat(src.path)
            except OSError:
                continue
            engine.fingerprints[src.path] = (_stored_digest(src), st.st_size, st.st_mtime_ns)


def _stored_digest(src) -> str:
    """The digest of the file as read: a notebook's Source holds its joined code cells
    instead, and its map keeps the digest of the stored file."""
    for fact in src.facts:
        digest = getattr(fact, "stored_digest", None)
        if digest is not None:
            return digest
    return text_digest(src.text)

