"""Generate a large tree of training configs from the shared corpus, for the scaling bench.

The copies are real recipes, adapters and model configs (the corpus's YAML and JSON files
up to MAX_BYTES, the size of hand-written configs) with their dropout values varied, so
every rule family fires somewhere and no two files hash alike (the cache must not get free
hits from duplicate content). Files are grouped FILES_PER_DIR to a directory keeping their
names, so config.json / adapter_config.json sit beside recipes and cross-file rules run.

    python bench/gen_tree.py OUT_DIR COUNT [--corpus ../shared/corpus] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import random
import re

MAX_BYTES = 4096
FILES_PER_DIR = 10
SUFFIXES = (".yaml", ".yml", ".json")
VALUES = ("0.0", "0.05", "0.1", "0.2", "0.5", "0.9", "1.5", "10", "5e-2", "null")

# `lora_dropout: 0.05`, `"attention_dropout": 0.1,` ... : the value after a dropout-ish key.
_DROPOUT_VALUE = re.compile(r'((?:dropout|pdrop)[A-Za-z_]*"?\s*:\s*)(-?[0-9][0-9.eE+-]*)')


def corpus_pool(corpus: str) -> list:
    """(name, text) of every corpus config small enough to be a hand-written one."""
    pool = []
    for root, dirs, files in os.walk(corpus):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.lower().endswith(SUFFIXES) and os.path.getsize(path) <= MAX_BYTES:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    pool.append((name, fh.read()))
    if not pool:
        raise SystemExit(f"no YAML/JSON files under {corpus}")
    return pool


def vary(text: str, rng: random.Random, serial: int) -> str:
    """Other dropout values, and a per-copy marker (a YAML comment, JSON trailing whitespace)
    so that no two files have the same bytes."""
    json_like = text.lstrip().startswith("{")

    def repl(m):
        value = rng.choice(VALUES)
        if json_like and value in ("5e-2", "null"):
            value = "0.05"
        return m.group(1) + value

    text = _DROPOUT_VALUE.sub(repl, text)
    if json_like:
        return text.rstrip() + "\n" + " " * (serial % 7) + "\n"  # whitespace keeps JSON valid
    return text.rstrip() + f"\n# bench copy {serial}\n"


def generate(out: str, count: int, corpus: str, seed: int = 0) -> int:
    rng = random.Random(seed)
    pool = corpus_pool(corpus)
    written = 0
    d = 0
    while written < count:
        directory = os.path.join(out, f"g{d // 100:04d}", f"d{d:05d}")
        os.makedirs(directory, exist_ok=True)
        used = set()
        for _ in range(min(FILES_PER_DIR, count - written)):
            name, text = rng.choice(pool)
            if name in used:
                name = f"{written}_{name}"
            used.add(name)
            with open(os.path.join(directory, name), "w", encoding="utf-8") as fh:
                fh.write(vary(text, rng, written))
            written += 1
        d += 1
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("count", type=int)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--corpus", default=os.path.join(os.path.dirname(here), "shared", "corpus"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = generate(args.out, args.count, args.corpus, args.seed)
    print(f"wrote {n} files under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
