"""The module survey: every module's own output in train mode and in eval mode, on one input.

The instrument sees dropout that goes through PyTorch's kernels (nn.Dropout, F.dropout*,
torch.dropout, SDPA). A module that draws its own mask (`x * (torch.rand_like(x) > p)`) is
invisible to it, whether it forgets the 1/(1-p), scales twice (by 1/(1-p) in training and again
by (1-p) at eval, the textbook error on top of inverted dropout) or draws the wrong rate. So every
call of a module whose class is not PyTorch's own is preceded by a re-run of the same module, on
a copy of the same inputs, with it and its children in eval mode and every random stream restored
afterwards; then the train-mode output is compared with that eval-mode output, element by element:

- the mask: elements non-zero at eval that are exactly zero in training, counted in units (the
  dimensions along which the mask is constant make one unit: a per-sample drop path drops
  samples, not elements), tested against the rate the module stores (`p`, `drop_prob`, ...) with
  the same binomial test as the kernels' sites;
- the kept ratio, train over eval on the kept elements: inverted dropout makes it exactly
  1/(1-p), so the mean is preserved when the measured rate r agrees with 1 - 1/ratio (tested as
  a rate, which it is: r against the rate the scale implies);
- where the output has the input's shape and the eval output is a scaled copy of the input, the
  eval gain over the input: an eval path that multiplies by (1-p) is the double scaling;
- the train/eval mean ratio (sum of |train| over sum of |eval|) and the least-squares slope of
  train on eval, reported for every judged module.

Only two kinds of module are judged, so that modules whose outputs legitimately differ between
modes (batch norm, routers with jitter, SpecAugment) are never taken for dropout: those whose
train output shows a dropout-like mask (new exact zeros, every kept element scaled by one factor)
and no known dropout kernel ran inside them (a parent of nn.Dropout shows its child's mask), and
those that store a dropout rate, make no known dropout call themselves or below, and still
differ between modes on one input (their mean ratio is then tested like the model-level
magnitude, with its tolerance). Findings point at the module's class statement.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from auditor.probe import rng
from auditor.probe.instrument import class_source
from auditor.probe.stats import mean_and_se, median, outside_band, rate_test

# attribute names a module stores its dropout rate under (`layerdrop` skips layers: not a mask)
RATE_NAME = re.compile(r"^(p|rate|pdrop|drop_?rate|drop_?prob|drop_?p|(\w+_)?dropout(_p|_prob|_rate)?|\w+_pdrop|"
                       r"\w+_drop_prob)$")
NOT_A_RATE = re.compile(r"layer_?drop")
MAX_CALLS = 16          # surveyed calls per module path (shared blocks are called many times)
MAX_ELEMENTS = 4_000_000  # a module input larger than this is not copied for a re-run
KEPT_SHARE = 0.99       # share of kept elements that must have the one common ratio
DOUBLE_TOL = 0.05       # |ratio * (1-r)^2 - 1| below which a wrong scale is the double scaling


def stored_rates(module: nn.Module) -> dict:
    """The dropout rates the module stores as plain numbers: name -> value in (0, 1)."""
    out = {}
    for name, value in vars(module).items():
        if isinstance(value, float) and 0.0 < value < 1.0 and RATE_NAME.match(name) and not NOT_A_RATE.search(name):
            out[name] = value
    return out


def first_float(value):
    """The first floating-point tensor in a module's output or inputs (tuples, lists, dicts,
    ModelOutput), detached; None when there is none."""
    if torch.is_tensor(value):
        return value.detach() if value.is_floating_point() else None
    if isinstance(value, dict):
        value = list(value.values())
    elif hasattr(value, "to_tuple"):
        value = value.to_tuple()
    if isinstance(value, (tuple, list)):
        for item in value:
            found = first_float(item)
            if found is not None:
                return found
    return None


def clone_tree(value):
    """Tensors copied (a re-run must not see what the real call does to its inputs in place, nor
    change them); everything else shared."""
    if torch.is_tensor(value):
        return value.detach().clone()
    if isinstance(value, tuple):
        return tuple(clone_tree(v) for v in value)
    if isinstance(value, list):
        return [clone_tree(v) for v in value]
    if isinstance(value, dict):
        return {k: clone_tree(v) for k, v in value.items()}
    return value


def tree_elements(value) -> int:
    if torch.is_tensor(value):
        return value.numel()
    if isinstance(value, (tuple, list)):
        return sum(tree_elements(v) for v in value)
    if isinstance(value, dict):
        return sum(tree_elements(v) for v in value.values())
    return 0


def is_torch_module(module: nn.Module) -> bool:
    """PyTorch's own classes (Linear, LayerNorm, nn.Dropout, LSTM, containers): their train/eval
    behaviour is PyTorch's, and nn.Dropout is the instrument's."""
    return type(module).__module__.split(".")[0] == "torch"


def ratio_tolerance(dtype) -> float:
    return max(1e-4, 4 * torch.finfo(dtype).eps) if dtype.is_floating_point else 1e-4


def mask_units(drop: torch.Tensor, kept: torch.Tensor) -> tuple:
    """(units that could drop, units dropped, what a unit is): dimensions along which no position
    has both a dropped and a kept element are one unit (a drop path's per-sample mask)."""
    dims = [d for d in range(drop.dim())
            if drop.shape[d] > 1 and not bool((drop.any(d) & kept.any(d)).any())]
    if dims:
        udrop, ukept = drop.amax(dim=dims), kept.amax(dim=dims)
    else:
        udrop, ukept = drop, kept
    n, k = int((udrop | ukept).sum()), int(udrop.sum())
    if not dims:
        unit = "element"
    elif dims == list(range(1, drop.dim())):
        unit = "sample"
    else:
        unit = "constant along dims " + ",".join(map(str, dims))
    return n, k, unit


@dataclass
class Frame:
    module: nn.Module
    y_eval: torch.Tensor | None = None
    x: torch.Tensor | None = None
    own: bool = False          # the module itself called a known dropout kernel
    own_live: bool = False
    inside: bool = False       # a module below it did
    inside_live: bool = False
    flagged_below: bool = False  # a module below it showed a hand-written mask


@dataclass
class ModuleSite:
    """What the survey measured for one module path."""

    path: str
    cls: str
    source: tuple
    stored: dict
    owner: int = 0
    calls: int = 0
    differ_calls: int = 0
    mask_calls: int = 0
    n: int = 0
    k: int = 0
    unit: str = ""
    ratios: list = field(default_factory=list)       # per mask call: median kept train/eval
    train_gains: list = field(default_factory=list)  # per mask call: median kept train/input
    eval_gains: list = field(default_factory=list)   # per mask call: median eval/input (eval a scaled copy)
    slopes: list = field(default_factory=list)       # least squares of train on eval, per differing call
    mean_ratios: list = field(default_factory=list)  # sum |train| / sum |eval|, per differing call
    composite_slopes: list = field(default_factory=list)  # slopes of a rate-storing module with no mask
    own_kernel: bool = False

    @property
    def rate(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def judged(self) -> bool:
        return self.mask_calls > 0 or bool(self.composite_slopes)


class Survey:
    """Hooks on every non-PyTorch module; `active` while the survey pass runs. The instrument
    (in "watch" mode) reports known dropout calls through `on_kernel`."""

    def __init__(self, model: nn.Module, instrument, device=None):
        self.model = model
        self.ins = instrument
        self.device = device
        self.active = False
        self.sites: dict = {}
        self.paths = {id(m): (name or "<root>") for name, m in model.named_modules()}
        self._frames: list = []
        self._rerunning = False
        self._handles: list = []
        self.errors = 0

    def __enter__(self) -> Survey:  # noqa: PYI034
        for m in self.model.modules():
            if is_torch_module(m) or isinstance(m, _DropoutNd):  # nn.Dropout subclasses: the instrument's
                continue
            self._handles.append(m.register_forward_pre_hook(self._pre, with_kwargs=True))
            self._handles.append(m.register_forward_hook(self._post, with_kwargs=True, always_call=True))
        self.ins.watcher = self.on_kernel
        self.active = True
        return self

    def __exit__(self, *exc) -> None:
        self.active = False
        self.ins.watcher = None
        while self._handles:
            self._handles.pop().remove()
        self._frames.clear()

    # -- kernel calls from the instrument --------------------------------------------------
    def on_kernel(self, module, p: float) -> None:
        if self._rerunning or not self._frames:
            return
        top = self._frames[-1]
        if top.module is module:
            top.own, top.own_live = True, top.own_live or p > 0
        else:
            top.inside, top.inside_live = True, top.inside_live or p > 0

    # -- hooks ---------------------------------------------------------------------------
    def _site(self, module) -> ModuleSite:
        site = self.sites.get(id(module))
        if site is None:
            site = ModuleSite(self.paths.get(id(module), "<outside the model>"), type(module).__name__,
                              class_source(module), stored_rates(module), id(module))
            self.sites[id(module)] = site
        return site

    def _pre(self, module, args, kwargs):
        if self._rerunning or not self.active:
            return None
        frame = Frame(module)
        self._frames.append(frame)
        site = self.sites.get(id(module))
        if (site is not None and site.calls >= MAX_CALLS) or tree_elements((args, kwargs)) > MAX_ELEMENTS:
            return None
        x = first_float(args) if args else first_float(kwargs)
        frame.x = x.clone() if x is not None else None
        frame.y_eval = self._eval_output(module, args, kwargs)
        return None

    def _eval_output(self, module, args, kwargs):
        flags = [(m, m.training) for m in module.modules()]
        saved = rng.state(self.device)
        mode = self.ins.mode
        self._rerunning, self.ins.mode = True, "off"
        try:
            for m, _ in flags:
                m.training = False
            with torch.no_grad():
                return first_float(module(*clone_tree(args), **clone_tree(kwargs)))
        except Exception:  # noqa: BLE001  a module that cannot run twice is not surveyed
            self.errors += 1
            return None
        finally:
            for m, training in flags:
                m.training = training
            rng.restore(saved, self.device)
            self.ins.mode = mode
            self._rerunning = False

    def _post(self, module, args, kwargs, output):
        if self._rerunning or not self.active:
            return None
        while self._frames and self._frames[-1].module is not module:
            self._frames.pop()  # an exception unwound several frames
        if not self._frames:
            return None
        frame = self._frames.pop()
        flagged = False
        if frame.y_eval is not None and output is not None:
            flagged = self._compare(frame, first_float(output))
        if self._frames:
            parent = self._frames[-1]
            parent.inside = parent.inside or frame.own or frame.inside
            parent.inside_live = parent.inside_live or frame.own_live or frame.inside_live
            parent.flagged_below = parent.flagged_below or flagged or frame.flagged_below
        return None

    def _compare(self, frame: Frame, y_train) -> bool:
        """One call's comparison; True when the call showed a hand-written mask (so that the
        modules above it are not judged on the same mask)."""
        y_eval = frame.y_eval
        if y_train is None or y_train.shape != y_eval.shape:
            return False
        site = self._site(frame.module)
        site.calls += 1
        site.own_kernel = site.own_kernel or frame.own
        yt, ye = y_train.float(), y_eval.float()
        if torch.equal(yt, ye):
            return False
        site.differ_calls += 1
        denom = float((ye * ye).sum())
        slope = float((yt * ye).sum()) / denom if denom > 0 else math.nan
        mean_ratio = float(yt.abs().sum()) / max(float(ye.abs().sum()), 1e-30)
        live = ye != 0
        drop, kept = live & (yt == 0), live & (yt != 0)
        tol = ratio_tolerance(y_train.dtype)
        mask_like, ratio = False, math.nan
        if bool(drop.any()) and bool(kept.any()):
            ratios = yt[kept] / ye[kept]
            ratio = float(ratios.median())
            agree = float(((ratios - ratio).abs() <= tol * abs(ratio)).float().mean())
            mask_like = ratio > 0 and agree >= KEPT_SHARE
        if mask_like:
            if frame.inside_live or frame.flagged_below:
                return True  # a kernel or a module below drew this mask: judged there
            n, k, unit = mask_units(drop, kept)
            site.n, site.k, site.unit = site.n + n, site.k + k, site.unit or unit
            site.mask_calls += 1
            site.ratios.append(ratio)
            site.slopes.append(slope)
            site.mean_ratios.append(mean_ratio)
            x = frame.x
            if x is not None and x.shape == yt.shape:
                xf = x.float()
                nz = xf != 0
                gains = ye[nz] / xf[nz]
                if gains.numel():
                    gain = float(gains.median())
                    if float(((gains - gain).abs() <= tol * abs(gain)).float().mean()) >= KEPT_SHARE:
                        site.eval_gains.append(gain)  # the eval output is a scaled copy of the input
                        kx = kept & nz
                        if bool(kx.any()):
                            site.train_gains.append(float((yt[kx] / xf[kx]).median()))
            return True
        if site.stored and not (frame.own or frame.inside or frame.flagged_below) and math.isfinite(slope):
            site.slopes.append(slope)
            site.mean_ratios.append(mean_ratio)
            site.composite_slopes.append(slope)
        return False

    def judged(self) -> list:
        return sorted((s for s in self.sites.values() if s.judged), key=lambda s: s.path)


@dataclass
class Verdict:
    """The survey's verdict on one judged module, in the terms of the site table."""

    site: ModuleSite
    codes: list = field(default_factory=list)   # [(code, message)]
    rate_test: object = None
    scale: float | None = None
    expected_scale: float | None = None
    eval_gain: float | None = None
    mean_ratio: float | None = None
    slope: float | None = None
    slope_se: float | None = None
    band: float | None = None

    @property
    def verdict(self) -> str:
        names = {"DRP801": "RATE", "DRP802": "SCALE", "DRP803": "EVAL-RESCALED"}
        return "+".join(names[c] for c, _ in self.codes) or "ok"


def judge(site: ModuleSite, alpha: float) -> Verdict:
    """The findings one judged module earns (see the module docstring for the tests)."""
    v = Verdict(site)
    v.mean_ratio = median(site.mean_ratios) if site.mean_ratios else None
    where = f"{site.path} ({site.cls}, hand-written dropout"
    if site.mask_calls:
        rate = site.rate or 0.0
        v.slope = median(site.slopes) if site.slopes else None
        v.scale = median(site.ratios)
        v.expected_scale = 1 / (1 - rate) if rate < 1 else math.inf
        v.eval_gain = median(site.eval_gains) if site.eval_gains else None
        where += f": {site.unit} mask in {site.mask_calls} of {site.calls} train-mode calls)"
        if site.stored:
            tests = {name: rate_test(site.k, site.n, p, alpha) for name, p in site.stored.items()}
            if not any(t.consistent for t in tests.values()):
                name, test = min(tests.items(), key=lambda kv: abs(kv[1].p - rate))
                v.rate_test = test
                stored = ", ".join(f"{n}={p:g}" for n, p in site.stored.items())
                v.codes.append(("DRP801", f"{where}: drops at a rate inconsistent with its stored {stored}: "
                                          f"{test.describe()}."))
            else:
                v.rate_test = next(t for t in tests.values() if t.consistent)
        implied = 1 - 1 / v.scale if v.scale > 1 else 0.0
        mean_test = rate_test(site.k, site.n, implied, alpha)
        if v.rate_test is None:
            v.rate_test = mean_test
        if not mean_test.consistent:
            facts = (f"kept units are scaled by {v.scale:.6g} against eval (inverted dropout: 1/(1-r) = "
                     f"{v.expected_scale:.6g} for the measured rate r = {rate:.4f}, {site.k}/{site.n} {site.unit}s); "
                     f"train/eval mean ratio {v.mean_ratio:.4f}, slope {v.slope:.4f}")
            double = v.scale > 1 and abs(v.scale * (1 - rate) ** 2 - 1) < DOUBLE_TOL
            gain = v.eval_gain
            if gain is not None and abs(gain - 1) > ratio_tolerance(torch.float32):
                v.codes.append(("DRP803", f"{where}: its eval path multiplies its input by {gain:.6g} while training "
                                          f"already scales kept units by {median(site.train_gains):.6g}: scaled "
                                          f"twice, so the expected activation changes at eval; {facts}."))
            elif double:
                v.codes.append(("DRP803", f"{where}: scaled twice: {facts} (1/(1-r)^2: the eval path rescales "
                                          "by (1-r) on top of inverted dropout)."))
            else:
                missing = "not scaled at all" if abs(v.scale - 1) < 1e-3 else f"scaled by {v.scale:.6g}"
                v.codes.append(("DRP802", f"{where}: kept units are {missing} in training, not by 1/(1-p), so the "
                                          f"expected activation differs between train and eval; {facts}."))
        return v
    # a module storing a rate, no mask visible in its output, no known kernel inside
    mean, se = mean_and_se(site.composite_slopes)
    p = max(site.stored.values())
    v.slope, v.slope_se = mean, se
    v.band = max(0.01, 0.5 * p / (1 - p))
    where += f" inside it: stores {', '.join(f'{n}={x:g}' for n, x in site.stored.items())}, calls no dropout kernel)"
    if outside_band(mean, se, 1.0, v.band, alpha):
        code = "DRP803" if mean > 1 else "DRP802"
        v.codes.append((code, f"{where}: its train-mode output is {mean:.4f} ± {se:.4f} (s.e., "
                              f"{len(site.composite_slopes)} calls) times its eval-mode output on the same input "
                              f"(least-squares slope; tolerance 1 ± {v.band:.3f}, one-sided z-test at alpha "
                              f"{alpha:.2g}): the expected activation changes between train and eval."))
    return v
