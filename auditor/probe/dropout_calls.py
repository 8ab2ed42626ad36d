"""Every way a model applies functional dropout, seen in one place: a torch function mode.

The probe and the run-time guard (auditor/runtime) both need to see `F.dropout` and its 1d/2d/3d
and alpha variants, `torch.dropout` and its siblings, and `scaled_dot_product_attention`'s
`dropout_p`. Patching `torch.nn.functional` attributes misses code that bound the function
before the patch (`from torch.nn.functional import dropout`), and the builtins behind them; a
`TorchFunctionMode` receives every call of a torch function however it was reached, and is
disabled inside its own handler, so the handler may call the function (or its SDPA twin) freely.
nn.Dropout modules reach F.dropout too, so a consumer that hooks the modules themselves skips the
calls made from inside one.

Everything else (recording, attribution, verdicts) belongs to the consumers; this module only
recognises a call and normalises its arguments.
"""

from __future__ import annotations

import inspect
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

# functional name -> unit family ("element", "feature", "alpha", "feature-alpha")
FUNCTIONAL = {
    "dropout": "element",
    "dropout1d": "feature",
    "dropout2d": "feature",
    "dropout3d": "feature",
    "alpha_dropout": "alpha",
    "feature_alpha_dropout": "feature-alpha",
}
# the builtins (torch.dropout, ...): name, family; the trailing-underscore ones work in place
TORCH_OPS = {
    "dropout": "element",
    "alpha_dropout": "alpha",
    "feature_dropout": "feature",
    "feature_alpha_dropout": "feature-alpha",
}
SDPA_SIGNATURE = inspect.signature(
    lambda query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False: None)
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_RUNTIME = os.path.join(os.path.dirname(_HERE.rstrip(os.sep)), "runtime") + os.sep


def call_sdpa(orig, arguments: dict, dropout_p: float):
    """Call the builtin with q, k, v positional (it takes only the first six positionally)."""
    rest = {k: v for k, v in arguments.items() if k not in ("query", "key", "value")}
    rest["dropout_p"] = dropout_p
    return orig(arguments["query"], arguments["key"], arguments["value"], **rest)


def spatial(name: str, ndim: int) -> int:
    """How many trailing dimensions one dropped unit spans (0: single elements)."""
    if name == "dropout1d":
        return 1
    if name == "dropout2d":
        return 2 if ndim == 4 else 1
    if name == "dropout3d":
        return 3
    if name in ("feature_alpha_dropout", "feature_dropout"):
        return max(ndim - 2, 1)
    return 0


def module_family(m: nn.Module) -> tuple:
    """(unit family, functional name) of an nn.Dropout-family module."""
    if isinstance(m, (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)):
        return "feature", {nn.Dropout1d: "dropout1d", nn.Dropout2d: "dropout2d", nn.Dropout3d: "dropout3d"}.get(type(m), "dropout2d")
    if isinstance(m, nn.FeatureAlphaDropout):
        return "feature-alpha", "feature_alpha_dropout"
    if isinstance(m, nn.AlphaDropout):
        return "alpha", "alpha_dropout"
    return "element", "dropout"


def outside_torch(depth: int = 1):
    """The innermost frame that is neither torch nor this tool: the code that asked for dropout."""
    frame = sys._getframe(depth + 1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not (name.startswith(_TORCH_DIR) or name.startswith(_HERE) or name.startswith(_RUNTIME)
                or name.startswith("<")):
            return frame
        frame = frame.f_back
    return None


def call_location(frame) -> str:
    """`@file.py:line` of the code that called the functional dropout: one module may call it
    several times for different keys (BART's dropout and activation_dropout), and the line tells
    them apart where the module path cannot."""
    if frame is None:
        return ""
    return f"@{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


class DropoutCall:
    """One functional dropout call, its arguments read the same way for every entry point.

    `label` is the site kind the reports use ("F.dropout", "torch.dropout", "sdpa"); `training`
    is the flag the call passed (SDPA has none: True); `run()` performs the call as made,
    `run_with(p)` with another rate (0 for a reference output).
    """

    __slots__ = ("func", "args", "kwargs", "name", "label", "family", "x", "p", "training", "inplace",
                 "arguments")

    def __init__(self, func, args, kwargs, name, label, family, x, p, training, inplace, arguments):
        self.func, self.args, self.kwargs = func, args, kwargs
        self.name, self.label, self.family = name, label, family
        self.x, self.p, self.training, self.inplace = x, p, training, inplace
        self.arguments = arguments

    @property
    def spatial(self) -> int:
        return spatial(self.name, self.x.dim()) if torch.is_tensor(self.x) else 0

    @property
    def is_sdpa(self) -> bool:
        return self.label == "sdpa"

    @property
    def active(self) -> bool:
        """Whether the call drops anything: a rate above 0 with the training flag on."""
        return self.p > 0 and self.training

    def run(self):
        return self.func(*self.args, **self.kwargs)

    def run_with(self, p: float):
        if self.is_sdpa:
            return call_sdpa(self.func, self.arguments, p)
        a = dict(self.arguments)
        a["p"] = p
        if self.label.startswith("torch."):
            return self.func(a["input"], a["p"], a["train"])
        return self.func(**a)


def _bind_functional(name: str, family: str, func):
    sig = inspect.signature(func)

    def read(args, kwargs) -> DropoutCall:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        return DropoutCall(func, args, kwargs, name, "F." + name, family, a["input"], float(a["p"]),
                           bool(a["training"]), bool(a.get("inplace")), a)
    return read


def _bind_torch_op(name: str, family: str, func, inplace: bool):
    def read(args, kwargs) -> DropoutCall:
        a = dict(zip(("input", "p", "train"), args))
        a.update(kwargs)
        return DropoutCall(func, args, kwargs, name, "torch." + name + ("_" if inplace else ""), family, a["input"],
                           float(a["p"]), bool(a["train"]), inplace, a)
    return read


def _read_sdpa(func):
    def read(args, kwargs) -> DropoutCall:
        a = SDPA_SIGNATURE.bind(*args, **kwargs).arguments
        p = float(a.get("dropout_p", 0.0) or 0.0)
        return DropoutCall(func, args, kwargs, "sdpa", "sdpa", "element", a["query"], p, True, False, a)
    return read


def readers() -> dict:
    """torch function -> reader of its arguments, for every dropout entry point torch has now."""
    out = {}
    for name, family in FUNCTIONAL.items():
        func = getattr(F, name)
        out[func] = _bind_functional(name, family, func)
    for name, family in TORCH_OPS.items():
        for inplace in (False, True):
            func = getattr(torch, name + ("_" if inplace else ""), None)
            if func is not None:
                out[func] = _bind_torch_op(name, family, func, inplace)
    out[F.scaled_dot_product_attention] = _read_sdpa(F.scaled_dot_product_attention)
    return out


class DropoutMode(TorchFunctionMode):
    """Hands every dropout call to `handler(call)`, whose return value is the call's result;
    every other torch function runs untouched. Torch disables the mode inside the handler."""

    def __init__(self, handler):
        super().__init__()
        self.handler = handler
        self.readers = readers()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        read = self.readers.get(func)
        if read is None:
            return func(*args, **kwargs)
        return self.handler(read(args, kwargs))
