"""What the run-time guard costs per training step, as a ratio to the same loop without it.

Run by hand:  PYTHONPATH=. python bench/runtime_guard_overhead.py [--rounds 8] [--block 100] [--trainer]

A small GPT-2 (2 layers, width 64, batch 8 x 64 tokens, random weights, nothing downloaded)
trains on CPU, one thread. Blocks of `--block` steps without the guard and with it (sample_every=100, so one
sampled step per block after the 3 warm-up steps, exactly the guard's default) alternate, so
drift and other load hit both arms; the first round is not timed. Printed: the ratio of median
per-step times with a 95% bootstrap interval (the amortised cost the issue bounds at 2%); since
a shared machine's noise can be wider than 2%, also its parts: what an unsampled step's wrapper
costs, what one sampled step costs over a plain one, and the amortised ratio they imply for a
1000-step run; and the cost of an evaluation forward under the guard. `--trainer`
adds the same comparison through transformers' Trainer with the DropoutGuard callback. Times are
this process's CPU time by default (`--clock wall` for wall-clock).
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from auditor.probe.stats import ratio_of_medians_ci
from auditor.runtime.guard import Guard

torch.set_num_threads(1)


def model_and_batch(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=512, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                                       bos_token_id=0, eos_token_id=0))
    ids = torch.randint(0, 512, (8, 64), generator=torch.Generator().manual_seed(seed))
    return model, ids


CLOCK = time.process_time   # --clock wall: time.perf_counter


def per_step(fn, n: int) -> float:
    """Seconds per call. The default clock is this process's CPU time: with one torch thread it
    is the work done, and other load on a shared machine moves it far less than wall time."""
    t0 = CLOCK()
    for _ in range(n):
        fn()
    return (CLOCK() - t0) / n


def loop(args) -> None:
    model, ids = model_and_batch()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    guard = Guard(sample_every=args.sample_every, warmup=3)
    guard.bind(model)
    guard.start()

    def step():
        opt.zero_grad(set_to_none=True)
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()

    def guarded():
        with guard.train_step():
            step()
        guard.flush()

    plain, watched = [], []
    for r in range(args.rounds + 1):
        order = [(plain, step), (watched, guarded)] if r % 2 else [(watched, guarded), (plain, step)]
        for sink, fn in order:
            t = per_step(fn, args.block)
            if r:
                sink.append(t)
    ratio, (lo, hi) = ratio_of_medians_ci(watched, plain)
    print(f"training loop: {statistics.median(plain) * 1e3:.2f} ms/step plain, "
          f"{statistics.median(watched) * 1e3:.2f} ms/step guarded ({guard.sampled} of {guard.steps} steps sampled, "
          f"sample_every={args.sample_every}); ratio {ratio:.4f} (95% CI {lo:.4f}..{hi:.4f}) over {args.rounds} "
          f"blocks of {args.block} steps per arm")

    one = Guard(sample_every=1, warmup=0)
    one.bind(model)

    def sampled():
        with one.train_step():
            step()
    ref, samp = [], []
    for _ in range(5):
        ref.append(per_step(step, 5))
        samp.append(per_step(sampled, 5))
    ratio, (lo, hi) = ratio_of_medians_ci(samp, ref)
    print(f"one sampled step: {ratio:.2f}x a plain step (95% CI {lo:.2f}..{hi:.2f})")

    idle = Guard(sample_every=0, warmup=0)
    idle.bind(model)

    def unsampled():
        with idle.train_step():
            pass
    wrapper = statistics.median(per_step(unsampled, 10000) for _ in range(5))
    base = statistics.median(ref)
    extra = statistics.median(samp) - base
    run = 1000
    implied = 1 + (wrapper + (3 + run / args.sample_every) / run * extra) / base
    print(f"parts: an unsampled step's wrapper {wrapper * 1e6:.2f} us ({wrapper / base:.1e} of a step); a sampled "
          f"step +{extra * 1e3:.2f} ms; implied ratio for a {run}-step run with 3 warm-up steps and "
          f"sample_every={args.sample_every}: {implied:.4f}")

    model.eval()
    ev = Guard()
    ev.bind(model)

    @torch.no_grad()
    def forward():
        model(input_ids=ids)

    def guarded_forward():
        with ev.evaluation():
            forward()
    ref, watched_eval = [], []
    for _ in range(5):
        ref.append(per_step(forward, 10))
        watched_eval.append(per_step(guarded_forward, 10))
    ratio, (lo, hi) = ratio_of_medians_ci(watched_eval, ref)
    print(f"evaluation forward: {ratio:.2f}x without the guard (95% CI {lo:.2f}..{hi:.2f}); every eval forward is "
          "watched")


def trainer_arm(args) -> None:
    import transformers

    from auditor.runtime import DropoutGuard

    transformers.logging.set_verbosity_error()

    class Rows(torch.utils.data.Dataset):
        def __init__(self, n):
            self.ids = torch.randint(0, 512, (n, 64), generator=torch.Generator().manual_seed(1))

        def __len__(self):
            return len(self.ids)

        def __getitem__(self, i):
            return {"input_ids": self.ids[i], "labels": self.ids[i]}

    def run(with_guard: bool) -> float:
        model, _ = model_and_batch()
        targs = transformers.TrainingArguments(
            output_dir="/tmp/dropout-guard-bench", max_steps=args.trainer_steps, per_device_train_batch_size=8,
            logging_steps=50, save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)
        callbacks = [DropoutGuard()] if with_guard else []
        trainer = transformers.Trainer(model=model, args=targs, train_dataset=Rows(8 * args.trainer_steps),
                                       callbacks=callbacks)
        t0 = CLOCK()
        trainer.train()
        return (CLOCK() - t0) / args.trainer_steps

    plain, watched = [], []
    for r in range(args.trainer_reps):
        for with_guard in ((False, True) if r % 2 else (True, False)):
            (watched if with_guard else plain).append(run(with_guard))
    ratio, (lo, hi) = ratio_of_medians_ci(watched, plain)
    print(f"transformers Trainer, {args.trainer_steps} steps x {args.trainer_reps} runs per arm: "
          f"{statistics.median(plain) * 1e3:.2f} ms/step plain, {statistics.median(watched) * 1e3:.2f} ms/step with "
          f"DropoutGuard(); ratio {ratio:.4f} (95% CI {lo:.4f}..{hi:.4f})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--block", type=int, default=100)
    ap.add_argument("--sample-every", type=int, default=100)
    ap.add_argument("--trainer", action="store_true")
    ap.add_argument("--trainer-steps", type=int, default=200)
    ap.add_argument("--trainer-reps", type=int, default=4)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"torch {torch.__version__}, 1 thread, cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}, "
          f"clock: {args.clock} time")
    loop(args)
    if args.trainer:
        trainer_arm(args)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
