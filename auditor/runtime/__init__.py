"""Dropout checked inside the user's real training run (the `[probe]` extra; never imported by
`check` or `plan`).

    from auditor.runtime import DropoutGuard            # transformers / TRL: Trainer(callbacks=[DropoutGuard()])
    from auditor.runtime import DropoutGuardCallback    # pytorch_lightning: Trainer(callbacks=[DropoutGuardCallback()])
    from auditor.runtime import dropout_guard           # plain PyTorch / accelerate: with dropout_guard(model, mode="eval"):

The names are resolved on first use, so importing this package imports neither Transformers nor
Lightning: each adapter imports its own framework.

Imports inside functions (`runtime.guard`, `runtime.hf`, `runtime.lightning`) are deferred for
start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

_WHERE = {
    "DropoutGuard": "auditor.runtime.hf",
    "DropoutGuardCallback": "auditor.runtime.lightning",
    "dropout_guard": "auditor.runtime.guard",
    "Guard": "auditor.runtime.guard",
    "DropoutActiveInEval": "auditor.runtime.guard",
    "DropoutGuardWarning": "auditor.runtime.guard",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'auditor.runtime' has no attribute {name!r}")
    if module == "auditor.runtime.hf":
        from auditor.runtime import hf as found
    elif module == "auditor.runtime.lightning":
        from auditor.runtime import lightning as found
    else:
        from auditor.runtime import guard as found
    return getattr(found, name)
