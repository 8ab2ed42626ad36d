"""Regenerate the seed of the shipped model-name table from the pinned Transformers.

Why a seed and not the whole table: every config class names a reference checkpoint
(`@auto_docstring(checkpoint="meta-llama/Llama-2-7b-hf")` or a `[name](https://huggingface.co/name)`
link in its docstring), which gives exact ids for free, but they are hints, not truth
(gemma3_text names google/gemma-3-4b-it, a multimodal gemma3 checkpoint). So the generator
writes only the `seed` table (and data/model_classes.json, model and config class names to their
type, from the Auto mappings); the hand-reviewed `patterns` and `corrections` in the same file are
kept as they are, and a checkpoint that two model types claim is dropped (never guess).

    python -m auditor.generate.names          # rewrite the seed in data/model_names.json
    python -m auditor.generate.names --check  # exit 1 when the pinned Transformers disagrees

The Transformers sources are read as text (nothing is imported but the name mapping), so the
run takes seconds.

Imports inside functions (`knowledge.architectures`, `transformers`, `transformers.models.auto`)
are deferred for start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from auditor.setup.names import CLASSES_FILE, DATA_FILE

_DECORATOR = re.compile(r'@auto_docstring\((?:[^()]|\([^()]*\))*?\bcheckpoint\s*=\s*"([^"]+)"', re.S)
_LINK = re.compile(r"\[([^\]\s]+?)\]\(https://huggingface\.co/([^)\s]+?)\)")
_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _class_block(text: str, class_name: str) -> str | None:
    """The decorators and body of `class_name` in one configuration module."""
    m = re.search(rf"^class {re.escape(class_name)}\b", text, re.M)
    if m is None:
        return None
    start = text.rfind("\n\n", 0, m.start())
    nxt = re.search(r"^(class |def |@)", text[m.end():], re.M)
    end = m.end() + nxt.start() if nxt else len(text)
    return text[max(start, 0):end]


def reference_checkpoint(text: str, class_name: str) -> str | None:
    block = _class_block(text, class_name)
    if block is None:
        return None
    m = _DECORATOR.search(block)
    if m:
        return m.group(1)
    for name, link in _LINK.findall(block):
        if name == link:
            return name
    return None


def seed() -> dict:
    """exact id (lowercased) -> model type, from every config class's reference checkpoint."""
    import transformers
    from transformers.models.auto import configuration_auto as auto

    models_dir = os.path.join(os.path.dirname(transformers.__file__), "models")
    claims: dict = {}
    for model_type, class_name in sorted(auto.CONFIG_MAPPING_NAMES.items()):
        module = auto.model_type_to_module_name(model_type)
        path = os.path.join(models_dir, module, f"configuration_{module}.py")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            checkpoint = reference_checkpoint(handle.read(), class_name)
        if checkpoint and _ID.match(checkpoint):
            claims.setdefault(checkpoint.lower(), set()).add(model_type)
    out = {}
    for ckpt, types in sorted(claims.items()):
        top = _outermost(types)
        if top is not None:
            out[ckpt] = top
    return out


def _outermost(types: set) -> str | None:
    """The one type that is not a sub-config of another claimer: a composite and its text and
    vision configs name the same checkpoint, which loads as the composite. Else None."""
    if len(types) == 1:
        return next(iter(types))
    from auditor.knowledge import architectures

    inner = set()
    for t in types:
        info = architectures.lookup(t)
        if info is not None:
            inner.update(info.sub_configs.values())
    outer = sorted(types - inner)
    return outer[0] if len(outer) == 1 else None


def classes() -> dict:
    """class name -> model type, from the Auto mappings (config classes and every model-class
    mapping). A class two types claim is dropped: Gemma3ForCausalLM builds a gemma3_text even
    though its name starts like Gemma3Config's, which is why names are not parsed."""
    from transformers.models.auto import configuration_auto, modeling_auto

    claims: dict = {}
    tables = [configuration_auto.CONFIG_MAPPING_NAMES] + [
        table for name, table in sorted(vars(modeling_auto).items())
        if name.startswith("MODEL") and name.endswith("_MAPPING_NAMES") and isinstance(table, dict)]
    for table in tables:
        for model_type, class_names in table.items():
            for cls in (class_names if isinstance(class_names, (list, tuple)) else [class_names]):
                if isinstance(cls, str):
                    claims.setdefault(cls, set()).add(model_type)
    config_of = configuration_auto.CONFIG_MAPPING_NAMES
    out = {}
    for cls, types in sorted(claims.items()):
        if len(types) > 1:  # several types reuse the class: the one whose config it is named after
            types = {t for t in types if cls.startswith(config_of.get(t, "?").removesuffix("Config"))}
        if len(types) == 1:
            out[cls] = types.pop()
    return out


def dump(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    import transformers

    with open(DATA_FILE, encoding="utf-8") as handle:
        doc = json.load(handle)
    fresh = seed()
    fresh_classes = classes()
    with open(CLASSES_FILE, encoding="utf-8") as handle:
        shipped_classes = json.load(handle)
    if args.check:
        if shipped_classes != fresh_classes:
            print("class table drifted; run python -m auditor.generate.names", file=sys.stderr)
            return 1
        old = doc.get("seed", {})
        added = sorted(set(fresh) - set(old))
        removed = sorted(set(old) - set(fresh))
        changed = sorted(k for k in set(old) & set(fresh) if old[k] != fresh[k])
        if added or removed or changed or doc.get("transformers") != transformers.__version__:
            print(f"model name seed drifted: {len(added)} added, {len(removed)} removed, "
                  f"{len(changed)} changed, version {doc.get('transformers')} -> {transformers.__version__}; "
                  "run python -m auditor.generate.names", file=sys.stderr)
            return 1
        return 0
    doc["transformers"] = transformers.__version__
    doc["seed"] = fresh
    with open(DATA_FILE, "w", encoding="utf-8") as handle:
        handle.write(dump(doc))
    with open(CLASSES_FILE, "w", encoding="utf-8") as handle:
        handle.write(dump(fresh_classes))
    print(f"{len(fresh)} reference checkpoints written to {DATA_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
