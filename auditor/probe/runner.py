"""The probe from start to end: build, map keys, fine-tune, measure, check, time.

Order matters: the key map uses separate throw-away builds; the fine-tune's own forwards are
the train-mode measurement; eval and expected-magnitude passes run on the fine-tuned weights
(so a LoRA branch is non-zero and its dropout shows in the output); the overhead timing comes
last because it keeps training the weights.

Imports inside functions (`os`, `probe.batch`) are deferred for start-up time: a run that never
takes that path never pays for them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from auditor.probe import checks
from auditor.probe.build import (
    Subject,
    adapter_defaults,
    build_hf,
    config_defaults,
    load_factory,
    subject_from_factory,
    subject_from_hf,
)
from auditor.probe.finetune import finetune, step_overhead
from auditor.probe.instrument import Instrument, scale_tolerance
from auditor.probe.keymap import measure_keys
from auditor.probe.stats import FAMILY_ALPHA, mean_and_se, ratio_of_medians_ci


@dataclass
class Options:
    steps: int = 20
    seed: int = 0
    device: str = "auto"
    full_size: bool = False
    trust_remote_code: bool = False
    lr: float = 3e-3
    magnitude_forwards: int = 128
    key_forwards: int = 32
    overhead: bool = True


@dataclass
class ProbeResult:
    findings: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    keys: list = field(default_factory=list)
    eval: dict = field(default_factory=dict)
    magnitude: checks.Magnitude | None = None
    overhead: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        mag = self.magnitude
        return {
            "meta": self.meta,
            "sites": [r.to_dict() for r in self.rows],
            "keys": self.keys,
            "loss": self.losses,
            "eval": self.eval,
            "magnitude": None if mag is None else {**mag.__dict__, "test": mag.describe()},
            "overhead": self.overhead,
            "findings": [f.to_dict() for f in self.findings],
        }


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: no CUDA device is available")
    return torch.device(name)


def _out(subject: Subject) -> torch.Tensor:
    return subject.output_fn(subject.forward()).detach().float()


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max()) if a.shape == b.shape else math.inf


def _same(a: torch.Tensor, b: torch.Tensor, device: torch.device, dtype) -> tuple:
    diff = _max_diff(a, b)
    if device.type == "cpu":
        return torch.equal(a, b), diff
    scale = float(a.abs().max()) if a.numel() else 0.0
    return diff <= 4 * torch.finfo(dtype).eps * max(scale, 1e-6), diff


def _centred(y: torch.Tensor) -> torch.Tensor:
    """Each output feature minus its mean over the batch: output biases are not rescaled by a
    faulty eval path, so the scale is fitted with a free intercept per feature."""
    rows = y.reshape(-1, y.shape[-1]) if y.dim() > 1 else y.reshape(-1, 1)
    if rows.shape[0] < 2:
        return rows
    return rows - rows.mean(0, keepdim=True)


def _rng_state(device: torch.device) -> list:
    states = [torch.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return states


def _freeze_running_stats(model: nn.Module) -> None:
    """Batch/instance norms stay in eval in the magnitude pass: their train mode is not dropout."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats:
            m.eval()


def prepare(target=None, factory: str | None = None, opts: Options | None = None):
    """The subject plus, for configs, the builder the key map needs."""
    opts = opts or Options()
    device = pick_device(opts.device)
    if factory:
        fn = load_factory(factory)
        subject = subject_from_factory(fn, seed=opts.seed, device=device, description=f"factory {factory}")
        return subject, None, device
    dtype = torch.bfloat16 if opts.full_size else torch.float32
    import os

    choice: dict = {}  # the scaled layout found by the first build, reused by every rebuild

    def build(overrides, full=opts.full_size, dev=device, dt=dtype):
        return build_hf(target.config, target.adapter, full_size=full, seed=opts.seed, device=dev, dtype=dt,
                        choice=choice,
                        trust_remote_code=opts.trust_remote_code,
                        config_dir=os.path.dirname(os.path.abspath(target.config_path)), overrides=overrides)

    model, arch = build({})
    size = sum(p.numel() for p in model.parameters())
    if arch == "base model":
        arch = f"{type(model).__name__} (base model)"
    desc = f"{arch} ({'full size' if opts.full_size else 'scaled down'}, {size / 1e6:.2f}M parameters"
    if getattr(model, "_probe_text_only", False):
        desc += ", text inputs only: no image input could be synthesized"
    if getattr(model, "_probe_no_labels", False):
        desc += ", no labels: the loss is taken from the output"
    if getattr(model, "_probe_completed", None):
        desc += ", keys the config leaves out completed as Transformers documents them: " + \
            "; ".join(model._probe_completed)
    desc += ", with adapter)" if target.adapter is not None else ")"
    if target.config_origin:
        desc += f"; config: {target.config_origin}"
    head = "base model" if arch.endswith("(base model)") else arch
    subject = subject_from_hf(model, head, seed=opts.seed, device=device, dtype=dtype, description=desc)
    return subject, build, device


