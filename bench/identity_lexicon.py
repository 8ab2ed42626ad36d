"""What the family lexicon costs (issue #28: under 2 ms, and only when a hub id the name table
does not know turns up). Each number is the best of N fresh interpreters (the module imported
first, so only the lexicon's own work is timed; the best run filters out a shared machine's
other load):

- load: reading and indexing data/model_families.json (`families._lexicon()`);
- first id: the first `identify()` of a fine-tune id after the load (its tokens compiled on first use);
- load + first id: what the first unknown hub id of a run pays.

Then one more id once everything is loaded, and a check, in a fresh interpreter, that checking a
recipe whose model the name table knows never reads the lexicon.

    python bench/identity_lexicon.py [runs]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from auditor.setup import families  # noqa: E402

IDS = ("allenai/Llama-3.1-Tulu-3-8B-SFT", "teknium/OpenHermes-2.5-Mistral-7B", "THUDM/chatglm3-6b",
       "runwayml/stable-diffusion-v1-5", "acme/atlas-3b")
_ENV = {**os.environ, "PYTHONPATH": REPO}


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=_ENV)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return out.stdout.strip()


def cold(runs: int) -> tuple:
    code = ("import time\n"
            "from auditor.setup import families\n"
            "t0 = time.perf_counter(); families._lexicon(); t1 = time.perf_counter()\n"
            f"families.identify({IDS[0]!r}); t2 = time.perf_counter()\n"
            "print((t1 - t0) * 1e3, (t2 - t1) * 1e3)\n")
    samples = [tuple(map(float, _python(code).split())) for _ in range(runs)]
    return (min(s[0] for s in samples), min(s[1] for s in samples), min(s[0] + s[1] for s in samples))


def lazy_check() -> str:
    return _python("import tempfile, os\n"
                   "from auditor.run.engine import Engine, Options\n"
                   "from auditor.setup import families\n"
                   "d = tempfile.mkdtemp()\n"
                   "p = os.path.join(d, 'recipe.yaml')\n"
                   "open(p, 'w').write('base_model: Qwen/Qwen2.5-0.5B\\nadapter: lora\\nlora_dropout: 0.05\\n')\n"
                   "list(Engine(Options()).check_paths([p]))\n"
                   "print('not read' if families.document.cache_info().currsize == 0 else 'READ')\n")


def main(argv) -> int:
    runs = int(argv[0]) if argv else 15
    load, first, total = cold(runs)
    for ident in IDS:
        families.identify(ident)
    warm = 1e9
    for _ in range(runs):
        start = time.perf_counter()
        for ident in IDS:
            families.identify(ident)
        warm = min(warm, (time.perf_counter() - start) * 1e3 / len(IDS))
    print(f"model_families.json: {os.path.getsize(families.DATA_FILE)} bytes, "
          f"{len(families.document()['families'])} families")
    print(f"best of {runs} fresh interpreters: load {load:.2f} ms, first id {first:.2f} ms, "
          f"load + first id {total:.2f} ms")
    print(f"one more id, warm (best of {runs}): {warm:.3f} ms")
    print(f"a recipe the name table resolves: lexicon {lazy_check()}")
    return 0 if total < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
