"""Turning what the probe measured into verdicts and findings.

Each check states its test: the dropped fraction of a site is judged by a two-sided binomial
test against its p; the expected-magnitude check by a z-test on the mean least-squares scale of
train-mode outputs against the eval output; all random tests of one run share one family-wise
alpha (Bonferroni), so a clean model raises a false alarm with probability below FAMILY_ALPHA.
Deterministic checks (eval reproducibility, eval vs forced identity) use exact equality on CPU.

Imports inside functions (`linecache`, `probe.instrument`) are deferred for start-up time: only a
finding on a factory's code pays for them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from auditor.core.model import Span
from auditor.probe.codes import probe_finding
from auditor.probe.keymap import generic_path
from auditor.probe.stats import FAMILY_ALPHA, median, outside_band, rate_test

OVERHEAD_RATIO = 1.5   # an info finding above this step-time ratio
LOSS_WINDOW = 3


@dataclass
class SiteRow:
    path: str
    kind: str
    p: float
    eval_p: float
    key: str = ""
    calls_train: int = 0
    calls_eval: int = 0
    n: int = 0
    k: int = 0
    rate: float | None = None
    ci: tuple | None = None
    p_value: float | None = None
    alpha: float | None = None
    scale: float | None = None
    expected_scale: float | None = None
    train_verdict: str = "-"
    eval_verdict: str = "off"
    eval_dropped: int = 0
    unit: str = ""                    # what one dropped unit is (hand-written masks: element, sample)
    mean_ratio: float | None = None   # train/eval mean magnitude ratio (module survey)
    slope: float | None = None        # least-squares slope of train on eval output (module survey)
    source: str = ""                  # file:line of the module's class (module survey)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class Context:
    """Where findings point: the config (and its keys) or the user's factory source."""

    config_path: str
    keys: list = field(default_factory=list)      # ConfigKey
    site_keys: dict = field(default_factory=dict)  # generic (path, kind) -> ConfigKey
    origin: str = "config"

    def location(self, site=None) -> tuple:
        """The config key that drives the site, else the class statement of the module that made
        the call (the user's code, or the modeling code a config builds), else the config."""
        if site is not None:
            key = self.site_keys.get((generic_path(site.path), site.kind))
            if key is not None:
                return key.file, key.span, key.dotted
            file, line = site.source
            if self.origin == "factory" and file and line:
                return _rel(file), _call_span(file, line, site.kind), site.path
            file, line = site.class_source if site.class_source[1] else site.source
            if file and line:
                return _rel(file), Span(line, 1, line, 1), site.path
        return self.config_path, Span.file_start(), site.path if site is not None else ""


def _call_span(file: str, line: int, kind: str) -> Span:
    """The dropout call on that line (`F.dropout(`, `scaled_dot_product_attention(`), so a
    finding points at the call rather than the line's start; the line alone when not found."""
    import linecache

    text = linecache.getline(file, line)
    name = {"sdpa": "scaled_dot_product_attention"}.get(kind, kind.partition("@")[0].rpartition(".")[2])
    col = text.find(name + "(") if name else -1
    if col < 0:
        return Span(line, 1, line, 1)
    start = col
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "._"):
        start -= 1  # the whole callee: `F.dropout`, `torch.nn.functional.dropout`
    return Span(line, start + 1, line, col + len(name) + 1)


def model_location(origin: str, model, config_path: str, model_type_span) -> tuple:
    """Where a finding on the whole model points: the config's model_type key, or the model
    class's `forward` for a factory (never 1:1 of a file, which names nothing)."""
    if origin == "factory":
        from auditor.probe.instrument import source_of

        file, line = source_of(model)
        if file and line:
            return _rel(file), Span(line, 1, line, 1)
    return config_path, model_type_span or Span.file_start()


def _rel(path: str) -> str:
    try:
        rel = os.path.relpath(path)
        return path if rel.startswith("..") else rel
    except ValueError:
        return path


def display_path(path: str) -> str:
    return path.removeprefix("base_model.model.")


def site_alpha(sites: dict, extra_tests: int = 0) -> float:
    """The per-test alpha of one run: the family alpha split over every live kernel site, every
    module the survey judges, and the magnitude test."""
    live = [s for s in sites.values() if s.train.p > 0 and s.train.n > 0]
    return FAMILY_ALPHA / (len(live) + extra_tests + 1)


