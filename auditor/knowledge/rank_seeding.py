"""How a framework seeds the ranks of a data-parallel run (data/rank_seeding.json, each rule with
the pinned source line it was read from). `probe --nproc` seeds its ranks by these rules; an
unlisted framework has no rule, and the probe says it assumed one."""

from __future__ import annotations

import json
import os
from functools import lru_cache

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "rank_seeding.json")


@lru_cache(maxsize=1)
def table() -> dict:
    with open(DATA_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def rule(name: str) -> dict | None:
    return table()["rules"].get(name)


def rule_for(dialect: str, trainer: str | None) -> tuple:
    """(rule name, rule) for a recipe's dialect and trainer, or ("", None) when none is verified."""
    by_trainer = table()["dialects"].get(dialect or "", {})
    name = by_trainer.get(trainer or "") or by_trainer.get("*", "")
    return (name, table()["rules"][name]) if name else ("", None)


def seed_of(rule_entry: dict, base: int, rank: int) -> int:
    """The seed a rank ends up with under a rule whose rank_term is true or false."""
    return base + rank if rule_entry.get("rank_term") is True else base
