"""The shipped model-name table: a hub id to a Transformers model type, without the network.

A wrong model type is worse than none (every architecture rule would then raise false alarms
from it), so the matcher never guesses: an id resolves only through an exact entry, or through
exactly one reviewed family pattern. Two patterns of different types, or none, leave it unknown.
The data (`data/model_names.json`) has three parts: `seed` (exact ids generated from the
reference checkpoints the pinned Transformers' config classes name; `auditor/generate/names.py`),
`corrections` (reviewed exact ids, winning over the seed; null removes a wrong hint) and
`patterns` (reviewed family patterns on the name, each accepted only under its owners' orgs
("" for the Hub's legacy ids without one) or a known mirror, each with ids it must and must
not match, run as tests).
The file is read once, lazily, only when a hub id turns up.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache, lru_cache

from auditor.core.lazy_regex import LazyRegex

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "model_names.json")
CLASSES_FILE = os.path.join(os.path.dirname(DATA_FILE), "model_classes.json")

# A hub id as the Hub allows it: an optional owner and a name, no path tricks.
HUB_ID = LazyRegex(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")

# Re-upload suffixes that do not change the architecture (quantisations, dtype tags), stripped
# repeatedly from the end of the name before matching.
_SUFFIX = LazyRegex(
    r"-(unsloth-bnb-4bit|bnb-4bit|bnb-8bit|bnb-nf4(-bf16)?|4bit|8bit|awq|gptq(-int[48])?|int[48]|"
    r"gguf|fp8(-dynamic)?|nvfp4|mlx|bf16|fp16)$")


@lru_cache(maxsize=1)
def _document() -> dict:
    with open(DATA_FILE, encoding="utf-8") as handle:
        return json.load(handle)


@lru_cache(maxsize=1)
def _table() -> dict:
    doc = _document()
    exact = dict(doc.get("seed", {}))
    for ident, model_type in doc.get("corrections", {}).items():
        exact[ident.lower()] = model_type
    by_name: dict = {}
    for ident, model_type in exact.items():
        if model_type:
            by_name.setdefault(ident.rsplit("/", 1)[-1], set()).add(model_type)
    # Compiling every pattern costs more than reading the file; each is compiled the first time
    # its needle (a literal every match contains) appears in a name.
    patterns = [(p["needle"], p["pattern"], p["model_type"], frozenset(o.lower() for o in p["orgs"]))
                for p in doc.get("patterns", [])]
    return {"exact": exact, "by_name": by_name, "patterns": patterns,
            "mirrors": frozenset(m.lower() for m in doc.get("mirrors", []))}


@cache
def _compiled(pattern: str):
    return re.compile(pattern)


def is_hub_id(ref: str) -> bool:
    return bool(HUB_ID.match(ref)) and ".." not in ref


def strip_suffixes(name: str) -> str:
    while True:
        shorter = _SUFFIX.sub("", name)
        if shorter == name or not shorter:
            return name
        name = shorter


def match(ref: str) -> tuple:
    """(model type or None, how it was decided). Never a guess: see the module docstring."""
    if not is_hub_id(ref):
        return None, "not a hub id"
    table = _table()
    ident = ref.lower()
    if ident in table["exact"]:
        model_type = table["exact"][ident]
        return (model_type, f"exact id {ref}") if model_type else (None, f"{ref} is known to be ambiguous")
    org, _, name = ident.rpartition("/")
    name = strip_suffixes(name)
    mirror = org in table["mirrors"]
    candidates = {}
    if mirror or not org:
        for model_type in table["by_name"].get(name, ()):
            candidates.setdefault(model_type, f"re-upload of a known id ({name})")
    for needle, pattern, model_type, orgs in table["patterns"]:
        if needle in name and (org in orgs or mirror) and _compiled(pattern).fullmatch(name):
            candidates.setdefault(model_type, f"family pattern {pattern}")
    if len(candidates) == 1:
        (model_type, how), = candidates.items()
        return model_type, how
    if candidates:
        return None, f"{ref} matches several model types ({', '.join(sorted(candidates))})"
    return None, f"{ref} is not in the name table"


@lru_cache(maxsize=1)
def class_table() -> dict:
    """Model and config class name -> model type (generated from Transformers' Auto mappings),
    read only when code names a concrete class."""
    with open(CLASSES_FILE, encoding="utf-8") as handle:
        return json.load(handle)
