"""Which model types skip whole layers in training, per key (measured by auditor/generate/layer_skipping.py).

Read with stdlib json on the static path; see data/layer_skipping.json for how each answer was
found (`method`: measured on a tiny model, or a scan of the modeling source where inputs could
not be synthesised) and the evidence.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "layer_skipping.json")


@lru_cache(maxsize=1)
def _table() -> dict:
    with open(DATA_FILE, encoding="utf-8") as handle:
        doc = json.load(handle)
    return {(model_type, e["key"]): e for model_type, entries in doc["model_types"].items() for e in entries}


def skips(model_type: str, key: str) -> bool:
    """True when `key` > 0 makes this model type skip a whole layer in training."""
    entry = _table().get((model_type, key))
    return bool(entry and entry["skips"])


def skips_wherever_read(key: str) -> int:
    """For a key whose model type is unknown (a script's from_pretrained(..., layerdrop=0.1)
    on an Auto class): how many model types were found to skip layers with it, when every
    model type decided (measured or scanned) does; 0 when any does not or none was decided."""
    decided = [e["skips"] for (_mt, k), e in _table().items() if k == key and e["skips"] is not None]
    return len(decided) if decided and all(decided) else 0


def evidence(model_type: str, key: str) -> str:
    entry = _table().get((model_type, key))
    return "" if entry is None else f"{entry['method']}: {entry['evidence']}"
