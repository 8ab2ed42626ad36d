"""One line per finding, `path:line:col: CODE [severity] message`, for grep and editors.

Path and message are shown with control characters escaped (report/safe_text.py)."""

from auditor.report import per_rule, place, shown_path, summary_line
from auditor.report.safe_text import terminal_safe


def line_of(f, root=None) -> str:
    return f"{terminal_safe(shown_path(f.path, root))}:{place(f).text}: {f.code} [{f.severity}] {terminal_safe(f.message)}"


def write(findings, stream, ctx) -> None:
    for f in findings:
        if not f.suppressed:
            stream.write(line_of(f, ctx.root) + "\n")
    if ctx.statistics:
        for code, name, count in per_rule(findings):
            stream.write(f"{count:6d}  {code}  {name}\n")
    if not ctx.quiet:
        stream.write(summary_line(findings, ctx.files_checked) + "\n")
