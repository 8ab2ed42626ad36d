"""The guard as a Lightning `Callback`: `pl.Trainer(callbacks=[DropoutGuardCallback()])`.

Lightning marks every phase with callback hooks, so nothing is wrapped: a training batch is a
step (watched when sampled), and validation, test and prediction (the sanity check included) are
evaluation. `on_exception` closes whatever was open. The plan and the measured rates go to every
logger of the Trainer (`logger.log_metrics`), next to the loss.

`DropoutGuardCallback` subclasses `pytorch_lightning.Callback`; for the unified `lightning`
package, `callback_class(lightning.pytorch.Callback)` builds the same class on that base (each
Trainer accepts only its own package's callbacks).
"""

from __future__ import annotations

import pytorch_lightning as pl

from auditor.runtime.guard import Guard

_EVAL_STARTS = ("on_validation_start", "on_test_start", "on_predict_start")
_EVAL_ENDS = ("on_validation_end", "on_test_end", "on_predict_end")


def callback_class(base):
    """The guard callback on a given Lightning `Callback` base class."""

    class DropoutGuardCallback(base):
        """Options as `auditor.runtime.guard.Guard`: on_eval_dropout ("raise" | "warn"),
        sample_every, warmup, check_ranks, json_path. `guard.report()` has the findings."""

        def __init__(self, **options):
            super().__init__()
            self.guard = Guard(**options)
            self._open: dict = {}

        def _enter(self, phase: str, ctx) -> None:
            self._exit(phase)
            ctx.__enter__()
            self._open[phase] = ctx

        def _exit(self, phase: str, exc=None) -> None:
            ctx = self._open.pop(phase, None)
            if ctx is not None:
                if exc is None:
                    ctx.__exit__(None, None, None)
                else:
                    ctx.__exit__(type(exc), exc, exc.__traceback__)

        def setup(self, trainer, pl_module, stage):
            self.guard.bind(pl_module)

            def emit(metrics, trainer=trainer):
                for logger in trainer.loggers:
                    logger.log_metrics(dict(metrics), step=trainer.global_step)
            self.guard.emit = emit

        def on_train_start(self, trainer, pl_module):
            self.guard.bind(pl_module)
            self.guard.start(trainer_name=type(pl_module).__name__)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self._enter("train", self.guard.train_step())

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self._exit("train")
            self.guard.flush()

        def on_exception(self, trainer, pl_module, exception):
            for phase in list(self._open):
                try:
                    self._exit(phase, exception)
                except BaseException:  # noqa: BLE001  the run's own exception is the one to see
                    pass

        def on_train_end(self, trainer, pl_module):
            self.guard.finish()

    def _start(self, trainer, pl_module):
        self._enter("eval", self.guard.evaluation())

    def _end(self, trainer, pl_module):
        self._exit("eval")

    for name in _EVAL_STARTS:
        setattr(DropoutGuardCallback, name, _start)
    for name in _EVAL_ENDS:
        setattr(DropoutGuardCallback, name, _end)
    return DropoutGuardCallback


DropoutGuardCallback = callback_class(pl.Callback)
