"""GitLab Code Quality report (the `codequality` artifact): a JSON array of issues.

GitLab compares fingerprints between the base and the merge request branch to tell new
issues from old ones, so they are the line-independent fingerprints of locations.py.
"""

import json

from auditor.report.locations import fingerprints, message_of, relative
from auditor.report.safe_text import deep

_SEVERITY = {"error": "major", "warning": "minor", "info": "info"}


def write(findings, stream, ctx) -> None:
    shown = [f for f in findings if not f.suppressed]
    issues = []
    for f, fp in zip(shown, fingerprints(shown, ctx.root)):
        s = f.span
        issues.append({
            "type": "issue",
            "check_name": f"{f.code} {f.name}",
            "description": f"{f.code} {message_of(f)}",
            "categories": ["Bug Risk"],
            "severity": _SEVERITY[f.severity],
            "fingerprint": fp,
            "location": {
                "path": relative(f.path, ctx.root),
                "positions": {"begin": {"line": s.line, "column": s.column},
                              "end": {"line": s.end_line, "column": s.end_column}},
            },
        })
    json.dump(deep(issues), stream, indent=2)
    stream.write("\n")
