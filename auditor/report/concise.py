"""One line per finding, `path:line:col: CODE [severity] message`, for grep and editors."""

from auditor.report import per_rule, place, summary_line


def line_of(f) -> str:
    return f"{f.path}:{place(f).text}: {f.code} [{f.severity}] {f.message}"


def write(findings, stream, ctx) -> None:
    for f in findings:
        if not f.suppressed:
            stream.write(line_of(f) + "\n")
    if ctx.statistics:
        for code, name, count in per_rule(findings):
            stream.write(f"{count:6d}  {code}  {name}\n")
    stream.write(summary_line(findings, ctx.files_checked) + "\n")