def class_location(source: tuple, fallback: str) -> tuple:
    """(file, span) of a module's class statement; the fallback file at 1:1 when unknown."""
    file, line = source
    if file and line:
        return _rel(file), Span(line, 1, line, 1)
    return fallback, Span.file_start()


def site_rows(sites: dict, ctx: Context, scale_tol: float, alpha: float | None = None,
              eval_check: bool = True) -> tuple:
    """Check 1 (train: rate and inverted scaling) and the site half of check 2 (eval: no drop).
    The run-time guard judges evaluation from its own counts (`eval_check=False`)."""
    findings = []
    rows = []
    alpha = site_alpha(sites) if alpha is None else alpha
    for s in sorted(sites.values(), key=lambda s: (s.path, s.kind)):
        key = ctx.site_keys.get((generic_path(s.path), s.kind))
        row = SiteRow(display_path(s.path), s.kind, s.train.p, s.eval.p, key.dotted if key else "",
                      s.train.calls, s.eval.calls)
        file, span, fkey = ctx.location(s)
        where = f"{row.path} ({s.kind}, in {s.caller_class})"
        t = s.train
        if t.p > 0 and t.n > 0:
            test = rate_test(t.k, t.n, t.p, alpha)
            row.n, row.k, row.rate, row.ci, row.p_value, row.alpha = t.n, t.k, test.rate, test.ci, test.p_value, alpha
            row.expected_scale = 1 / (1 - t.p) if t.p < 1 else math.inf
            dev = median(t.scale_devs) if t.scale_devs else 0.0
            row.scale = row.expected_scale * (1 + dev) if t.scale_devs else None
            verdicts = []
            if not test.consistent:
                verdicts.append("RATE")
                extra = ""
                if t.flag_mismatch and t.flag_examples and not t.flag_examples[0][0]:
                    extra = " It is called with training=False while its module is in train mode, so it never drops."
                findings.append(probe_finding(
                    "DRP801", file,
                    f"{where}: train-mode drop rate is inconsistent with its p={t.p:g}: {test.describe()}.{extra}",
                    span, fkey))
            bad_frac = t.bad_scale / t.kept if t.kept else 0.0
            # a site that never dropped (reported above) has nothing to rescale
            if t.scale_devs and t.k > 0 and (abs(dev) > scale_tol or bad_frac > 0.01):
                verdicts.append("SCALE")
                findings.append(probe_finding(
                    "DRP802", file,
                    f"{where}: kept units are scaled by {row.scale:.6g}, not 1/(1-p)={row.expected_scale:.6g} "
                    f"(median over {len(t.scale_devs)} calls of out/in on {t.kept} kept units; "
                    f"{bad_frac:.2%} off by more than the rounding tolerance {scale_tol:.1e}), "
                    "so the expected activation changes between train and eval (not inverted dropout).",
                    span, fkey))
            row.train_verdict = "ok" if not verdicts else "+".join(verdicts)
        elif t.p > 0:
            row.train_verdict = "not measured"
        e = s.eval
        problems = []
        if e.k > 0:
            problems.append(f"dropped {e.k} of {e.n} units in eval mode")
        if e.flag_mismatch:
            passed, _caller_mode = e.flag_examples[0] if e.flag_examples else (True, False)
            if s.kind == "sdpa":
                problems.append(f"was called with dropout_p={e.p:g} while its module was in eval mode "
                                "(SDPA has no training flag: gate dropout_p on self.training)")
            else:
                problems.append(f"was called with training={passed} while its module was in eval mode "
                                "(pass training=self.training)")
        elif e.changed and e.p > 0 and not e.k:
            problems.append(f"changed {e.changed} values in eval mode")
        row.eval_dropped = e.k
        if problems and eval_check:
            row.eval_verdict = "ACTIVE"
            findings.append(probe_finding(
                "DRP800", file,
                f"{where}: dropout stays on at evaluation: it " + "; it ".join(problems) + ".",
                span, fkey))
        elif e.calls == 0:
            row.eval_verdict = "not run"
        rows.append(row)
    return rows, findings, alpha


