"""Generate `data/hfargs.json`: the fields HfArgumentParser accepts for each argument class.

HfArgumentParser rejects a YAML key or a command-line flag that no dataclass field has, so
knowing the fields is what lets the static path say "this key raises ValueError at start-up"
without importing Transformers. Run with the pinned libraries:

    python -m auditor.generate.hfargs

`tests/test_graph_hfargs.py` regenerates the table in memory and fails when it drifts.
"""

from __future__ import annotations

import dataclasses
import json
import os

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup", "data", "hfargs.json")

TRANSFORMERS_CLASSES = ("TrainingArguments", "Seq2SeqTrainingArguments")


def _trl_classes() -> list:
    import trl

    names = []
    for name in sorted(dir(trl)):
        if not (name.endswith("Config") or name == "ScriptArguments") or name.startswith("_"):
            continue
        try:
            obj = getattr(trl, name)
        except Exception:  # noqa: BLE001 - an optional extra of trl that is not installed
            continue
        if isinstance(obj, type) and dataclasses.is_dataclass(obj):
            names.append((name, obj))
    return names


def _describe(cls) -> dict:
    """Fields with init=True (the only ones HfArgumentParser reads), their metadata aliases,
    and the booleans defaulting to True (which also get a `--no_<name>` flag)."""
    fields, aliases, no_flags = [], [], []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        fields.append(f.name)
        extra = f.metadata.get("aliases") if f.metadata else None
        if isinstance(extra, str):
            extra = [extra]
        aliases.extend(extra or [])
        if f.default is True:
            no_flags.append(f.name)
    return {"fields": sorted(fields), "aliases": sorted(aliases), "no_flags": sorted(no_flags)}


def generate() -> dict:
    import transformers
    import trl

    classes = {name: _describe(getattr(transformers, name)) for name in TRANSFORMERS_CLASSES}
    for name, cls in _trl_classes():
        classes[name] = _describe(cls)
    return {"transformers": transformers.__version__, "trl": trl.__version__, "classes": classes}


def main() -> None:
    data = generate()
    with open(DATA, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(f"wrote {len(data['classes'])} classes to {DATA}")


if __name__ == "__main__":
    main()