def run_probe(subject: Subject, build, target, opts: Options, config_path: str) -> ProbeResult:
    t_start = time.perf_counter()
    res = ProbeResult()
    ctx = checks.Context(config_path, list(target.keys) if target else [], origin=subject.origin)
    device = subject.device

    # 4. the measured plan (config keys only; uses small throw-away builds)
    base_rates, effects = {}, []
    if build is not None and target is not None:
        def small(overrides):
            m, arch = build(overrides, False, torch.device("cpu"), torch.float32)
            return (m, arch)

        cache = {}

        def build_small(overrides):
            m, arch = small(overrides)
            cache["arch"] = arch
            return m

        def run(model):
            from auditor.probe.batch import hf_batch
            kw = hf_batch(model, cache["arch"], opts.seed, torch.device("cpu"))
            return subject.output_fn(model(**kw)).detach()

        pairs = [(k, target.which(i, k)) for i, k in enumerate(target.keys)]
        base_rates, effects = measure_keys(pairs, build_small, run, opts.seed, opts.key_forwards)
        defaults = {(target.config_path, (k,)): v for k, v in config_defaults(target.config).items()
                    if isinstance(v, (int, float))}
        if target.adapter is not None:
            defaults.update({(target.adapter_path, (k,)): v for k, v in adapter_defaults(target.adapter).items()
                             if isinstance(v, (int, float))})
        res.findings += checks.key_checks(effects, base_rates, ctx, defaults)
        res.keys = [{"key": e.key.dotted, "file": e.key.file, "line": e.key.span.line, "value": e.key.value,
                     "verdict": e.verdict, "sites": sorted(f"{p} ({k})" for p, k in e.sites), "note": e.note}
                    for e in effects]

    model = subject.model
    torch.manual_seed(opts.seed)
    with Instrument(model, mode="record", phase="train") as ins:
        # 1. train mode, measured on the fine-tune's own forwards
        res.losses = finetune(subject, opts.steps, opts.lr)
        res.findings += checks.loss_checks(res.losses, config_path)

        # 2. eval mode
        model.eval()
        ins.phase = "eval"
        with torch.no_grad():
            y1 = _out(subject)
            y2 = _out(subject)
            ins.mode = "identity"
            y_id = _out(subject)
        same, same_diff = _same(y1, y2, device, subject.dtype)
        ident, ident_diff = _same(y1, y_id, device, subject.dtype)
        res.eval = {"two_forwards_equal": same, "max_diff": same_diff,
                    "equals_identity": ident, "identity_max_diff": ident_diff,
                    "comparison": "bitwise" if device.type == "cpu" else "within 4 ulp of the output scale"}
        where, span = checks.model_location(subject.origin, model, config_path,
                                            getattr(target, "model_type_span", None))
        res.findings += checks.eval_output_checks(same, same_diff, ident, ident_diff, where, span)

        # 3. expected magnitude: train mode (running-stat norms frozen) vs the eval output
        model.train()
        _freeze_running_stats(model)
        ins.phase = "train"
        ins.mode = "identity"
        with torch.no_grad():
            rng_before = _rng_state(device)
            y_tid = _out(subject)
            y_tid2 = _out(subject)
            # layer drop / stochastic depth draw from the RNG even with every dropout site at
            # identity; two equal outputs could be luck (same layers skipped), the RNG cannot
            rng_used = not all(torch.equal(a, b) for a, b in zip(rng_before, _rng_state(device)))
            ins.mode = "off"
            total = torch.zeros_like(y1)
            slopes = []
            ref = _centred(y1)
            denom = float((ref * ref).sum())
            for _ in range(opts.magnitude_forwards):
                y = _out(subject)
                total += y
                if denom > 0:
                    slopes.append(float((_centred(y) * ref).sum()) / denom)
        ins.mode = "record"
        model.eval()

    mean_train = total / max(1, opts.magnitude_forwards)
    norm = float(y1.norm()) or 1.0
    det, _ = _same(y_tid, y_tid2, device, subject.dtype)
    det = det and not rng_used
    eq, diff = _same(y1, y_tid, device, subject.dtype)
    c = _centred(y_tid)
    id_scale = float((c * ref).sum()) / denom if denom > 0 else math.nan
    sites = ins.sites
    live_ps = sorted({s.train.p for s in sites.values() if s.train.p > 0})
    n_tests = len([s for s in sites.values() if s.train.p > 0 and s.train.n > 0]) + 1
    mean, se = mean_and_se(slopes)
    res.magnitude = checks.Magnitude(len(slopes), mean, se, 0.0, FAMILY_ALPHA / n_tests,
                                     float((mean_train - y1).norm()) / norm, det, eq, diff, id_scale)
    res.findings += checks.magnitude_check(res.magnitude, live_ps, config_path, res.eval["two_forwards_equal"])
    res.rows, site_findings, _ = checks.site_rows(sites, ctx, scale_tolerance(subject.dtype))
    res.findings += site_findings

    # 5. step-time overhead of the configured dropout against dropout forced to 0
    if opts.overhead and live_ps:
        torch.manual_seed(opts.seed)
        o = step_overhead(subject, opts.lr)
        if o:
            ratio, ci = ratio_of_medians_ci(o["configured_s"], o["zero_s"])
            res.overhead = {**o, "ratio": ratio, "ci95": list(ci),
                            "test": "ratio of median step times, 95% percentile-bootstrap interval"}
            res.findings += checks.overhead_check(ratio, ci, config_path)

    res.findings.sort(key=lambda f: f.sort_key())
    res.meta = {"model": subject.description, "device": str(device), "dtype": str(subject.dtype).replace("torch.", ""),
                "attn_implementation": subject.attn_implementation, "steps": opts.steps, "seed": opts.seed,
                "family_alpha": FAMILY_ALPHA, "seconds": round(time.perf_counter() - t_start, 3),
                "rate_test": "two-sided binomial test per site (exact, or normal with continuity correction when "
                             "n*p*(1-p) >= 100), Bonferroni-split family alpha; Wilson score intervals"}
    return res
