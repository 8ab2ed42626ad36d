"""The guard as a `transformers.TrainerCallback`: `Trainer(..., callbacks=[DropoutGuard()])`.

TRL's trainers are Trainers, so this covers SFT, DPO, KTO, GRPO and the rest.

A callback hears no event when evaluation *starts* (only `on_evaluate`, after it) and is not
handed the Trainer, so the guard finds the Trainer that calls it (the `self` of the frame that
raised the event, checked with isinstance) and wraps two of that instance's methods:
`training_step`, so sampled steps are watched from their first forward, and `evaluation_loop`
(which `evaluate()` and `predict()` run), so every forward of an evaluation is. The wrappers are
instance attributes that call the class's methods; `detach()` removes them. The plan and the
measured rates go through `trainer.log`, i.e. to every `report_to` integration (TensorBoard,
W&B) next to the loss. `DropoutGuard.attach(trainer)` binds explicitly instead.
"""

from __future__ import annotations

import functools
import sys

from transformers import Trainer, TrainerCallback

from auditor.runtime.guard import Guard

_WRAPPED = ("training_step", "evaluation_loop", "prediction_loop")


def calling_trainer(depth: int = 2, limit: int = 12):
    """The Trainer whose callback handler is calling us, from the call stack (None if none)."""
    frame = sys._getframe(depth)
    for _ in range(limit):
        if frame is None:
            return None
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, Trainer):
            return candidate
        frame = frame.f_back
    return None


class DropoutGuard(TrainerCallback):
    """Options as `auditor.runtime.guard.Guard`: on_eval_dropout ("raise" | "warn"),
    sample_every, warmup, check_ranks, json_path. `guard.report()` has the findings and counts."""

    def __init__(self, **options):
        self.guard = Guard(**options)
        self.trainer = None

    @classmethod
    def attach(cls, trainer, **options) -> DropoutGuard:
        callback = cls(**options)
        trainer.add_callback(callback)
        callback.bind(trainer)
        return callback

    # -- binding ------------------------------------------------------------------------
    def bind(self, trainer) -> None:
        if trainer is None or trainer is self.trainer:
            return
        self.detach()
        self.trainer = trainer
        for name in _WRAPPED:
            method = getattr(trainer, name, None)
            if method is not None:
                setattr(trainer, name, self._wrap(name, method))
        self.guard.emit = lambda metrics: trainer.log(dict(metrics))
        if trainer.model is not None:
            self.guard.bind(trainer.model)

    def detach(self) -> None:
        trainer, self.trainer = self.trainer, None
        if trainer is None:
            return
        for name in _WRAPPED:
            if getattr(trainer.__dict__.get(name), "__dropout_guard__", None) is self:
                del trainer.__dict__[name]

    def _wrap(self, name: str, method):
        guard = self.guard
        watch = guard.train_step if name == "training_step" else guard.evaluation

        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            with watch():
                return method(*args, **kwargs)

        wrapper.__dropout_guard__ = self
        return wrapper

    # -- events -------------------------------------------------------------------------
    def on_init_end(self, args, state, control, **kwargs):
        self.bind(calling_trainer())

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.trainer is None:
            self.bind(calling_trainer())
        if self.trainer is None:
            raise RuntimeError("DropoutGuard could not find its Trainer on the call stack; "
                               "bind it with DropoutGuard.attach(trainer)")
        self.guard.bind(model if model is not None else self.trainer.model)
        self.guard.start(disable_dropout=getattr(args, "disable_dropout", None),
                         trainer_name=type(self.trainer).__name__)

    def on_step_end(self, args, state, control, **kwargs):
        self.guard.flush()

    def on_train_end(self, args, state, control, **kwargs):
        self.guard.finish()
