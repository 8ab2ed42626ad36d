"""The terminal report: findings grouped by file, each with its source line and a caret.

Colour comes from rich only when the stream is a terminal and NO_COLOR is unset (rich
checks both), so piping into a file or a CI log gives plain text. Paths, messages and source
lines are shown with control characters escaped (report/safe_text.py): a snippet holding an
escape sequence must not retitle the terminal.

Imports inside functions (`rich.console`, `rich.markup`, `rich.text`, `sources.notebook`) are
deferred for start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import os

from auditor.report import Place, per_rule, place, shown_path, summary_line
from auditor.report.safe_text import terminal_safe

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _source_lines(path: str) -> list:
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            return fh.read(2_000_000).splitlines()
    except OSError:
        return []


class _Lines:
    """The source lines a finding points into: the file's, or its notebook cell's."""

    def __init__(self):
        self.key, self.lines = None, []

    def of(self, f, at: Place) -> list:
        key = (f.path, at.cell)
        if key != self.key:
            if at.cell:
                from auditor.sources.notebook import cell_lines

                self.key, self.lines = key, cell_lines(f.path, at.cell)
            else:
                self.key, self.lines = key, _source_lines(f.path)
        return self.lines


def _plain(stream, ctx) -> bool:
    """True when rich would emit no escape codes at all: then the same text is written
    directly, and a pre-commit hook or CI log does not pay for importing rich."""
    if ctx.color is False:
        return True
    if ctx.color is True:
        return False
    if os.environ.get("NO_COLOR"):  # https://no-color.org: any non-empty value turns colour off
        return True
    if os.environ.get("FORCE_COLOR") or "TTY_COMPATIBLE" in os.environ:
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return False


def _write_plain(findings, stream, ctx) -> None:
    out = stream.write
    source = _Lines()
    for f in findings:
        if f.suppressed:
            continue
        at = place(f)
        lines = source.of(f, at)
        out(f"{_path(f, ctx)}:{at.text}: {f.code} [{f.severity}] {terminal_safe(f.message)}\n")
        if 0 < at.line <= len(lines):
            text, offset, width = _excerpt(at, lines)
            gutter = str(at.line)
            pad = " " * len(gutter)
            out(f"{pad} |\n{gutter} | {text}\n{pad} | {' ' * offset}{'^' * width}\n")
        if f.fix is not None:
            out(f"{' ' * len(str(at.line))} = {_fix_kind(f)}: {terminal_safe(f.fix.description)}\n")
        out("\n")
    if ctx.statistics:
        for code, name, count in per_rule(findings):
            out(f"{count:6d}  {code}  {name}\n")
    if not ctx.quiet:
        out(summary_line(findings, ctx.files_checked) + "\n")


def _path(f, ctx) -> str:
    return terminal_safe(shown_path(f.path, ctx.root))


def _excerpt(at: Place, lines) -> tuple:
    """(the line as shown, the caret's offset, its width): control characters are shown
    escaped, so the caret is placed on the escaped text."""
    text = lines[at.line - 1].expandtabs(1)
    if len(text) > 200:
        text = text[:200] + "…"
    width = max(1, (at.end_column - at.column) if at.end_line == at.line else 1)
    width = min(width, max(1, len(text) - at.column + 1))
    start = max(0, at.column - 1)
    before, marked, after = text[:start], text[start:start + width], text[start + width:]
    before, marked = terminal_safe(before), terminal_safe(marked)
    return before + marked + terminal_safe(after), len(before), max(1, len(marked))


def _fix_kind(f) -> str:
    return "fix available" if f.fix.applicability == "safe" else "unsafe fix available (--unsafe-fixes)"


def write(findings, stream, ctx) -> None:
    if _plain(stream, ctx):
        _write_plain(findings, stream, ctx)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.text import Text

    force = None if ctx.color is None else ctx.color
    console = Console(file=stream, force_terminal=force, no_color=(ctx.color is False) or None,
                      highlight=False, soft_wrap=True, emoji=False)
    shown = [f for f in findings if not f.suppressed]
    source = _Lines()
    for f in shown:
        at = place(f)
        lines = source.of(f, at)
        console.print(Text.assemble((f"{_path(f, ctx)}:{at.text}:", "bold"), " ",
                                    (f"{f.code} [{f.severity}]", _STYLE[f.severity]), " ", terminal_safe(f.message)))
        if 0 < at.line <= len(lines):
            text, offset, width = _excerpt(at, lines)
            gutter = str(at.line)
            pad = " " * len(gutter)
            console.print(f"[blue]{pad} |[/blue]")
            console.print(f"[blue]{gutter} |[/blue] {escape(text)}")
            console.print(f"[blue]{pad} |[/blue] {' ' * offset}[{_STYLE[f.severity]}]{'^' * width}[/]")
        if f.fix is not None:
            console.print(f"[blue]{' ' * len(str(at.line))} =[/blue] {_fix_kind(f)}: "
                          f"{escape(terminal_safe(f.fix.description))}")
        console.print()
    if ctx.statistics:
        for code, name, count in per_rule(findings):
            console.print(f"{count:6d}  {code}  {name}")
    if not ctx.quiet:
        console.print(summary_line(findings, ctx.files_checked))
