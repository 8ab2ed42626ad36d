"""GitHub Actions workflow commands: each finding becomes an annotation on the pull request.

The escaping follows the runner's rules (`%`, CR and LF in the message; also `:` and `,`
in properties), so a message with a colon cannot cut the annotation short; other control
characters and undecodable bytes of a file name are shown escaped (report/safe_text.py).
"""

from auditor.report.locations import message_of, relative
from auditor.report.safe_text import terminal_safe

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _data(text: str) -> str:
    """Control characters other than CR and LF (which the runner decodes) are shown escaped:
    the log is a terminal."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return terminal_safe(text)


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def write(findings, stream, ctx) -> None:
    for f in findings:
        if f.suppressed:
            continue
        s = f.span
        props = [f"file={_prop(relative(f.path, ctx.root))}", f"line={s.line}", f"col={s.column}",
                 f"endLine={s.end_line}"]
        if s.end_line == s.line:
            props.append(f"endColumn={s.end_column}")
        props.append(f"title={_prop(f'{f.code} {f.name}')}")
        stream.write(f"::{_LEVEL[f.severity]} {','.join(props)}::{_data(f'{f.code} [{f.severity}] {message_of(f)}')}\n")
