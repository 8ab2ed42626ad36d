"""Model identity on hub ids collected from public repositories (tests/data/hub_ids_wild.tsv,
issue #28): how many Transformers ids the name table and the family lexicon resolve, how many
are wrong, and whether custom-code and other libraries' models are named as such. Only the
resolver runs (`families.classify`, the name path of auditor/setup/identity.py): no files, no
cache, no network.

    python bench/identity_wild.py [--list] [tests/data/hub_ids_wild.tsv]
"""

from __future__ import annotations

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from auditor.setup import families  # noqa: E402

DEFAULT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data",
                       "hub_ids_wild.tsv")


def load(path: str) -> list:
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n").split("\t") for line in handle if line.strip() and not line.startswith("#")]


def category(expected: str) -> str:
    return expected.split(":", 1)[0] if expected.startswith(("custom-code", "non-transformers")) else "transformers"


def verdict(v) -> str | None:
    if v.kind == "transformers":
        return v.model_type
    if v.kind == "non-transformers":
        return f"non-transformers:{v.library}"
    return v.kind


def measure(rows: list) -> dict:
    """Per category: right / unknown / wrong, with the ids of the last two and what decided."""
    out = {c: {"right": 0, "unknown": [], "wrong": [], "by": collections.Counter()}
           for c in ("transformers", "custom-code", "non-transformers")}
    for ident, expected, _repo, _where, remote in rows:
        v = families.classify(ident, remote_code=remote == "yes")
        got = verdict(v)
        slot = out[category(expected)]
        if got is None:
            slot["unknown"].append((ident, expected, v.detail))
        elif got == expected:
            slot["right"] += 1
            slot["by"][v.source] += 1
        else:
            slot["wrong"].append((ident, expected, got, v.detail))
    return out


def main(argv) -> int:
    path = next((a for a in argv if not a.startswith("-")), DEFAULT)
    rows = load(path)
    repos = collections.Counter(r[2] for r in rows)
    print(f"{len(rows)} hub ids from {len(repos)} repositories ({path})")
    result = measure(rows)
    for name, slot in result.items():
        total = slot["right"] + len(slot["unknown"]) + len(slot["wrong"])
        share = 100.0 * slot["right"] / total if total else 0.0
        by = ", ".join(f"{k} {n}" for k, n in sorted(slot["by"].items()))
        print(f"  {name}: {total} ids, {slot['right']} right ({share:.1f}%; {by}), "
              f"{len(slot['unknown'])} unknown, {len(slot['wrong'])} wrong")
    for slot in result.values():
        for ident, expected, got, detail in slot["wrong"]:
            print(f"WRONG {ident}: expected {expected}, got {got} ({detail})")
    if "--list" in argv:
        for slot in result.values():
            for ident, expected, detail in slot["unknown"]:
                print(f"unknown {ident} (expected {expected}): {detail}")
    return 1 if any(slot["wrong"] for slot in result.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
