"""The short fine-tune and the step-time overhead measurement.

The fine-tune is the probe's train-mode workload: a few AdamW steps on one fixed synthetic
batch, so a healthy model memorises it and the loss falls; dropout sites are measured on these
real training forwards. The overhead run times the same step with the configured dropout and
with every site forced to p=0, interleaved in blocks so drift (thermal, other load) hits both.
"""

from __future__ import annotations

import math
import time

import torch

from auditor.probe.build import Subject
from auditor.probe.instrument import ZeroDropout


def trainable(model) -> list:
    return [p for p in model.parameters() if p.requires_grad]


def finetune(subject: Subject, steps: int, lr: float) -> list:
    model = subject.model
    model.train()
    params = trainable(model)
    if not params:
        # nothing to train (a frozen model): still run the train-mode forwards the checks measure
        with torch.no_grad():
            for _ in range(steps):
                subject.forward()
        return []
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = subject.loss_fn(subject.forward())
        value = float(loss.detach().float())
        losses.append(value)
        if not math.isfinite(value):
            break
        loss.backward()
        opt.step()
    return losses


class _Timer:
    """Wall-clock on CPU; CUDA events on a GPU (host timing would measure launch, not work)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def time(self, fn, n: int) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            for _ in range(n):
                fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1000.0 / n
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n


def step_overhead(subject: Subject, lr: float, rounds: int = 6, block: int = 3, warmup: int = 2) -> dict:
    """Per-step seconds with the configured dropout and with dropout forced to 0.

    Returns both samples (one value per block) so the caller can state a ratio with an interval.
    Weights change during the timing; the probe runs this last.
    """
    model = subject.model
    model.train()
    params = trainable(model)
    if not params:
        return {}
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)

    def step():
        opt.zero_grad(set_to_none=True)
        subject.loss_fn(subject.forward()).backward()
        opt.step()

    timer = _Timer(subject.device)
    configured, zero = [], []
    timer.time(step, warmup)
    with ZeroDropout(model):
        timer.time(step, warmup)
    for _ in range(rounds):
        configured.append(timer.time(step, block))
        with ZeroDropout(model):
            zero.append(timer.time(step, block))
    return {"configured_s": configured, "zero_s": zero, "block": block, "rounds": rounds,
            "timer": "cuda-events" if timer.cuda else "perf_counter"}
