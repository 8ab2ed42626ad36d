"""Time and peak memory of the CLI on each bad input of tests/test_reliability_bad_inputs.py,
run by hand (the tests assert behaviour only):

    PYTHONPATH=. python bench/bad_inputs.py

One subprocess per case, so each peak RSS is that case's alone (ru_maxrss of the child).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.reliability_helpers import cli_env  # noqa: E402
from tests.test_reliability_bad_inputs import CASES, _write  # noqa: E402

EXTRA = [
    ("50MB-file", "config.json", None),
    ("10MB-long-line", "recipe.yaml", "lora_dropout: 0.1\nx: " + "a" * (10 * 1024 * 1024 - 40) + "\n"),
    ("1MB-many-keys", "recipe.yaml", "lora_dropout: 0.1\n" + "".join(f"k{i}: v\n" for i in range(120_000))),
]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'case':28} {'exit':>4} {'seconds':>8} {'peak MB':>8}")
        for name, filename, content in [(c[0], c[1], c[2]) for c in CASES] + EXTRA:
            folder = os.path.join(tmp, name)
            os.mkdir(folder)
            path = os.path.join(folder, filename)
            if content is None:
                with open(path, "wb") as fh:
                    fh.truncate(50 * 1024 * 1024)
            else:
                _write(path, content)
            start = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            proc = subprocess.run([sys.executable, "-m", "auditor", "check", "--format", "json", path],
                                  env=cli_env(), capture_output=True)
            seconds = time.perf_counter() - start
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            note = "" if peak > before else " (<= earlier peak)"
            print(f"{name:28} {proc.returncode:>4} {seconds:8.2f} {peak / 1024:8.1f}{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
