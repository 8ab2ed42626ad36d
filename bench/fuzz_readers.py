"""Coverage-guided fuzzing of the readers with atheris, run by hand (not in CI):

    PYTHONPATH=. python bench/fuzz_readers.py -atheris_runs=200000 -max_len=4096 [corpus_dir]

Each input is split by its first byte into a file name (YAML, JSON, adapter, config) and
bytes; it goes through read_text's decoding rules, the YAML/JSON reader and the rules
engine. Anything but a clean return is a crash: the engine must turn every input into
findings. Without atheris installed the module imports and does nothing, so test
collection and linters can walk bench/ safely.
"""

from __future__ import annotations

import os
import sys

try:
    import atheris
except ImportError:  # pragma: no cover - atheris is optional, installed by hand
    atheris = None

NAMES = ("recipe.yaml", "config.json", "adapter_config.json", "train.yml")


def _setup():
    from auditor.run.engine import Engine, Options

    return Engine(Options())


ENGINE = None


def one_input(data: bytes) -> None:
    global ENGINE
    if ENGINE is None:
        ENGINE = _setup()
    from auditor.sources import structured

    if not data:
        return
    name = NAMES[data[0] % len(NAMES)]
    raw = data[1:]
    if b"\x00" in raw:
        return  # read_text refuses these before any parser sees them
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return
    src = structured.read(name, text)
    if src is not None:
        for s in src.settings:
            assert 0 <= s.value_span.start <= s.value_span.end <= len(text)
        ENGINE.check_sources(".", [src])


def main(argv=None):
    if atheris is None:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 0
    with atheris.instrument_imports():
        import ruamel.yaml  # noqa: F401

        import auditor.run.engine  # noqa: F401
        import auditor.sources.structured  # noqa: F401
    atheris.Setup(list(argv or sys.argv), one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
