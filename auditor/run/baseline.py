"""Baselines: adopt the tool on an existing repository without fixing everything first.

`--write-baseline FILE` records today's findings; `--baseline FILE` hides those and reports
only new ones. Entries are keyed by path, rule code and setting path (`model.lora_dropout`),
never by line, so adding a comment or reordering keys does not resurrect old findings.
Counts make it a multiset: a file with two accepted findings of one kind gets a third
reported. Paths are stored relative to the baseline file, so the baseline works from any
working directory.

Imports inside functions (`run.atomic_write`) are deferred for start-up time: a run that never
takes that path never pays for them.
"""

from __future__ import annotations

import json
import os
from collections import Counter

from auditor import __version__
from auditor.report.locations import relative

VERSION = 1


class BaselineError(Exception):
    """The baseline file cannot be read or has the wrong shape; exit code 2."""


def _identity(finding, root: str) -> tuple:
    return relative(finding.path, root), finding.code, finding.key


class Baseline:
    def __init__(self, entries: Counter, root: str):
        self.entries = Counter(entries)
        self.remaining = Counter(entries)
        self.root = root

    def reset(self) -> None:
        self.remaining = Counter(self.entries)

    def covers(self, finding) -> bool:
        """True (and one accepted occurrence used up) when the finding is in the baseline."""
        ident = _identity(finding, self.root)
        if self.remaining[ident] > 0:
            self.remaining[ident] -= 1
            return True
        return False


def load(path: str) -> Baseline:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read baseline: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BaselineError(f"{path}: baseline is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("findings"), list):
        raise BaselineError(f"{path}: not a dropout-audit baseline (version {VERSION})")
    entries = Counter()
    for i, e in enumerate(data["findings"]):
        try:
            entries[(str(e["path"]), str(e["code"]), str(e.get("key", "")))] += int(e.get("count", 1))
        except (TypeError, KeyError, ValueError):
            raise BaselineError(f"{path}: findings[{i}]: needs 'path', 'code' and an integer 'count'") from None
    return Baseline(entries, os.path.dirname(os.path.abspath(path)))


def write(findings, path: str) -> int:
    """Record the findings that are currently reported; returns how many."""
    from auditor.run.atomic_write import write_new

    root = os.path.dirname(os.path.abspath(path))
    counts = Counter(_identity(f, root) for f in findings if not f.suppressed)
    doc = {
        "tool": "dropout-audit",
        "tool_version": __version__,
        "version": VERSION,
        "findings": [{"path": p, "code": c, "key": k, "count": n} for (p, c, k), n in sorted(counts.items())],
    }
    write_new(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))
    return sum(counts.values())
