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

from auditor.probe import checks, rng
from auditor.probe.build import (
    Subject,
    adapter_defaults,
    build_hf,
    config_defaults,
    load_factory,
    subject_from_factory,
    subject_from_hf,
    width_mismatch,
)
from auditor.probe.finetune import finetune, step_overhead
from auditor.probe.instrument import Instrument, scale_tolerance
from auditor.probe.keymap import measure_keys
from auditor.probe.locate import Setting, divergent
from auditor.probe.parts import explain_unreached, part_of_key
from auditor.probe.parts import measure as measure_parts
from auditor.probe.parts import parts_of as model_parts
from auditor.probe.stats import FAMILY_ALPHA, mean_and_se, ratio_of_medians_ci
from auditor.probe.survey import Survey, judge


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
    survey_forwards: int = 4
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
    survey: dict = field(default_factory=dict)
    parts: list = field(default_factory=list)

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
            "survey": self.survey,
            "parts": self.parts,
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


def _freeze_running_stats(model: nn.Module) -> None:
    """Batch/instance norms stay in eval in the magnitude pass: their train mode is not dropout."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats:
            m.eval()


def _survey(subject: Subject, ins: Instrument, opts: Options, res: ProbeResult):
    """Train mode (running-stat norms frozen), every known kernel as written and watched; see
    probe/survey.py. A model the survey cannot run through is reported as not surveyed."""
    model = subject.model
    if opts.survey_forwards <= 0:
        res.survey = {"ran": False, "note": "not run (--no survey forwards)"}
        return None
    model.train()
    _freeze_running_stats(model)
    ins.mode = "watch"
    survey = Survey(model, ins, subject.device)
    try:
        with survey, torch.no_grad():
            for i in range(opts.survey_forwards):
                rng.seed_all(opts.seed + 2000 + i)
                subject.forward()
    except Exception as exc:  # noqa: BLE001  the rest of the probe stands without the survey
        res.survey = {"ran": False, "note": f"the module survey could not run: {type(exc).__name__}: "
                                            f"{' '.join(str(exc).split())[:200]}"}
        return None
    finally:
        ins.mode = "off"
    modules = list(survey.sites.values())
    res.survey = {"ran": True, "forwards": opts.survey_forwards, "modules": len(modules),
                  "module_calls": sum(s.calls for s in modules),
                  "differing": sum(1 for s in modules if s.differ_calls),
                  "rerun_failures": survey.errors}
    return survey


def _flat(d: dict, prefix: tuple = (), depth: int = 0):
    """(key path, value) of a config dict, into sub-config dicts as deep as `rate_keys` looks, so
    that a sub-config key at its class's own default (Wav2Vec2's `final_dropout` inside a
    speech encoder-decoder) is a stock value too."""
    for key, value in d.items():
        if isinstance(value, dict) and depth < 2:
            yield from _flat(value, prefix + (key,), depth + 1)
        else:
            yield prefix + (key,), value


def _idle_part(parts: list, target):
    """The reason a config key was never exercised (its part did not run or was not built), or None."""
    def idle(effect):
        if effect.which != "config" or not parts:
            return None
        part = part_of_key(parts, effect.key.key_path)
        if part is None or part is parts[0]:
            return None
        if not part.built:
            return (f"not exercised: no module of this model class is built from {'.'.join(part.config_path)}, "
                    "so setting the key to 0 could not show whether it is read")
        if not part.ran:
            return (f"not exercised: the {part.name} part ({part.module}) never ran on the probe's synthetic batch, "
                    "so its dropout could not be measured")
        return None
    return idle


def _locate(subject: Subject, ins: Instrument, ev: dict, y_eval, y_tid, y_tid2, rng_used) -> dict:
    """code -> the modules a failed model-level comparison comes from (locate.py)."""
    found: dict = {}
    model, device = subject.model, subject.device
    eval_off = Setting(False, "off")
    if not ev["two_forwards_equal"]:
        found["DRP808"] = divergent(model, subject.forward, ins, eval_off, eval_off, device=device, fresh_draws=True)
    if not ev["equals_identity"]:
        found["DRP809"] = divergent(model, subject.forward, ins, eval_off, Setting(False, "identity"), device=device)
    deterministic = _same(y_tid, y_tid2, device, subject.dtype)[0] and not rng_used
    if ev["two_forwards_equal"] and deterministic and not _same(y_eval, y_tid, device, subject.dtype)[0]:
        found["DRP803"] = divergent(model, subject.forward, ins, Setting(True, "identity"), eval_off, device=device)
    model.eval()
    return found


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
    if not opts.full_size:
        desc += width_note(model, target.config)
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


def width_note(model, config: dict) -> str:
    """The config's disagreeing widths (build.width_mismatch), said for a scaled model that has an
    image to feed; a text-only class of the same type (Qwen3_5MoeForCausalLM) has none."""
    if getattr(getattr(model, "config", None), "vision_config", None) is None:
        return ""
    widths = width_mismatch(config)
    return f", {widths}; the scaled model gives both one width" if widths else ""


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

        import weakref

        from auditor.probe.batch import hf_batch

        batches = weakref.WeakKeyDictionary()

        def build_small(overrides):
            # the batch is made here, outside the key map's instrument: counting image or audio
            # tokens runs the towers, whose dropout calls would be taken for the key's sites
            m, arch = small(overrides)
            batches[m] = hf_batch(m, arch, opts.seed, torch.device("cpu"))
            return m

        def run(model):
            return subject.output_fn(model(**batches[model])).detach()

        pairs = [(k, target.which(i, k)) for i, k in enumerate(target.keys)]
        base_rates, effects = measure_keys(pairs, build_small, run, opts.seed, opts.key_forwards)

    model = subject.model
    parts = model_parts(model) if subject.origin == "config" else []
    rng.seed_all(opts.seed)
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

        # 3. expected magnitude: train mode (running-stat norms frozen) vs the eval output
        model.train()
        _freeze_running_stats(model)
        ins.phase = "train"
        ins.mode = "identity"
        with torch.no_grad():
            rng_before = rng.state(device)
            y_tid = _out(subject)
            y_tid2 = _out(subject)
            # layer drop / stochastic depth draw from the RNG even with every dropout site at
            # identity; two equal outputs could be luck (same layers skipped), the RNG cannot
            # (numpy's and Python's streams too: SpeechT5's SpecAugment draws from numpy)
            rng_used = rng.drawn(rng_before, rng.state(device))
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
        # 3b. the module survey: every module's own train vs eval output (hand-written dropout)
        survey = _survey(subject, ins, opts, res)
        ins.mode = "record"
        model.eval()

        # where the model-level differences come from (only when one was found)
        located = _locate(subject, ins, res.eval, y1, y_tid, y_tid2, rng_used)

    # coverage: which parts ran in the fine-tune, and how often their dropout sites fired
    judged = survey.judged() if survey is not None else []
    measure_parts(parts, ins.calls, [(s.owner, s.train.calls) for s in ins.sites.values()]
                  + [(s.owner, s.calls) for s in judged],
                  {"image": getattr(model, "_probe_image_dropped", ""), "audio": getattr(model, "_probe_audio_dropped", "")})
    explain_unreached(model, parts)
    res.parts = [p.to_dict() | {"line": p.describe()} for p in parts]

    # 4b. the key checks, now that it is known which parts ran
    if build is not None and target is not None:
        defaults = {(target.config_path, path): v for path, v in _flat(config_defaults(target.config))
                    if isinstance(v, (int, float))}
        if target.adapter is not None:
            defaults.update({(target.adapter_path, (k,)): v for k, v in adapter_defaults(target.adapter).items()
                             if isinstance(v, (int, float))})
        res.findings += checks.key_checks(effects, base_rates, ctx, defaults, _idle_part(parts, target))
        res.keys = [{"key": e.key.dotted, "file": e.key.file, "line": e.key.span.line, "value": e.key.value,
                     "verdict": e.verdict, "sites": sorted(f"{p} ({k})" for p, k in e.sites), "note": e.note}
                    for e in effects]

    mean_train = total / max(1, opts.magnitude_forwards)
    norm = float(y1.norm()) or 1.0
    det, _ = _same(y_tid, y_tid2, device, subject.dtype)
    det = det and not rng_used
    eq, diff = _same(y1, y_tid, device, subject.dtype)
    c = _centred(y_tid)
    id_scale = float((c * ref).sum()) / denom if denom > 0 else math.nan
    sites = ins.sites
    live_ps = sorted({s.train.p for s in sites.values() if s.train.p > 0})
    alpha = checks.site_alpha(sites, len(judged))
    mean, se = mean_and_se(slopes)
    res.magnitude = checks.Magnitude(len(slopes), mean, se, 0.0, alpha,
                                     float((mean_train - y1).norm()) / norm, det, eq, diff, id_scale)
    where, span = checks.model_location(subject.origin, model, config_path, getattr(target, "model_type_span", None))
    model_level = checks.eval_output_checks(res.eval["two_forwards_equal"], res.eval["max_diff"],
                                            res.eval["equals_identity"], res.eval["identity_max_diff"], where, span)
    model_level += checks.magnitude_check(res.magnitude, live_ps, config_path, res.eval["two_forwards_equal"])
    res.rows, site_findings, _ = checks.site_rows(sites, ctx, scale_tolerance(subject.dtype), alpha)
    verdicts = [judge(s, alpha) for s in judged]
    survey_rows, survey_findings = checks.survey_rows(verdicts, ctx, alpha)
    res.rows += survey_rows
    surveyed = {(f.path, f.span.line, f.code) for f in survey_findings}
    for f in model_level:
        f = checks.locate_finding(f, located.get(f.code, []))
        if (f.path, f.span.line, f.code) not in surveyed:  # the survey said it, with its numbers
            res.findings.append(f)
    res.findings += site_findings + survey_findings
    if survey is not None:
        res.survey["judged"] = [r.to_dict() for r in survey_rows]

    # 5. step-time overhead of the configured dropout against dropout forced to 0
    if opts.overhead and live_ps:
        rng.seed_all(opts.seed)
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
