"""Model classes of other libraries whose dropout is known from their source (data/
library_models.json): PyG's MetaPath2Vec is an embedding table, so evaluating it under no_grad
in train mode changes nothing, and the eval-mode rules must not say it might (#31). Only
classes read at the source are listed; anything else stays unknown.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache

_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "library_models.json")


@lru_cache(maxsize=1)
def _document() -> dict:
    with open(_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def _classes() -> dict:
    return _document()["classes"]


def without_dropout(name: str, imported_from: str, keywords: tuple = ()) -> bool:
    """Whether class `name`, imported from module `imported_from` and called with `keywords`
    ("**" for a `**kwargs`), has no dropout by its source. An entry's "unless_keywords" are
    those through which a caller can hand it a module that may drop (PyG's `aggr`): given any
    of them, or an unpacked mapping that may hold one, nothing is claimed."""
    entry = _classes().get(name)
    if entry is None or entry["dropout"] != "none" or not (
            imported_from == entry["package"] or imported_from.startswith(entry["package"] + ".")):
        return False
    unless = entry.get("unless_keywords", ())
    return not (unless and any(k == "**" or k in unless for k in keywords))


def factory_without_dropout(function: str, model_name: str) -> bool:
    """Whether `function` (`open_clip.create_model_and_transforms`) builds, for `model_name`
    (`ViT-H-14`), a model whose source has no dropout (data/library_models.json, "factories")."""
    entry = _document().get("factories", {}).get(function)
    return entry is not None and entry["dropout"] == "none" and re.match(entry["model_names"], model_name) is not None


def batch_norm_type(model_type: str) -> bool:
    """Whether a Transformers model type's modeling code uses batch norm (generate/batch_norm_types.py)."""
    return model_type in _batch_norm_types()


@lru_cache(maxsize=1)
def _batch_norm_types() -> frozenset:
    return frozenset(_document()["transformers_batch_norm_types"]["types"])
