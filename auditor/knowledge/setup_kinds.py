"""Whether a training config fine-tunes a pretrained model, as each framework states it
(data/setup_kinds.json, each fact with its source). Loaded when a file with dropout rates is
read, never otherwise: the fine-tuning limits only matter where there is a rate to judge.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "setup_kinds.json")


@lru_cache(maxsize=1)
def _document() -> dict:
    with open(_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def by_construction(dialect: str) -> str | None:
    """Where the framework says it always fine-tunes, or None."""
    return _document()["by_construction"].get(dialect)


@lru_cache(maxsize=1)
def pretrained_keys() -> frozenset:
    return frozenset(_document()["pretrained_keys"])


def states_pretrained(key: str, value) -> str | None:
    """The framework and source when `key: value` says the run starts from pretrained weights."""
    fact = _document()["pretrained_keys"].get(key)
    if fact is None:
        return None
    if value in _document()["states_nothing"] or value in fact.get("unless", ()):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return f"{fact['framework']}: {fact['where']}"
