"""Measure the probe's false-alarm and miss rates over many seeds (run by hand; minutes).

    PYTHONPATH=. python bench/probe_seeds.py [--seeds 200] [--hf-seeds 50]

Clean models: the factories in tests/probe_faults.py and the Llama+LoRA fixture; a false alarm
is any finding. Faults: the planted factories and the dead-key fixture; a miss is a run that
lacks the expected code. Rates come with a 95% Wilson interval (0 of n is not "0").
"""

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from auditor.probe.stats import wilson_interval
from tests.probe_faults import CLEAN, FAULTS
from tests.probe_helpers import codes, probe_config, probe_factory


def report(label, bad, n, what):
    lo, hi = wilson_interval(bad, n, 0.05)
    print(f"{label:32s} {what:11s} {bad:4d}/{n:<4d} = {bad / n:.4f}  (95% CI [{lo:.4f}, {hi:.4f}])", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--hf-seeds", type=int, default=50)
    args = ap.parse_args()
    t0 = time.time()
    fixture = os.path.join(REPO, "fixtures", "probe-llama-lora")
    dead = os.path.join(REPO, "fixtures", "probe-dead-key", "config.json")
    total_fa = total_clean = total_miss = total_fault = 0
    for name in CLEAN:
        bad = sum(bool(codes(probe_factory(name, seed=s))) for s in range(args.seeds))
        report(name, bad, args.seeds, "false alarm")
        total_fa, total_clean = total_fa + bad, total_clean + args.seeds
    bad = sum(bool(codes(probe_config(os.path.join(fixture, "config.json"),
                                      os.path.join(fixture, "adapter_config.json"), seed=s)))
              for s in range(args.hf_seeds))
    report("llama-lora fixture", bad, args.hf_seeds, "false alarm")
    total_fa, total_clean = total_fa + bad, total_clean + args.hf_seeds
    for name, want in sorted(FAULTS.items()):
        miss = sum(not want <= codes(probe_factory(name, seed=s)) for s in range(args.seeds))
        report(name, miss, args.seeds, "miss")
        total_miss, total_fault = total_miss + miss, total_fault + args.seeds
    miss = sum("DRP804" not in codes(probe_config(dead, seed=s, steps=3)) for s in range(args.hf_seeds))
    report("dead-key fixture", miss, args.hf_seeds, "miss")
    total_miss, total_fault = total_miss + miss, total_fault + args.hf_seeds
    report("ALL clean runs", total_fa, total_clean, "false alarm")
    report("ALL fault runs", total_miss, total_fault, "miss")
    print(f"{time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
