"""Hub ids collected from public repositories (tests/data/hub_ids_wild.tsv, issue #28) through
the resolver's name path: at least 300 ids from at least 30 repositories, no wrong type, at least
90% of the Transformers ids resolved, and every custom-code and other-library id named as such.
Only `families.classify` runs (bench/identity_wild.py prints the same figures)."""

from __future__ import annotations

import collections
import os

import pytest

from auditor.setup import families
from tests.conftest import REPO

LIST = os.path.join(REPO, "tests", "data", "hub_ids_wild.tsv")

with open(LIST, encoding="utf-8") as _fh:
    ROWS = [line.rstrip("\n").split("\t") for line in _fh if line.strip() and not line.startswith("#")]


def category(expected: str) -> str:
    return expected.split(":", 1)[0] if expected.startswith(("custom-code", "non-transformers")) else "transformers"


def _measure() -> dict:
    out = {c: {"right": 0, "unknown": [], "wrong": []} for c in ("transformers", "custom-code", "non-transformers")}
    for ident, expected, _repo, _where, remote in ROWS:
        v = families.classify(ident, remote_code=remote == "yes")
        got = (v.model_type if v.kind == "transformers" else
               f"non-transformers:{v.library}" if v.kind == "non-transformers" else v.kind)
        slot = out[category(expected)]
        if got is None:
            slot["unknown"].append(ident)
        elif got == expected:
            slot["right"] += 1
        else:
            slot["wrong"].append((ident, expected, got, v.detail))
    return out


RESULT = _measure()


def test_the_list_is_wide_enough_and_well_formed():
    assert len(ROWS) >= 300
    assert len({r[2] for r in ROWS}) >= 30
    assert len({r[0] for r in ROWS}) == len(ROWS)   # each id once
    assert all(len(r) == 5 and r[4] in ("yes", "no") and ":" in r[3] for r in ROWS)
    # most of the list comes from repositories collected here, not the examples
    assert max(collections.Counter(r[2] for r in ROWS).values()) < len(ROWS) / 5


def test_every_expected_type_exists_in_the_pinned_transformers():
    from auditor.knowledge import architectures

    missing = {r[1] for r in ROWS if category(r[1]) == "transformers"
               and architectures.lookup(r[1]) is None}
    assert missing == set()


@pytest.mark.parametrize("category", ["transformers", "custom-code", "non-transformers"])
def test_no_id_gets_a_wrong_verdict(category):
    assert RESULT[category]["wrong"] == []


def test_nine_in_ten_transformers_ids_are_resolved():
    slot = RESULT["transformers"]
    resolved, total = slot["right"], slot["right"] + len(slot["unknown"])
    assert resolved / total >= 0.90, slot["unknown"]


@pytest.mark.parametrize("category", ["custom-code", "non-transformers"])
def test_custom_code_and_other_libraries_are_named_as_such(category):
    assert RESULT[category]["unknown"] == []
