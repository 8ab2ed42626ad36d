"""Watching every dropout site of a model while it runs.

Hooks on nn.Dropout modules alone miss most of modern dropout: Llama-family and BART attention
call `F.dropout` or pass `dropout_p` to `scaled_dot_product_attention`, and BERT/GPT-2 only
read their attention Dropout module's `.p` (facts.md "Where dropout runs"). So, for the probe's
duration only, this module also watches the functional entry points through the torch function
mode of `dropout_calls` (shared with the run-time guard), and keeps a stack of the modules being run (forward pre/post
hooks on every module) so a functional call is attributed to the module that made it. Everything
is removed in `close()`, which the context manager runs also on error.

A site is (module path, kind, p). Per site and phase (train/eval) the recorder counts units that
could be dropped (non-zero input), units dropped (became exactly zero), and how kept units were
scaled, which is what the statistical checks need.

SDPA keeps its attention weights internal, so its dropout is measured on a twin call: the same
query, key and dropout_p with an identity matrix as `value`, whose output *is* the dropped
attention matrix, compared against the same twin call with dropout_p=0.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from auditor.probe.dropout_calls import (
    FUNCTIONAL,
    SDPA_SIGNATURE,
    DropoutCall,
    DropoutMode,
    call_location,
    call_sdpa,
    module_family,
    outside_torch,
    spatial,
)

_SELU_ALPHA_PRIME = -1.7580993408473766
ELEMENT_CAP = 2_000_000   # units per site and phase after which only calls are counted
_SAMPLE = 65536           # elements used for the median of the kept-unit scale


@dataclass(slots=True)
class Tally:
    calls: int = 0
    n: int = 0             # units that could be dropped (non-zero input)
    k: int = 0             # units dropped
    changed: int = 0       # elements whose value changed at all
    elements: int = 0
    kept: int = 0
    bad_scale: int = 0     # kept elements whose out/in ratio is off 1/(1-p) beyond tolerance
    scale_devs: list = field(default_factory=list)   # per call: median of out*(1-p)/in - 1
    flag_mismatch: int = 0  # calls whose training flag disagreed with the caller's mode
    flag_examples: list = field(default_factory=list)
    active: int = 0         # calls that dropped: p > 0 with the training flag (or the module) on
    ps: set = field(default_factory=set)   # the rates the site was called with

    @property
    def p(self) -> float:
        """The largest rate the site was called with in this phase (0 when never called)."""
        return max(self.ps) if self.ps else 0.0


@dataclass(slots=True)
class Site:
    path: str
    kind: str            # nn.Dropout class name, "F.dropout", "sdpa", ...
    family: str
    caller_class: str = ""
    source: tuple = ("", 0)   # (file, line): the functional call, else the calling module's forward
    owner: int = 0            # id() of the module that made the call (which part of the model ran it)
    class_source: tuple = ("", 0)  # (file, line) of that module's class statement (where findings point)
    train: Tally = field(default_factory=Tally)
    eval: Tally = field(default_factory=Tally)

    @property
    def ident(self) -> tuple:
        return (self.path, self.kind)

    @property
    def p(self) -> float:
        """The configured rate: what the site asked for in train mode (else in eval)."""
        return self.train.p if self.train.ps else self.eval.p

    def tally(self, phase: str) -> Tally:
        return self.train if phase == "train" else self.eval


def source_of(module) -> tuple:
    """(file, line) of the module class's `forward` (a model-level probe finding points there)."""
    cls = type(module)
    try:
        fn = getattr(cls, "forward", None)
        file = inspect.getsourcefile(fn) or ""
        line = inspect.getsourcelines(fn)[1]
        return (file, line)
    except (TypeError, OSError):
        return ("", 0)


def class_source(module) -> tuple:
    """(file, line) of the `class` statement of the module's class: where a finding about what
    the module does as a whole (hand-written dropout, a rescaled eval path) points."""
    cls = type(module)
    try:
        return (inspect.getsourcefile(cls) or "", inspect.getsourcelines(cls)[1])
    except (TypeError, OSError):
        return ("", 0)


def scale_tolerance(dtype) -> float:
    """How far out/in may stray from 1/(1-p) from rounding alone (a few ulps of the dtype)."""
    eps = torch.finfo(dtype).eps if dtype.is_floating_point else 1e-6
    return max(8 * eps, 1e-6)