def survey_rows(verdicts: list, ctx: Context, alpha: float) -> tuple:
    """Rows and findings of the modules the survey judged (hand-written dropout): each finding at
    the module's class statement."""
    rows, findings = [], []
    for v in verdicts:
        site = v.site
        file, span = class_location(site.source, ctx.config_path)
        test = v.rate_test
        p = max(site.stored.values()) if site.stored else (site.rate or 0.0)
        kind = f"hand-written ({site.cls})" if site.mask_calls else f"stores a rate ({site.cls})"
        row = SiteRow(display_path(site.path), kind, p, 0.0, calls_train=site.calls,
                      unit=site.unit, mean_ratio=v.mean_ratio, slope=v.slope,
                      source=f"{_rel(site.source[0])}:{site.source[1]}" if site.source[0] else "")
        if test is not None:
            row.n, row.k, row.rate, row.ci, row.p_value, row.alpha = site.n, site.k, test.rate, test.ci, test.p_value, alpha
        row.scale, row.expected_scale = v.scale, v.expected_scale
        row.train_verdict = v.verdict
        row.eval_verdict = "RESCALED" if any(c == "DRP803" for c, _ in v.codes) else "off"
        rows.append(row)
        for code, message in v.codes:
            findings.append(probe_finding(code, file, message, span, site.path))
    return rows, findings


def locate_finding(finding, culprits: list):
    """A model-level finding moved to the module that fired (its class statement), naming it."""
    if not culprits:
        return finding.replace(message=finding.message + " (no single module could be singled out)")
    first = culprits[0]
    file, span = class_location(first.source, finding.path)
    names = "; ".join(c.describe() for c in culprits)
    where = f"Fired in {names}: its own output differs on the same input"
    return finding.replace(path=file, span=span, key=first.path, message=f"{where}. {finding.message}")


def eval_output_checks(same: bool, same_diff: float, ident: bool, ident_diff: float, path: str,
                       span: Span | None = None) -> list:
    """Check 2, model level: two eval forwards agree, and eval equals every-site-identity.
    `span`: where the model is named (model_location)."""
    out = []
    if not same:
        out.append(probe_finding("DRP808", path,
                   f"Two eval-mode forwards of the same batch differ (max |diff| {same_diff:.3g}): something "
                   "random still runs after model.eval().", span, key="<model>"))
    if not ident and same:  # with a random eval output the gap to identity could be that randomness
        out.append(probe_finding("DRP809", path,
                   f"The eval-mode output differs from the output with every dropout site forced to identity "
                   f"(max |diff| {ident_diff:.3g}): a dropout site is not a no-op at evaluation.", span,
                   key="<model>"))
    return out


@dataclass
class Magnitude:
    k: int
    slope: float
    se: float
    tol: float
    alpha: float
    rel_diff: float
    identity_deterministic: bool = True
    identity_equal: bool = True
    identity_diff: float = 0.0
    identity_scale: float = 1.0
    failed: bool = False
    skipped: str = ""
    within_tolerance: bool | None = None

    def describe(self) -> str:
        if self.skipped:
            return self.skipped
        return (f"least-squares scale (free intercept per output feature) of the mean of {self.k} train-mode "
                f"outputs against the eval output: {self.slope:.4f} ± {self.se:.4f} (s.e.), tolerance "
                f"1 ± {self.tol:.3f}, one-sided z-test at alpha {self.alpha:.2g}; relative L2 gap {self.rel_diff:.3g}")


def magnitude_check(m: Magnitude, live_ps: list, path: str, eval_deterministic: bool = True) -> list:
    """Check 3: nothing rescales at inference on top of inverted dropout.

    E[train output] equals the eval output when (a) every site preserves the mean, which check 1
    verifies site by site, and (b) train and eval compute the same thing once dropout is taken
    out. (b) is tested exactly: train mode with every dropout site forced to identity must give
    the eval output. The textbook bug (multiply by (1-p) at inference) fails (b) with a scale of
    1/(1-p). The mean of many train-mode forwards is reported too, with its tolerance of half
    that scale error for the largest live p; it is not the verdict when (b) can be decided,
    because normalisation after dropout shifts it by itself (the variance shift: a clean T5
    measures about 0.85), which would make a tolerance either blind or a false alarm.
    """
    if not live_ps:
        m.skipped = "no live dropout site in train mode"
        return []
    pmax = max(live_ps)
    m.tol = max(0.01, 0.5 * pmax / (1 - pmax))
    if not math.isnan(m.slope):
        m.within_tolerance = not outside_band(m.slope, m.se, 1.0, m.tol, m.alpha)
    if not eval_deterministic:
        m.skipped = "the eval output is random (reported separately), so it has no expected value to compare; " + m.describe()
        return []
    if not m.identity_deterministic:
        m.skipped = ("train mode stays random with every dropout site at identity (layer drop, stochastic "
                     "depth or noise): the exact comparison cannot decide; " + m.describe())
        return []
    if m.identity_equal:
        return []
    m.failed = True
    hint = ""
    for p in sorted(set(live_ps)):
        if abs(m.identity_scale * (1 - p) - 1) < 0.02:
            hint = (f" The scale is 1/(1-p) for p={p:g}: the eval path multiplies by (1-p) on top of PyTorch's "
                    "inverted dropout, which already scales kept units by 1/(1-p) in training.")
            break
    return [probe_finding("DRP803", path,
            f"The eval output differs from the train-mode output with every dropout site at identity "
            f"(max |diff| {m.identity_diff:.3g}; fitted scale train/eval {m.identity_scale:.4f}), so something "
            f"besides dropout changes at inference; {m.describe()}.{hint}", key="<model>")]


