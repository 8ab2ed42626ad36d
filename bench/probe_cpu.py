"""Time `dropout-audit probe` end to end (new process, imports included) on the Llama+LoRA fixture.

Run by hand:  PYTHONPATH=. python bench/probe_cpu.py [--reps 3]
Prints each run and the median wall time. The budget is 60 s on 2 CPU cores.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(REPO, "fixtures", "probe-llama-lora")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    cmd = [sys.executable, "-m", "auditor", "probe", os.path.join(FIXTURE, "config.json"),
           "--adapter", os.path.join(FIXTURE, "adapter_config.json"), "--device", "cpu", "--format", "concise"]
    env = {**os.environ, "PYTHONPATH": REPO}
    times = []
    for i in range(args.reps):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
        times.append(time.perf_counter() - t0)
        print(f"run {i + 1}: {times[-1]:.2f} s, exit {out.returncode}: {out.stdout.strip().splitlines()[-1:]}")
        if out.returncode != 0:
            print(out.stdout, out.stderr, file=sys.stderr)
            return 1
    print(f"median of {args.reps}: {statistics.median(times):.2f} s (cpus: {os.cpu_count()}, "
          f"load average: {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
