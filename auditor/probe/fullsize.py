"""Whether a scaled model's failure is the default config's own, so that the refusal says so.

A module that rejects its config while the scaled model is built reports the scaled numbers:
aya_vision's vision tower said "embed_dim 72 is not divisible by 7 heads", which reads as the
scaler's fault, while the default itself (width 1152, 14 heads) cannot build its own tower. So
the failing module is built once more, alone, on the meta device, from the full-size sub-config
of the same class; if it fails the same way, the refusal quotes the full-size failure.

Imports inside functions (`probe.complete`, `torch`) are deferred for start-up time: a run that
never takes that path never pays for them.
"""

from __future__ import annotations

import os


def same_failure(exc: BaseException, full_config) -> str | None:
    """The full-size failure, in one line, when the module that raised `exc` while being
    constructed raises the same kind of error from the full-size config; else None."""
    import torch
    from torch import nn

    from auditor.probe.complete import config_tree

    frame = _failing_constructor(exc)
    if frame is None:
        return None
    this, local = frame.f_locals.get("self"), frame.f_locals
    if not isinstance(this, nn.Module):
        return None
    code = frame.f_code
    names = code.co_varnames[1: code.co_argcount + code.co_kwonlyargcount]
    args = {n: local[n] for n in names if n in local}
    scaled = [n for n, v in args.items() if type(v).__name__.endswith("Config")]
    if len(scaled) != 1:
        return None
    wanted = type(args[scaled[0]])
    for _, full in config_tree(full_config):
        if type(full) is not wanted:
            continue
        try:
            with torch.device("meta"):
                type(this)(**{**args, scaled[0]: full})
        except type(exc) as again:
            return f"{type(again).__name__}: {' '.join(str(again).split())}"
        except Exception:  # noqa: BLE001  a different failure says nothing about this one
            return None
        return None
    return None


def _failing_constructor(exc: BaseException):
    """The innermost `__init__` frame of Transformers' modeling code in the traceback."""
    tb, found = exc.__traceback__, None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == "__init__" and f"{os.sep}transformers{os.sep}models{os.sep}" in code.co_filename:
            found = tb.tb_frame
        tb = tb.tb_next
    return found
