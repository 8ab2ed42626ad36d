"""What the tool knows about libraries, stored as data and loaded without importing them.

Architectures and PEFT methods are generated from the installed libraries by
`python -m auditor.generate.architectures` (needs the `probe` extra) and shipped as JSON in `data/`;
framework semantics (trainers, recipe dialects) are hand-written with their references.
Every loader is lazy: the static path reads a data file only when a rule asks for it.
"""
