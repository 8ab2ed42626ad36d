"""Every random stream a model may draw from, seeded and saved together.

Seeding torch alone left SpeechT5's SpecAugment free: it draws its time masks from numpy
(`_compute_mask_indices`), so two builds of one seed differed in train mode with or without a
key, and the key map judged every key "live", decoder keys the class does not have included.
Python's `random` is seeded too (layer drop in some research code). The experiments that
compare two runs seed all three, and a run's RNG use is judged on all three.

Imports inside functions (`numpy`) are deferred for start-up time, and numpy is optional: a run
without it has one stream fewer to seed.
"""

from __future__ import annotations

import random

import torch


def _numpy():
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def seed_all(seed: int) -> None:
    """torch (CPU and every CUDA device), numpy's global stream and Python's `random`."""
    torch.manual_seed(seed)
    random.seed(seed)
    np = _numpy()
    if np is not None:
        np.random.seed(seed % 2**32)


def state(device=None) -> list:
    """Every stream's state, to restore after a measurement that must not move them, or to compare
    before and after (did the run draw any random number?)."""
    out = [("torch", torch.get_rng_state()), ("random", random.getstate())]
    if device is not None and getattr(device, "type", device) == "cuda" and torch.cuda.is_available():
        out.append(("cuda", torch.cuda.get_rng_state(device)))
    np = _numpy()
    if np is not None:
        out.append(("numpy", np.random.get_state()))
    return out


def restore(saved: list, device=None) -> None:
    np = _numpy()
    for name, value in saved:
        if name == "torch":
            torch.set_rng_state(value)
        elif name == "random":
            random.setstate(value)
        elif name == "cuda":
            torch.cuda.set_rng_state(value, device)
        elif name == "numpy" and np is not None:
            np.random.set_state(value)


def drawn(before: list, after: list) -> list:
    """The names of the streams that moved between two states."""
    moved = []
    for (name, a), (_, b) in zip(before, after):
        if name == "numpy":
            same = a[0] == b[0] and (a[1] == b[1]).all() and a[2:] == b[2:]
        elif torch.is_tensor(a):
            same = torch.equal(a, b)
        else:
            same = a == b
        if not same:
            moved.append(name)
    return moved