def loss_checks(losses: list, path: str) -> list:
    if not losses:
        return []
    if not all(math.isfinite(v) for v in losses):
        i = next(i for i, v in enumerate(losses) if not math.isfinite(v))
        return [probe_finding("DRP806", path, f"The fine-tune loss became {losses[i]} at step {i + 1}.", key="<loss>")]
    w = min(LOSS_WINDOW, max(1, len(losses) // 3))
    first, last = sum(losses[:w]) / w, sum(losses[-w:]) / w
    if len(losses) >= 2 and not last < first:
        return [probe_finding("DRP807", path,
                f"The fine-tune loss did not fall on a fixed batch in {len(losses)} AdamW steps "
                f"(mean of the first {w}: {first:.4g}, of the last {w}: {last:.4g}).", key="<loss>")]
    return []


def key_checks(effects: list, base_rates: dict, ctx: Context, defaults: dict, idle=None) -> list:
    """Check 4: configured keys with no live site; live sites no key explains; site p vs key.

    A no-op key whose value is its config class's own default (GPT-2's summary_first_dropout
    on an LM head) is a stock value nobody chose: it is listed in the key table, not reported.
    A no-op key of a part of the model that never ran (a vision tower the synthetic batch gave
    no image) was never tested: `idle(effect)` says why, and the key is "not exercised".
    """
    out = []
    explained = set()
    for eff in effects:
        k = eff.key
        default = defaults.get((k.file, k.key_path))
        why_idle = idle(eff) if idle is not None and eff.verdict == "no-op" else None
        if why_idle:
            eff.verdict, eff.note = "not exercised", why_idle
        elif eff.verdict == "no-op" and default is not None and abs(float(default) - k.value) < 1e-12:
            eff.note = f"no effect, but {k.value:g} is the architecture's default (not reported)"
        elif eff.verdict == "no-op":
            out.append(probe_finding("DRP804", k.file,
                       f"{k.dotted}={k.value:g} has no effect: with it set to 0 the model has the same dropout "
                       f"sites and bitwise-identical train-mode outputs over {eff.forwards} seeded forwards "
                       "(measured no-op; this architecture never reads the key).", k.span, k.dotted))
        for site in eff.sites:
            explained.add(site)
            ctx.site_keys.setdefault(site, k)
    for eff in effects:
        for site, p in eff.site_p.items():
            if p > 0 and abs(p - eff.key.value) > 1e-9:
                others = [e.key.value for e in effects if site in e.sites]
                if not any(abs(p - v) <= 1e-9 for v in others):
                    out.append(probe_finding("DRP801", eff.key.file,
                               f"{site[0]} ({site[1]}) is driven by {eff.key.dotted}={eff.key.value:g} but runs at "
                               f"p={p:g}.", eff.key.span, eff.key.dotted))
    for site, p in sorted(base_rates.items()):
        if p > 0 and site not in explained:
            out.append(probe_finding("DRP805", ctx.config_path,
                       f"{display_path(site[0])} ({site[1]}) drops at p={p:g} in train mode, but switching off "
                       "each configured dropout key leaves it unchanged: the config does not explain it "
                       "(a hard-coded or default rate).", key=site[0]))
    return out


def overhead_check(ratio: float, ci: tuple, path: str) -> list:
    if math.isfinite(ratio) and ci[0] > OVERHEAD_RATIO:
        return [probe_finding("DRP810", path,
                f"A training step with the configured dropout takes {ratio:.2f}x the time of the same step "
                f"with dropout 0 (95% bootstrap CI [{ci[0]:.2f}, {ci[1]:.2f}]).", key="<overhead>")]
    return []
