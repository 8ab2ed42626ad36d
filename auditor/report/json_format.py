"""Machine-readable findings; stable field names (see the README) and no colour, ever.

The document is valid UTF-8 whatever the file names: a name that is not UTF-8 is written with
its undecodable bytes as `\\xNN` in `path`, and its exact bytes, base64-encoded, in
`path_bytes` (report/safe_text.py); messages are escaped the same way.

Imports inside functions (`base64`) are deferred for start-up time: a run that never takes that
path never pays for them.
"""

import json

from auditor import __version__
from auditor.report import counts, per_rule, shown_path
from auditor.report.safe_text import deep, raw_bytes


def _entry(f, root) -> dict:
    out = f.to_dict()
    out["path"] = shown_path(f.path, root)
    raw = raw_bytes(out["path"])
    if raw is not None:
        import base64

        out["path_bytes"] = base64.b64encode(raw).decode("ascii")
    return out


def write(findings, stream, ctx) -> None:
    doc = {
        "tool": "dropout-audit",
        "version": __version__,
        "files_checked": ctx.files_checked,
        "counts": counts(findings),
        "findings": [_entry(f, ctx.root) for f in findings if not f.suppressed],
    }
    if ctx.statistics:
        doc["statistics"] = [{"code": code, "name": name, "count": count} for code, name, count in per_rule(findings)]
    json.dump(deep(doc), stream, indent=2)
    stream.write("\n")
