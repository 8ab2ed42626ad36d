"""Generators: they write the shipped data files from the pinned libraries and never run on a
user's machine during a check. Each is `python -m auditor.generate.<name>` (with `--check`
for the drift test where it has one); the README's "Regenerating the knowledge" lists them.

- `architectures` -> knowledge/data/architectures.json, peft_methods.json (imports the probe)
- `trl` -> knowledge/data/trl.json
- `layer_skipping` -> knowledge/data/layer_skipping.json (torch)
- `names` -> setup/data/model_names.json seed, model_classes.json
- `hfargs` -> setup/data/hfargs.json
"""
