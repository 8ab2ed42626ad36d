"""Which module a model-level difference comes from.

DRP803 (train mode with every dropout site at identity differs from eval), DRP808 (two eval
forwards differ) and DRP809 (eval differs from every site at identity) compare whole outputs, so
they named no module and pointed at line 1. Here the same comparison is made module by module
on one forward: each module's call is preceded by a re-run of that module on a copy of the same
inputs in the other setting, and the module whose own output differs while none below it did is
the one that fired; its class and the line of its `class` statement are what findings name.
Run only after a model-level check has failed (it costs a forward per level of nesting).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from auditor.probe import rng
from auditor.probe.instrument import class_source
from auditor.probe.survey import clone_tree, first_float


@dataclass
class Culprit:
    path: str
    cls: str
    source: tuple
    max_diff: float

    def describe(self) -> str:
        file, line = self.source
        at = f", {file.rsplit('/', 1)[-1]}:{line}" if file else ""
        return f"{self.path} ({self.cls}{at})"


@dataclass
class Setting:
    """What a forward runs in: the model's mode (train with running-stat norms frozen, or eval)
    and the instrument's mode ("off": dropout as written, "identity": every site a no-op)."""

    training: bool
    dropout: str


def _apply(module: nn.Module, setting: Setting) -> list:
    flags = [(m, m.training) for m in module.modules()]
    for m, _ in flags:
        m.training = setting.training and not (
            isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats)
    return flags


def divergent(model: nn.Module, forward, instrument, main: Setting, other: Setting, *, device=None,
              fresh_draws: bool = False, limit: int = 3) -> list:
    """The innermost modules whose output under `main` differs from a re-run under `other` on the
    same inputs. `fresh_draws`: the re-run draws new random numbers (two eval forwards that must
    agree); otherwise every stream is restored around it, so only the setting differs."""
    paths = {id(m): (name or "<root>") for name, m in model.named_modules()}
    stack: list = []   # [module, reference output, a module below differed]
    found: list = []
    state = {"rerun": False}

    def pre(module, args, kwargs):
        if state["rerun"]:
            return None
        entry = [module, None, False]
        stack.append(entry)
        saved = rng.state(device)
        flags = _apply(module, other)
        mode, instrument.mode = instrument.mode, other.dropout
        state["rerun"] = True
        try:
            with torch.no_grad():
                entry[1] = first_float(module(*clone_tree(args), **clone_tree(kwargs)))
        except Exception:  # noqa: BLE001  a module that cannot run twice is not located
            entry[1] = None
        finally:
            state["rerun"] = False
            instrument.mode = mode
            for m, training in flags:
                m.training = training
            if not fresh_draws:
                rng.restore(saved, device)
        return None

    def post(module, args, kwargs, output):
        if state["rerun"]:
            return None
        while stack and stack[-1][0] is not module:
            stack.pop()
        if not stack:
            return None
        _, ref, below = stack.pop()
        out = first_float(output) if output is not None else None
        differs = False
        if ref is not None and out is not None:
            differs = out.shape != ref.shape or not _close(out, ref, device)
        if differs and not below:
            diff = float((out.float() - ref.float()).abs().max()) if out.shape == ref.shape else float("inf")
            found.append(Culprit(paths.get(id(module), "?"), type(module).__name__, class_source(module), diff))
        if stack and (differs or below):
            stack[-1][2] = True
        return None

    handles = []
    flags = _apply(model, main)
    mode, instrument.mode = instrument.mode, main.dropout
    try:
        for m in model.modules():
            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(m.register_forward_hook(post, with_kwargs=True, always_call=True))
        with torch.no_grad():
            forward()
    except Exception:  # noqa: BLE001  locating is a courtesy: the model-level finding stands without it
        pass
    finally:
        for h in handles:
            h.remove()
        instrument.mode = mode
        for m, training in flags:
            m.training = training
    return found[:limit]


def _close(a: torch.Tensor, b: torch.Tensor, device) -> bool:
    if device is None or getattr(device, "type", "cpu") == "cpu":
        return torch.equal(a, b)
    scale = float(b.abs().max()) if b.numel() else 0.0
    return float((a.float() - b.float()).abs().max()) <= 4 * torch.finfo(b.dtype).eps * max(scale, 1e-6)
