"""Machine-readable findings; stable field names (see the README) and no colour, ever."""

import json

from auditor import __version__
from auditor.report import counts


def write(findings, stream, ctx) -> None:
    doc = {
        "tool": "dropout-audit",
        "version": __version__,
        "files_checked": ctx.files_checked,
        "counts": counts(findings),
        "findings": [f.to_dict() for f in findings if not f.suppressed],
    }
    json.dump(doc, stream, indent=2)
    stream.write("\n")
