"""`--fix` and `--diff`: apply the edits rules attach to findings, and nothing else.

The contract with rules is `Fix(description, edits=(Edit(start, end, replacement), ...),
applicability)` where offsets are characters of the decoded text the reader saw (BOM
stripped, line endings as in the file). Every rule, YAML/JSON value fixes and Python code
fixes alike (e.g. inserting `training=self.training` into an `F.dropout(...)` call), is
applied here by exact span replacement: bytes outside the spans are never touched, so
comments, key order, quoting, indentation, CRLF line endings, the BOM and the final newline
all survive, with no YAML re-serialisation to disturb them.

Safety:
- only `safe` fixes unless `--unsafe-fixes`; suppressed findings are never fixed;
- a fix whose edits overlap an edit already taken is left for the next pass, and passes
  repeat (re-auditing in between) until nothing changes, so a second `--fix` is a no-op;
- the file must still be what the audit read (size, mtime and a hash of the text), else it
  is left alone and reported; writes go through auditor.run.atomic_write.

Imports inside functions (`report.locations`, `run.atomic_write`) are deferred for start-up
time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import codecs
import difflib
import os
from dataclasses import dataclass, field

from auditor.sources.text import text_digest

MAX_PASSES = 10


@dataclass
class FileFix:
    path: str
    raw: bytes              # the file's bytes as read for fixing
    bom: bool
    text: str
    new_text: str = ""
    applied: list = field(default_factory=list)   # findings whose fix was applied
    deferred: list = field(default_factory=list)  # overlapping fixes left for a later pass

    def data(self) -> bytes:
        return (codecs.BOM_UTF8 if self.bom else b"") + self.new_text.encode("utf-8", "surrogatepass")


def wanted(findings, unsafe: bool) -> dict:
    """path -> findings with a fix we may apply, in file order."""
    out = {}
    for f in findings:
        if f.fix is None or f.suppressed or not f.fix.edits:
            continue
        if f.fix.applicability != "safe" and not unsafe:
            continue
        out.setdefault(f.path, []).append(f)
    return out


def unsafe_only(findings) -> int:
    return sum(1 for f in findings if f.fix is not None and not f.suppressed and f.fix.applicability != "safe")


def _overlaps(a, b) -> bool:
    if a.start == a.end or b.start == b.end:  # insertions: the same point is a conflict
        return a.start <= b.end and b.start <= a.end
    return a.start < b.end and b.start < a.end


def _line_ending(text: str, replacement: str) -> str:
    if "\n" in replacement and "\r\n" in text:
        return replacement.replace("\r\n", "\n").replace("\n", "\r\n")
    return replacement


def apply_edits(text: str, findings) -> tuple:
    """(new text, applied findings, deferred findings)."""
    taken, applied, deferred, seen = [], [], [], set()
    for f in sorted(findings, key=lambda f: min(e.start for e in f.fix.edits)):
        edits = tuple(sorted(f.fix.edits, key=lambda e: (e.start, e.end)))
        if edits in seen:  # two rules proposing the same edit: apply it once
            applied.append(f)
            continue
        if any(not (0 <= e.start <= e.end <= len(text)) for e in edits):
            continue  # offsets from a different text; never guess
        if any(_overlaps(e, t) for e in edits for t in taken):
            deferred.append(f)
            continue
        seen.add(edits)
        taken.extend(edits)
        applied.append(f)
    out = text
    for e in sorted(taken, key=lambda e: e.start, reverse=True):
        out = out[:e.start] + _line_ending(text, e.replacement) + out[e.end:]
    return out, applied, deferred


def read(path: str) -> FileFix:
    with open(path, "rb") as fh:
        raw = fh.read()
    bom = raw.startswith(codecs.BOM_UTF8)
    text = raw[len(codecs.BOM_UTF8):].decode("utf-8") if bom else raw.decode("utf-8")
    return FileFix(path, raw, bom, text)


def plan(findings, fingerprints: dict, unsafe: bool) -> tuple:
    """([FileFix with changes], [refusal messages])."""
    fixes, refused = [], []
    for path, items in wanted(findings, unsafe).items():
        recorded = fingerprints.get(path)
        try:
            st = os.stat(path)
            ff = read(path)
        except (OSError, UnicodeDecodeError) as exc:
            refused.append(f"{path}: cannot read for fixing: {exc}")
            continue
        if recorded is None or recorded[0] != text_digest(ff.text) or recorded[1:] != (st.st_size, st.st_mtime_ns):
            refused.append(f"{path}: changed since it was audited; not fixed")
            continue
        ff.new_text, ff.applied, ff.deferred = apply_edits(ff.text, items)
        if ff.new_text != ff.text:
            fixes.append(ff)
    return fixes, refused


def write(fixes) -> list:
    """Write each planned file atomically; returns refusal messages for those left alone."""
    from auditor.run.atomic_write import FileChanged, replace

    refused = []
    for ff in fixes:
        try:
            replace(ff.path, ff.data(), ff.raw)
        except FileChanged as exc:
            refused.append(str(exc))
            ff.applied = []
        except OSError as exc:
            refused.append(f"{ff.path}: cannot write: {exc.strerror or exc}")
            ff.applied = []
    return refused


def unified_diff(fixes, root: str = ".") -> str:
    from auditor.report.locations import relative

    chunks = []
    for ff in fixes:
        rel = relative(ff.path, root)
        if rel.startswith("../"):
            rel = ff.path.replace(os.sep, "/").lstrip("/")
        chunks.extend(difflib.unified_diff(ff.text.splitlines(keepends=True), ff.new_text.splitlines(keepends=True),
                                           f"a/{rel}", f"b/{rel}"))
        if chunks and not chunks[-1].endswith("\n"):
            chunks.append("\n\\ No newline at end of file\n")
    return "".join(chunks)
