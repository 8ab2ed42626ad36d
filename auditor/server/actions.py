"""The edits behind the server's code actions, as (start, end, replacement) in a text.

Fixes are the rules' own (`Finding.fix`, the edits `--fix` applies); "ignore DRPxxx on this
line" writes the directive `auditor/run/suppress.py` reads: a trailing
`# dropout-audit: ignore[DRPxxx]`, or the code added to a directive already covering the line.
A line ending in a backslash continuation cannot take a trailing comment, so the directive
goes on its own line above, where it covers the next line. JSON has no comments: a
config.json finding offers no such action (per-file-ignores and baselines cover those files).
"""

from __future__ import annotations

from auditor.run import fix as fixing
from auditor.run import suppress

COMMENT_SUFFIXES = (".yaml", ".yml", ".py", ".sh", ".ipynb")


def takes_comments(path: str) -> bool:
    return path.lower().endswith(COMMENT_SUFFIXES)


def _line_bounds(text: str, line: int) -> tuple:
    """(start, end without the line break) of the 1-based line."""
    start = 0
    for _ in range(line - 1):
        nl = text.find("\n", start)
        if nl == -1:
            return len(text), len(text)
        start = nl + 1
    end = text.find("\n", start)
    end = len(text) if end == -1 else end
    if end > start and text[end - 1] == "\r":
        end -= 1
    return start, end


def ignore_edit(text: str, line: int, code: str) -> tuple:
    """The edit that makes the directive on `line` (1-based) cover `code`."""
    for d in suppress.parse(text):
        if d.file_level or line not in d.targets or not d.codes:
            continue
        if code in d.codes:
            continue
        close = text.find("]", d.span.start, d.span.end)
        if close != -1:
            return close, close, f", {code}"
    start, end = _line_bounds(text, line)
    body = text[start:end]
    directive = f"# dropout-audit: ignore[{code}]"
    if body.rstrip().endswith("\\"):
        indent = body[:len(body) - len(body.lstrip(" \t"))]
        newline = "\r\n" if text[end:end + 2] == "\r\n" else "\n"
        return start, start, f"{indent}{directive}{newline}"
    stripped = len(body.rstrip(" \t"))
    return start + stripped, end, f"  {directive}"


def fix_edits(finding, bom: int = 0) -> list:
    """The finding's fix as edits of the buffer (the engine's offsets skip a BOM)."""
    return [(e.start + bom, e.end + bom, e.replacement) for e in finding.fix.edits]


def fix_all(text: str, findings: list, bom: int = 0) -> str | None:
    """The buffer with every safe fix applied (overlapping ones left for the next run), or
    None when nothing changes."""
    body = text[bom:]
    safe = [f for group in fixing.wanted(findings, unsafe=False).values() for f in group]
    new, applied, _ = fixing.apply_edits(body, safe)
    if not applied or new == body:
        return None
    return text[:bom] + new
