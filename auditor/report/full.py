"""The terminal report: findings grouped by file, each with its source line and a caret.

Colour comes from rich only when the stream is a terminal and NO_COLOR is unset (rich
checks both), so piping into a file or a CI log gives plain text.
"""

from __future__ import annotations

from auditor.report import per_rule, summary_line

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _source_lines(path: str) -> list:
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            return fh.read(2_000_000).splitlines()
    except OSError:
        return []


def write(findings, stream, ctx) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.text import Text

    force = None if ctx.color is None else ctx.color
    console = Console(file=stream, force_terminal=force, no_color=(ctx.color is False) or None,
                      highlight=False, soft_wrap=True, emoji=False)
    shown = [f for f in findings if not f.suppressed]
    current, lines = None, []
    for f in shown:
        if f.path != current:
            current, lines = f.path, _source_lines(f.path)
        console.print(Text.assemble((f"{f.path}:{f.span.line}:{f.span.column}:", "bold"), " ",
                                    (f"{f.code} [{f.severity}]", _STYLE[f.severity]), " ", f.message))
        if 0 < f.span.line <= len(lines):
            text = lines[f.span.line - 1].expandtabs(1)
            if len(text) > 200:
                text = text[:200] + "…"
            gutter = str(f.span.line)
            width = max(1, (f.span.end_column - f.span.column) if f.span.end_line == f.span.line else 1)
            width = min(width, max(1, len(text) - f.span.column + 1))
            pad = " " * len(gutter)
            console.print(f"[blue]{pad} |[/blue]")
            console.print(f"[blue]{gutter} |[/blue] {escape(text)}")
            console.print(f"[blue]{pad} |[/blue] {' ' * (f.span.column - 1)}[{_STYLE[f.severity]}]{'^' * width}[/]")
        if f.fix is not None:
            kind = "fix available" if f.fix.applicability == "safe" else "unsafe fix available (--unsafe-fixes)"
            console.print(f"[blue]{' ' * len(str(f.span.line))} =[/blue] {kind}: {escape(f.fix.description)}")
        console.print()
    if ctx.statistics:
        for code, name, count in per_rule(findings):
            console.print(f"{count:6d}  {code}  {name}")
    console.print(summary_line(findings, ctx.files_checked))
