"""`dropout-audit rule`: the catalogue as documentation (text for people, JSON for tools).

Imports inside functions (`core.selectors`) are deferred for start-up time: only an unknown
rule pays for them.
"""

from __future__ import annotations

import json

from auditor.core import catalogue


def _as_dict(r) -> dict:
    return {"code": r.code, "name": r.name, "category": r.category, "severity": r.severity,
            "unsure_severity": r.unsure_severity or None, "check": r.check,
            "params": r.params, "summary": r.summary, "why": r.why, "references": r.references,
            "examples": r.examples, "fix": r.fix or None}


def markdown_table(rules) -> str:
    """The README's rule list, generated so it cannot drift from rules/ (a test compares)."""
    rows = ["| code | name | category | severity | summary |", "|---|---|---|---|---|"]
    for r in rules:
        rows.append(f"| {r.code} | {r.name} | {r.category} | {r.shown_severity()} | {r.summary.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


def show(code, show_all: bool, fmt: str, stream) -> int:
    rules = catalogue.load()
    if code:
        chosen = [r for r in rules if r.code == code.upper() or r.name == code]
        if not chosen:
            from auditor.core.selectors import closest, describe

            stream.write(describe(code, closest(code, rules)).replace("unknown rule selector", "unknown rule") + "\n")
            return 2
    else:
        chosen = rules
    if fmt == "markdown":
        stream.write(markdown_table(chosen))
        return 0
    if fmt == "json":
        json.dump([_as_dict(r) for r in chosen], stream, indent=2)
        stream.write("\n")
        return 0
    if not code and not show_all:
        for r in chosen:
            stream.write(f"{r.code}  {r.name:34s} {r.category:13s} {r.shown_severity():16s} {r.summary}\n")
        return 0
    for r in chosen:
        stream.write(f"{r.code} {r.name}  ({r.category}, {r.shown_severity()})\n\n{r.summary}\n\n{r.why}\n")
        if r.params:
            stream.write(f"\nParameters: {json.dumps(r.params)}\n")
        if r.fix:
            stream.write(f"\nFix: {r.fix}\n")
        for label in ("bad", "good"):
            for ex in r.examples.get(label) or []:
                files = ex.get("files") or [ex]
                stream.write(f"\n{label.capitalize()} example:\n")
                for f in files:
                    stream.write(f"  # {f['file']}\n")
                    stream.write("".join(f"  {line}\n" for line in f["text"].splitlines()))
        if r.references:
            stream.write("\nReferences:\n" + "".join(f"  {ref}\n" for ref in r.references))
        stream.write("\n")
    return 0
