"""SARIF 2.1.0, shaped for GitHub code scanning.

Code scanning reads the rule metadata from `tool.driver.rules` (its help pane renders
`help.markdown`), places alerts by repository-relative `artifactLocation.uri`, and matches
alerts across commits by `partialFingerprints`; those are line-independent so that editing
above a value does not close one alert and open another. Suppressed findings are listed with
a `suppressions` entry instead of being dropped, so an accepted finding shows as dismissed
rather than vanishing. Output is deterministic (no timestamps, no absolute paths): the
golden tests compare it byte for byte.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

from auditor import __version__
from auditor.report.locations import fingerprints, message_of, relative
from auditor.report.safe_text import deep

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}
FINGERPRINT = "dropoutAudit/v1"


def _uri(path: str, root: str) -> str:
    """Percent-encoded from the path's bytes (os.fsencode), so a name that is not UTF-8 is a
    valid URI naming exactly that file."""
    return quote(os.fsencode(relative(path, root)), safe="/._-~")


def help_markdown(rule) -> str:
    parts = [f"**{rule.code} {rule.name}** ({rule.category}, {rule.severity})", rule.summary, rule.why]
    for label in ("bad", "good"):
        for ex in (rule.examples or {}).get(label) or []:
            for f in ex.get("files") or [ex]:
                lang = "json" if str(f.get("file", "")).endswith(".json") else \
                    "python" if str(f.get("file", "")).endswith(".py") else "yaml"
                parts.append(f"{label.capitalize()} (`{f.get('file', '')}`):\n\n```{lang}\n{f.get('text', '').rstrip()}\n```")
    if rule.fix:
        parts.append(f"Fix: {rule.fix}")
    if rule.references:
        parts.append("References:\n\n" + "\n".join(f"- {r}" for r in rule.references))
    return "\n\n".join(p for p in parts if p)


def _rule(rule) -> dict:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.why},
        "help": {"text": f"{rule.summary}\n\n{rule.why}", "markdown": help_markdown(rule)},
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {"tags": ["dropout", rule.category], "category": rule.category},
    }


def _bare_rule(f) -> dict:
    """A finding whose rule is not in the active catalogue (e.g. emitted by the probe)."""
    return {"id": f.code, "name": f.name, "shortDescription": {"text": f.name},
            "fullDescription": {"text": f.name}, "help": {"text": f.name, "markdown": f.name},
            "defaultConfiguration": {"level": LEVEL[f.severity]},
            "properties": {"tags": ["dropout", f.category], "category": f.category}}


def _region(span) -> dict:
    return {"startLine": span.line, "startColumn": span.column, "endLine": span.end_line,
            "endColumn": max(span.end_column, 1)}


def _fix(f, uri: str) -> dict:
    return {
        "description": {"text": f.fix.description},
        "artifactChanges": [{
            "artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
            "replacements": [{"deletedRegion": {"charOffset": e.start, "charLength": e.end - e.start},
                              "insertedContent": {"text": e.replacement}} for e in f.fix.edits],
        }],
    }


def document(findings, ctx) -> dict:
    rules = [_rule(r) for r in (ctx.rules or [])]
    index = {r["id"]: i for i, r in enumerate(rules)}
    for f in findings:
        if f.code not in index:
            index[f.code] = len(rules)
            rules.append(_bare_rule(f))
    results = []
    for f, fp in zip(findings, fingerprints(findings, ctx.root)):
        uri = _uri(f.path, ctx.root)
        result = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": LEVEL[f.severity],
            "message": {"text": message_of(f)},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                "region": _region(f.span),
            }}],
            "partialFingerprints": {FINGERPRINT: fp},
        }
        if f.key:
            result["properties"] = {"setting": f.key}
        if f.cell:
            result.setdefault("properties", {})["notebookCell"] = f.cell[0]
        if f.fix is not None and not f.suppressed:
            result["fixes"] = [_fix(f, uri)]
        if f.suppressed:
            kind, justification = f.suppression or ("external", "")
            result["suppressions"] = [{"kind": kind, "status": "accepted",
                                       **({"justification": justification} if justification else {})}]
        results.append(result)
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "dropout-audit", "version": __version__, "semanticVersion": __version__,
                                "rules": rules}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


def write(findings, stream, ctx) -> None:
    json.dump(deep(document(findings, ctx)), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
