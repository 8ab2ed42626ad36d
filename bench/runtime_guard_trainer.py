"""The run-time guard on a tiny transformers Trainer run, on a chosen device (bench/gpu_probe.sh
runs it on CUDA): a clean run must report nothing and log the plan; a run whose callback puts the
model back in train mode during evaluation must be caught, naming the site.

    PYTHONPATH=. python bench/runtime_guard_trainer.py --device cuda      (or cpu)

Exit 0 when both verdicts are right, 1 otherwise.
"""

import argparse
import sys
import tempfile
import time

import torch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

    from auditor.runtime import DropoutActiveInEval, DropoutGuard

    transformers.logging.set_verbosity_error()

    class Rows(torch.utils.data.Dataset):
        def __init__(self, n, seed):
            self.ids = torch.randint(0, 97, (n, 32), generator=torch.Generator().manual_seed(seed))

        def __len__(self):
            return len(self.ids)

        def __getitem__(self, i):
            return {"input_ids": self.ids[i], "labels": self.ids[i]}

    class TrainDuringEval(TrainerCallback):
        def on_prediction_step(self, args, state, control, model=None, **kwargs):
            model.train()

    def run(extra):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=32, n_embd=64, n_layer=2, n_head=2,
                                           bos_token_id=0, eos_token_id=0))
        guard = DropoutGuard()
        with tempfile.TemporaryDirectory() as out:
            targs = TrainingArguments(output_dir=out, max_steps=args.steps, per_device_train_batch_size=8,
                                      per_device_eval_batch_size=8, eval_strategy="steps", eval_steps=args.steps // 2,
                                      logging_steps=5, save_strategy="no", report_to=[], disable_tqdm=True,
                                      use_cpu=args.device == "cpu")
            trainer = Trainer(model=model, args=targs, train_dataset=Rows(64, 0), eval_dataset=Rows(24, 1),
                              callbacks=[guard, *extra])
            t0 = time.perf_counter()
            try:
                trainer.train()
                caught = None
            except DropoutActiveInEval as exc:
                caught = str(exc)
            return guard, trainer, caught, time.perf_counter() - t0

    guard, trainer, caught, seconds = run([])
    report = guard.guard.report()
    plan = {k: v for k, v in report["plan"].items()}
    device = next(trainer.model.parameters()).device
    print(f"clean run on {device}: {seconds:.1f} s, {report['steps']} steps ({report['sampled_steps']} sampled), "
          f"{report['eval_runs']} evaluations, findings {[f['code'] for f in report['findings']] or 'none'}")
    print(f"  plan: {plan}")
    ok = not report["findings"] and caught is None and plan
    _, _, caught, seconds = run([TrainDuringEval()])
    print(f"planted run: {seconds:.1f} s, caught: {caught}")
    ok = ok and caught is not None and "(Dropout, p=0.1)" in caught
    print("verdicts right" if ok else "VERDICTS WRONG")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