@torch.no_grad()
def measure(x: torch.Tensor, y: torch.Tensor, p: float, family: str, spatial: int = 0) -> dict:
    """Counts for one call: x the input, y the output of a dropout with rate p."""
    tol = scale_tolerance(x.dtype)
    x = x.detach().float()
    y = y.detach().float()
    out = {"elements": x.numel(), "changed": int((x != y).sum())}
    if family == "alpha" or family == "feature-alpha":
        a = ((1 - p) * (1 + p * _SELU_ALPHA_PRIME ** 2)) ** -0.5 if p < 1 else 0.0
        b = -a * _SELU_ALPHA_PRIME * p
        dropped_value = a * _SELU_ALPHA_PRIME + b
        dropped = torch.isclose(y, torch.full_like(y, dropped_value), rtol=1e-5, atol=1e-6)
        nz = torch.ones_like(x, dtype=torch.bool)
        kept = ~dropped & (x != 0)
        rel = (y[kept] - b) / (a * x[kept]) - 1 if kept.any() else torch.zeros(0)
        if family == "feature-alpha" and spatial:
            units = dropped.reshape(-1, math.prod(x.shape[-spatial:]))
            out.update(n=units.shape[0], k=int(units.all(1).sum()))
        else:
            out.update(n=int(nz.sum()), k=int(dropped.sum()))
    else:
        nz = x != 0
        zero = y == 0
        kept = nz & ~zero
        if family == "feature" and spatial:
            width = math.prod(x.shape[-spatial:])
            unz = nz.reshape(-1, width).any(1)
            udrop = unz & zero.reshape(-1, width).all(1)
            out.update(n=int(unz.sum()), k=int(udrop.sum()))
        else:
            out.update(n=int(nz.sum()), k=int((nz & zero).sum()))
        scale = 1.0 / (1.0 - p) if p < 1 else 0.0
        rel = y[kept] / (x[kept] * scale) - 1 if kept.any() else torch.zeros(0)
    out["kept"] = int(rel.numel())
    out["bad_scale"] = int((rel.abs() > tol).sum())
    if rel.numel():
        sample = rel if rel.numel() <= _SAMPLE else rel[:: rel.numel() // _SAMPLE + 1]
        out["scale_dev"] = float(sample.median())
    return out


class Instrument:
    """Installs the hooks and the function mode; `mode` decides what a dropout call does:

    - "record": run normally and record statistics (phase "train" or "eval");
    - "light": run normally and record only which sites ran at which p (cheap);
    - "identity": every dropout site returns its input unchanged (reference output);
    - "off": run normally, record nothing;
    - "watch": run normally, record nothing, and tell `watcher(module, p)` about every dropout
      call and the module that made it (the module survey needs to know which modules' outputs
      a known dropout kernel explains: `probe/survey.py`).

    `listener(site, phase, caller, why)`, when given, hears of every *active* application (a
    rate above 0 that drops: a module in train mode, a call with training=True, SDPA with
    dropout_p > 0) while recording; the run-time guard raises or warns from it. One Instrument
    may be entered and closed many times; its sites accumulate.
    """

    def __init__(self, model: nn.Module, mode: str = "record", phase: str = "train", sdpa_twin: bool = True,
                 listener=None):
        self.model = model
        self.mode = mode
        self.phase = phase
        self.sdpa_twin = sdpa_twin
        self.listener = listener
        self.sites: dict = {}
        self.unattributed_calls = 0
        self._paths: dict = {}
        self._stack: list = []
        self._handles: list = []
        self._dropout_mode = None
        self._identity_inputs: dict = {}
        self.watcher = None     # the survey's watch mode: watcher(module, p) for every dropout call
        self.calls: dict = {}   # id(module) -> forward calls in the train phase (coverage)

    # -- install / remove -------------------------------------------------------------
    def __enter__(self) -> Instrument:  # noqa: PYI034
        try:
            self._install()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def installed(self) -> bool:
        return self._dropout_mode is not None

    def _install(self) -> None:
        self._paths = {id(m): (name or "<root>") for name, m in self.model.named_modules()}
        for m in self.model.modules():
            self._handles.append(m.register_forward_pre_hook(self._push))
            self._handles.append(m.register_forward_hook(self._pop, always_call=True))
            if isinstance(m, _DropoutNd):
                self._handles.append(m.register_forward_pre_hook(self._dropout_pre))
                self._handles.append(m.register_forward_hook(self._dropout_post))
        self._dropout_mode = DropoutMode(self._on_call)
        self._dropout_mode.__enter__()

    def close(self) -> None:
        if self._dropout_mode is not None:
            mode, self._dropout_mode = self._dropout_mode, None
            mode.__exit__(None, None, None)
        while self._handles:
            self._handles.pop().remove()
        self._stack.clear()
        self._identity_inputs.clear()

    # -- module stack -----------------------------------------------------------------
    def running(self, module) -> None:
        """Put on the stack a module whose forward had started before the instrument was installed
        (its pre-hooks had already run): calls it makes are then attributed to it."""
        if module not in self._stack:
            self._stack.append(module)

    def _push(self, module, args):
        self._stack.append(module)
        if self.phase == "train" and self.mode == "record":
            self.calls[id(module)] = self.calls.get(id(module), 0) + 1

    def _notify(self, module, p: float) -> None:
        if self.watcher is not None:
            self.watcher(module, float(p))

    def _pop(self, module, args, output):
        if self._stack and self._stack[-1] is module:
            self._stack.pop()
        elif module in self._stack:  # an exception unwound several frames
            while self._stack and self._stack.pop() is not module:
                pass

    def _caller(self, skip_dropout: bool = False):
        for m in reversed(self._stack):
            if skip_dropout and isinstance(m, _DropoutNd):
                continue
            return m
        return None

    def _site(self, module, kind: str, p: float, family: str, call: tuple | None = None) -> Site:
        """call: (file, line) of a functional call, which findings on the site point at."""
        path = self._paths.get(id(module), "<outside the model>") if module is not None else "<outside the model>"
        ident = (path, kind)
        site = self.sites.get(ident)
        if site is None:
            source = call if call is not None and call[1] else (source_of(module) if module is not None else ("", 0))
            site = Site(path, kind, family,
                        caller_class=type(module).__name__ if module is not None else "",
                        source=source, owner=id(module),
                        class_source=class_source(module) if module is not None else ("", 0))
            self.sites[ident] = site
        return site

    def _record(self, site: Site, p: float, x, y, spatial: int = 0) -> None:
        t = site.tally(self.phase)
        t.calls += 1
        t.ps.add(float(p))
        if self.mode != "record" or t.n >= ELEMENT_CAP or p <= 0:
            return
        r = measure(x, y, p, site.family, spatial)
        t.n += r["n"]
        t.k += r["k"]
        t.changed += r["changed"]
        t.elements += r["elements"]
        t.kept += r["kept"]
        t.bad_scale += r["bad_scale"]
        if "scale_dev" in r:
            t.scale_devs.append(r["scale_dev"])

    def _flag(self, site: Site, p: float, passed: bool, caller) -> None:
        if caller is None or self.mode not in ("record", "light"):
            return
        if bool(passed) != bool(caller.training) and p > 0:
            t = site.tally(self.phase)
            t.flag_mismatch += 1
            if len(t.flag_examples) < 1:
                t.flag_examples.append((bool(passed), bool(caller.training)))

    def _applied(self, site: Site, active: bool, caller, why: str) -> None:
        """Count an active application and tell the listener (which may raise)."""
        if not active or self.mode not in ("record", "light"):
            return
        site.tally(self.phase).active += 1
        if self.listener is not None:
            self.listener(site, self.phase, caller, why)

    # -- nn.Dropout modules -------------------------------------------------------------
    def _dropout_pre(self, module, args):
        if self.mode in ("record", "identity") and args and torch.is_tensor(args[0]):
            x = args[0]
            self._identity_inputs[id(module)] = x.detach().clone() if getattr(module, "inplace", False) else x

    def _dropout_post(self, module, args, output):
        x = self._identity_inputs.pop(id(module), None)
        if self.mode == "identity":
            return x if x is not None else output
        if self.mode == "watch":
            self._notify(module, module.p)
        if self.mode in ("record", "light") and torch.is_tensor(output):
            family, fname = module_family(module)
            site = self._site(module, type(module).__name__, module.p, family)
            self._record(site, module.p, x if x is not None else args[0], output,
                         spatial(fname, output.dim()))
            self._applied(site, module.training and module.p > 0, module, "module-train")
        return None

    # -- functional entry points (through the function mode) ----------------------------
    def _on_call(self, call: DropoutCall):
        if self.mode == "off":
            return call.run()
        if call.is_sdpa:
            return self._sdpa(call)
        if self.mode == "identity":
            return call.x
        inside_dropout_module = bool(self._stack) and isinstance(self._stack[-1], _DropoutNd)
        if inside_dropout_module:
            # the module's own hooks measure it; keep only the flag for the module's site
            module = self._stack[-1]
            fam = module_family(module)[0]
            self._flag(self._site(module, type(module).__name__, module.p, fam), call.p, call.training, module)
            return call.run()
        caller = self._caller()
        if self.mode == "watch":
            self._notify(caller, call.p)
            return call.run()
        frame = outside_torch()
        where = (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None
        site = self._site(caller, call.label + call_location(frame), call.p, call.family, where)
        self._flag(site, call.p, call.training, caller)
        keep = call.x.detach().clone() if (call.inplace and self.mode == "record") else call.x
        y = call.run()
        self._record(site, call.p, keep, y, call.spatial)
        self._applied(site, call.active, caller, "flag" if caller is not None and not caller.training else "caller-train")
        return y

    def _sdpa(self, call: DropoutCall):
        p = call.p
        if self.mode == "identity":
            return call.run_with(0.0)
        caller = self._caller()
        if self.mode == "watch":
            self._notify(caller, p)
            return call.run()
        frame = outside_torch()
        site = self._site(caller, "sdpa", p, "element",
                          (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None)
        if p > 0 and caller is not None and not caller.training:
            t = site.tally(self.phase)
            t.flag_mismatch += 1
            if not t.flag_examples:
                t.flag_examples.append((True, False))
        y = call.run()
        if p > 0 and self.mode == "record" and self.sdpa_twin and site.tally(self.phase).n < ELEMENT_CAP:
            w_drop, w_ref = self._sdpa_twin(call)
            self._record(site, p, w_ref, w_drop)
        else:
            t = site.tally(self.phase)
            t.calls += 1
            t.ps.add(p)
        self._applied(site, p > 0, caller, "flag" if caller is not None and not caller.training else "caller-train")
        return y

    @torch.no_grad()
    def _sdpa_twin(self, call: DropoutCall):
        a = dict(call.arguments)
        q, k, v = a["query"].detach(), a["key"].detach(), a["value"].detach()
        lk = k.shape[-2]
        eye = torch.eye(lk, dtype=v.dtype, device=v.device).expand(*v.shape[:-2], lk, lk).contiguous()
        rest = {n: a[n] for n in a if n not in ("query", "key", "value", "dropout_p")}
        mask = rest.get("attn_mask")
        if torch.is_tensor(mask):
            rest["attn_mask"] = mask.detach()
        w_drop = call.func(q, k, eye, dropout_p=call.p, **rest)
        w_ref = call.func(q, k, eye, dropout_p=0.0, **rest)
        return w_drop, w_ref


def live_sites(sites: dict, phase: str = "train") -> list:
    """Sites that ran with p > 0 in the phase."""
    return [s for s in sites.values() if s.tally(phase).p > 0]


class ZeroDropout:
    """Every dropout site forced to p=0 (the baseline of the overhead measurement): modules get
    p=0, functional calls get p=0, with no recording, so the two timed runs differ only in p.
    It patches the functional entry points instead of entering the function mode: a mode puts a
    Python call on every torch op, which would be timed in one arm only."""

    def __init__(self, model: nn.Module):
        self.model = model
        self._saved: list = []
        self._originals: list = []

    def __enter__(self) -> ZeroDropout:  # noqa: PYI034
        for m in self.model.modules():
            if isinstance(m, _DropoutNd):
                self._saved.append((m, m.p))
                m.p = 0.0
        def functional_zero(orig):
            sig = inspect.signature(orig)

            def wrapper(*args, **kwargs):
                bound = sig.bind(*args, **kwargs)
                bound.arguments["p"] = 0.0
                return orig(*bound.args, **bound.kwargs)
            return wrapper

        for name in FUNCTIONAL:
            self._swap(F, name, functional_zero)
        self._swap(torch, "dropout", lambda orig: (lambda input, p, train: orig(input, 0.0, train)))

        def sdpa_zero(orig):
            def wrapper(*args, **kwargs):
                return call_sdpa(orig, SDPA_SIGNATURE.bind(*args, **kwargs).arguments, 0.0)
            return wrapper

        self._swap(F, "scaled_dot_product_attention", sdpa_zero)
        return self

    def _swap(self, owner, name, make) -> None:
        orig = getattr(owner, name)
        self._originals.append((owner, name, orig))
        setattr(owner, name, make(orig))

    def __exit__(self, *exc) -> None:
        while self._originals:
            owner, name, orig = self._originals.pop()
            setattr(owner, name, orig)
        for m, p in self._saved:
            m.p = p
        self._saved.clear()
