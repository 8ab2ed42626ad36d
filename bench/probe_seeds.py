"""Measure the probe's false-alarm and miss rates over many seeds (run by hand; minutes).

    PYTHONPATH=. python bench/probe_seeds.py [--seeds 200] [--hf-seeds 50]

Clean models: the factories in tests/probe_faults.py and the Llama+LoRA fixture; a false alarm
is any finding. Faults: the planted factories and the dead-key fixture; a miss is a run that
lacks the expected code. Rates come with a 95% Wilson interval (0 of n is not "0").
"""

import argparse
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from auditor.probe.stats import wilson_interval
from tests.probe_faults import CLEAN, FAULTS
from tests.probe_helpers import codes, probe_config, probe_factory

ZOO = {
    "bert": {"model_type": "bert", "architectures": ["BertForSequenceClassification"], "hidden_dropout_prob": 0.1,
             "attention_probs_dropout_prob": 0.1},
    "gpt2": {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1, "embd_pdrop": 0.1,
             "resid_pdrop": 0.1},
    "t5": {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "dropout_rate": 0.1,
           "decoder_start_token_id": 0},
    "bart": {"model_type": "bart", "architectures": ["BartForConditionalGeneration"], "dropout": 0.1,
             "attention_dropout": 0.1, "activation_dropout": 0.1},
}


def report(label, bad, n, what):
    lo, hi = wilson_interval(bad, n, 0.05)
    print(f"{label:32s} {what:11s} {bad:4d}/{n:<4d} = {bad / n:.4f}  (95% CI [{lo:.4f}, {hi:.4f}])", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--hf-seeds", type=int, default=50)
    ap.add_argument("--zoo-seeds", type=int, default=20, help="seeds for the clean BERT/GPT-2/T5/BART configs")
    ap.add_argument("--only-zoo", action="store_true")
    args = ap.parse_args()
    if args.only_zoo:
        args.seeds = args.hf_seeds = 0
    t0 = time.time()
    fixture = os.path.join(REPO, "fixtures", "probe-llama-lora")
    dead = os.path.join(REPO, "fixtures", "probe-dead-key", "config.json")
    total_fa = total_clean = total_miss = total_fault = 0
    tmp = tempfile.mkdtemp()
    for name, data in ZOO.items():
        path = os.path.join(tmp, f"{name}.json")
        with open(path, "w") as fh:
            json.dump(data, fh)
        bad = sum(bool(codes(probe_config(path, seed=s))) for s in range(args.zoo_seeds))
        if args.zoo_seeds:
            report(name, bad, args.zoo_seeds, "false alarm")
        total_fa, total_clean = total_fa + bad, total_clean + args.zoo_seeds
    for name in CLEAN if args.seeds else ():
        bad = sum(bool(codes(probe_factory(name, seed=s))) for s in range(args.seeds))
        report(name, bad, args.seeds, "false alarm")
        total_fa, total_clean = total_fa + bad, total_clean + args.seeds
    if not args.hf_seeds:
        report("ALL clean runs", total_fa, total_clean, "false alarm")
        return 0
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
