"""List the Transformers model types whose modeling code uses batch norm.

A model's train/eval mode changes two things: dropout and batch norm. Whether a type has
dropout is in data/architectures.json (its rates and their defaults); whether it has batch norm
is a fact of its modeling source, read here: a type counts when any modeling_*.py of its folder
builds nn.BatchNorm1d/2d/3d or SyncBatchNorm. DRP607 uses the list to pass over a freeze whose
module's mode changes nothing (a CLIPTextModel: no dropout by default, no batch norm, #31).

Run: `python -m auditor.generate.batch_norm_types` (imports transformers, a second); it rewrites
the "transformers_batch_norm_types" entry of data/library_models.json.

Imports inside functions (`transformers`) are deferred for start-up time: only this generator
needs them.
"""

from __future__ import annotations

import json
import os
import re

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "knowledge", "data",
                   "library_models.json")
_BATCH_NORM = re.compile(r"nn\.BatchNorm|BatchNorm[123]d|SyncBatchNorm")


def measure() -> tuple[str, list]:
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES, model_type_to_module_name

    root = os.path.join(os.path.dirname(transformers.__file__), "models")
    found = []
    for model_type in sorted(CONFIG_MAPPING_NAMES):
        folder = os.path.join(root, model_type_to_module_name(model_type))
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.startswith("modeling_") and name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    if _BATCH_NORM.search(handle.read()):
                        found.append(model_type)
                        break
    return transformers.__version__, found


def main() -> int:
    version, found = measure()
    with open(OUT, encoding="utf-8") as handle:
        document = json.load(handle)
    document["transformers_batch_norm_types"] = {"transformers": version, "types": found}
    with open(OUT, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    print(f"{len(found)} model types with batch norm (transformers {version}) -> {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
