"""Reporters: one module per output format, each with `write(findings, stream, ctx)`.

Formats are looked up by name and imported only when used, so `--format json` never pays for
rich, and a new format is a new module plus one line in FORMATS.

Imports inside functions (`report.locations`) are deferred for start-up time: a run that never
takes that path never pays for them.
"""

from __future__ import annotations

import importlib
from collections import namedtuple

from auditor.core.record import Record

FORMATS = {
    "full": "auditor.report.full",
    "concise": "auditor.report.concise",
    "json": "auditor.report.json_format",
    "sarif": "auditor.report.sarif",
    "github": "auditor.report.github",
    "gitlab": "auditor.report.gitlab",
    "junit": "auditor.report.junit",
}


class ReportContext(Record):
    __slots__ = ("root", "files_checked", "rules", "statistics", "color", "files", "quiet")

    def __init__(self, root: str | None = None,  # --root, None when not given (paths shown as given)
                 files_checked: int = 0,
                 rules: list | None = None,   # the active rules (SARIF lists them)
                 statistics: bool = False,
                 color: bool | None = None,   # None: decide from the stream (TTY, NO_COLOR)
                 files: list | None = None,   # every file checked (JUnit has a test case per file)
                 quiet: bool = False):        # -q: the findings and nothing else (no summary line)
        self.root = root
        self.files_checked = files_checked
        self.rules = rules
        self.statistics = statistics
        self.color = color
        self.files = files
        self.quiet = quiet


def available() -> list:
    names = []
    for name, module in FORMATS.items():
        try:
            importlib.util.find_spec(module)
        except ModuleNotFoundError:
            continue
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    return names


def write_report(findings, fmt: str, stream, *, root: str | None = None, files_checked: int = 0, rules=None,
                 statistics: bool = False, color=None, files=None, quiet: bool = False) -> None:
    module = importlib.import_module(FORMATS[fmt])
    ctx = ReportContext(root=root, files_checked=files_checked, rules=rules, statistics=statistics, color=color,
                        files=files, quiet=quiet)
    module.write(list(findings), stream, ctx)


def counts(findings) -> dict:
    out = {"error": 0, "warning": 0, "info": 0}
    for f in findings:
        if not f.suppressed:
            out[f.severity] += 1
    return out


def per_rule(findings) -> list:
    """(code, name, count) sorted by count, for --statistics."""
    table = {}
    for f in findings:
        if not f.suppressed:
            code_name = (f.code, f.name)
            table[code_name] = table.get(code_name, 0) + 1
    return sorted(((c, n, k) for (c, n), k in table.items()), key=lambda r: (-r[2], r[0]))


def _files(n: int) -> str:
    return f"{n} file{'s' if n != 1 else ''} checked"


def summary_line(findings, files_checked: int) -> str:
    c = counts(findings)
    total = sum(c.values())
    if total == 0:
        if files_checked == 0:
            return "No files checked: nothing under the given paths is a file the auditor reads."
        return f"All checks passed ({_files(files_checked)})."
    parts = [f"{c[s]} {s}{'s' if c[s] != 1 and s != 'info' else ''}" for s in ("error", "warning", "info") if c[s]]
    return f"Found {total} finding{'s' if total != 1 else ''} ({', '.join(parts)}) in {_files(files_checked)}."


def shown_path(path: str, root) -> str:
    """A finding's path as the terminal and JSON formats print it: as given, or relative to
    --root when one is given (the CI formats are always relative to the root)."""
    if root is None:
        return path
    from auditor.report.locations import relative

    return relative(path, root)


# Where a finding is for a reader: in a notebook, the cell and the cell-relative position.
# `text` is "12:5" or "cell 3:2:5"; `cell` is 0 outside notebooks. (collections' namedtuple:
# typing.NamedTuple would import typing on every run.)
Place = namedtuple("Place", ("text", "cell", "line", "column", "end_line", "end_column"))


def place(f) -> Place:
    if f.cell:
        n, line, col, end_line, end_col = f.cell
        return Place(f"cell {n}:{line}:{col}", n, line, col, end_line, end_col)
    s = f.span
    return Place(f"{s.line}:{s.column}", 0, s.line, s.column, s.end_line, s.end_column)
