"""The guard inside the user's real run, whatever runs the loop (Trainer, Lightning, accelerate, a
plain loop): what the framework adapters in `hf.py` and `lightning.py` and the `dropout_guard`
context manager share.

It reuses the probe's `Instrument` (module hooks plus the dropout function mode of
`probe/dropout_calls.py`), installed only while it watches:

- training: the first `warmup` training steps (the plan: every site and the rate it runs at) and
  then one step in `sample_every`; the other steps run with nothing installed, so the guard costs
  nothing there. Sampled steps measure each site's drop rate, tested at the end with the probe's
  binomial test (DRP801/802), and configured nn.Dropout modules that never ran are listed (DRP804).
- evaluation and prediction: every forward, counting each active dropout application (a module
  in train mode with p > 0, a functional call with training=True, SDPA with dropout_p > 0); the
  first one at each site raises `DropoutActiveInEval` or warns, naming the site and the user's
  frame (DRP800).

At train start it also checks that LoRA dropout the user configured was not zeroed by the trainer
(DRP804), and, under torch.distributed, that ranks draw different dropout masks (DRP812). At the
end the counts of every rank are merged, and `report()` gives the findings (the probe's codes)
and the measurements as JSON.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import warnings

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from auditor.core.model import Span
from auditor.probe import checks
from auditor.probe.codes import probe_finding
from auditor.probe.instrument import Instrument, scale_tolerance
from auditor.probe.keymap import generic_path
from auditor.probe.ranks import distributed, gather_digests, gather_sites, rank_finding, shared_groups
from auditor.runtime import frames
from auditor.runtime.lora import cause, zeroed_lora

LOG = logging.getLogger("dropout_auditor.runtime")
MODES = ("raise", "warn")


class DropoutActiveInEval(RuntimeError):
    """Dropout dropped units while the run was evaluating or predicting (on_eval_dropout="raise")."""


class DropoutGuardWarning(UserWarning):
    """What the guard reports when on_eval_dropout="warn", and at the end of a run."""


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside DistributedDataParallel / DataParallel / FSDP / torch.compile."""
    for _ in range(8):
        inner = getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            inner = getattr(model, "module", None)
        if not isinstance(inner, nn.Module) or inner is model:
            return model
        model = inner
    return model


_TAG = re.compile(r"[^A-Za-z0-9_./-]")


def tag(site) -> str:
    """A metric name per site, layers folded (layers.3 -> layers._) so a deep model logs few."""
    path = generic_path(checks.display_path(site.path)).replace("*", "_")
    return _TAG.sub("_", f"{path}/{site.kind}")


class Guard:
    """One run's dropout guard. `emit(metrics)` sends the plan and the measured rates to the
    run's logger (the adapters set it; by default they go to the Python logger)."""

    def __init__(self, *, on_eval_dropout: str = "raise", sample_every: int = 100, warmup: int = 3,
                 check_ranks: bool = True, json_path: str | None = None, emit=None):
        if on_eval_dropout not in MODES:
            raise ValueError(f"on_eval_dropout must be one of {MODES}, got {on_eval_dropout!r}")
        if sample_every < 0 or warmup < 0:
            raise ValueError("sample_every and warmup must be >= 0")
        self.on_eval_dropout = on_eval_dropout
        self.sample_every = sample_every
        self.warmup = warmup
        self.check_ranks = check_ranks
        self.json_path = json_path
        self.emit = emit
        self.model: nn.Module | None = None
        self.instrument: Instrument | None = None
        self.steps = 0
        self.sampled = 0
        self.eval_runs = 0
        self.started = False
        self.where = ""                  # the user's file that started training (findings' fallback)
        self.static_plan: dict = {}      # (path, class) -> p of every nn.Dropout-family module at start
        self.first_active: dict = {}     # site ident -> (UserFrame or None, why, caller class)
        self.start_findings: list = []
        self.rank_alarm = None           # DRP812, kept only if the run has live dropout
        self.ranks: dict = {}
        self._plan_logged = False
        self._pending: dict = {}
        self._final: list | None = None
        self._sites = None

    # -- binding ------------------------------------------------------------------------
    def bind(self, model: nn.Module) -> None:
        model = unwrap(model)
        if model is self.model:
            return
        if self.instrument is not None and self.instrument.installed:
            self.instrument.close()
        self.model = model
        self.instrument = Instrument(model, mode="off", listener=self._on_active)

    def _need_model(self) -> Instrument:
        if self.instrument is None:
            raise RuntimeError("dropout guard: no model bound (call bind(model) first)")
        return self.instrument

    # -- train start --------------------------------------------------------------------
    def start(self, *, disable_dropout=None, trainer_name: str = "") -> None:
        """The plan's static half, the LoRA check and the rank check (a collective when distributed)."""
        self._need_model()
        frame = frames.user_frame(2)
        self.where = frames.relative(frame.file) if frame else "<run>"
        self.static_plan = {(name or "<root>", type(m).__name__): float(m.p) for name, m in self.model.named_modules()
                            if isinstance(m, _DropoutNd)}
        self.start_findings = []
        for z in zeroed_lora(self.model):
            self.start_findings.append(probe_finding(
                "DRP804", self.where,
                f"lora_dropout = {z.rate:g} (adapter '{z.adapter}') has no effect: {z.zeroed} of its {z.total} LoRA "
                f"dropout modules run at p=0 when training starts (e.g. {checks.display_path(z.example)}): "
                f"{cause(disable_dropout, trainer_name)}.", key=f"lora_dropout.{z.adapter}"))
        if self.check_ranks and distributed():
            self.rank_check()
        told = self.start_findings + ([self.rank_alarm] if self.rank_alarm and self._live(self.static_plan) else [])
        for f in told:
            self._tell(f.message)
        self.started = True

    def rank_check(self, how: str = "the ranks' generators are in the same state at train start") -> None:
        """Compare one mask per rank (every rank must call this)."""
        device = self._device()
        digests = gather_digests(device)
        groups = shared_groups(digests)
        self.ranks = {"world_size": dist.get_world_size(), "backend": str(dist.get_backend()),
                      "device": str(device), "digests": digests, "identical_groups": groups}
        self.rank_alarm = rank_finding(groups, len(digests), self.where, how)

    def _device(self):
        for p in self.model.parameters():
            return p.device
        return torch.device("cpu")

    # -- watching -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _watching(self, phase: str, mode: str):
        ins = self._need_model()
        saved = (ins.phase, ins.mode)
        ins.phase, ins.mode = phase, mode
        try:
            if ins.installed:
                yield
            else:
                with ins:
                    yield
        finally:
            ins.phase, ins.mode = saved

    def sampling(self, step: int) -> bool:
        return step < self.warmup or (self.sample_every > 0 and step % self.sample_every == 0)

    @contextlib.contextmanager
    def train_step(self):
        """One training step (forward and backward of a micro-batch): watched when sampled."""
        step = self.steps
        self.steps += 1
        if self.instrument is None or not self.sampling(step):
            yield False
            return
        self.sampled += 1
        with self._watching("train", "record"):
            yield True
        self._after_sample()

    @contextlib.contextmanager
    def evaluation(self):
        """An evaluation or prediction pass: every active dropout application is counted (nothing
        is watched while no model is bound: a Trainer built with model_init has none before train)."""
        if self.instrument is None:
            yield
            return
        self.eval_runs += 1
        with self._watching("eval", "light"):
            yield

    def watch_forwards(self, module: nn.Module | None = None) -> list:
        """Treat each forward of `module` (the bound model) as a training step: hooks that
        install the instrument on sampled forwards (plain loops, where no trainer marks steps)."""
        module = module or self.model
        state: dict = {}

        def pre(mod, args):
            if self.instrument is not None and self.instrument.installed and self.instrument.phase == "eval":
                return
            ctx = self.train_step()
            if ctx.__enter__():
                self.instrument.running(mod)
            state[id(mod)] = ctx

        def post(mod, args, output):
            ctx = state.pop(id(mod), None)
            if ctx is not None:
                ctx.__exit__(None, None, None)

        return [module.register_forward_pre_hook(pre), module.register_forward_hook(post, always_call=True)]

    # -- eval-time alarm ------------------------------------------------------------------
    def _on_active(self, site, phase: str, caller, why: str) -> None:
        if phase != "eval" or site.ident in self.first_active:
            return
        frame = frames.user_frame(2)
        owner = type(caller).__name__ if caller is not None else ""
        self.first_active[site.ident] = (frame, why, owner)
        message = self.active_message(site, why, owner, frame)
        if self.on_eval_dropout == "raise":
            raise DropoutActiveInEval(message)
        self._tell(message)

    @staticmethod
    def active_message(site, why: str, owner: str, frame) -> str:
        p = site.eval.p
        name = f"{checks.display_path(site.path)} ({site.kind}, p={p:g})"
        owner = owner or "its module"
        if why == "module-train":
            reason = ("the module is in train mode during evaluation: model.eval() was not called, or "
                      "model.train() ran after it (a callback, a hook, or a submodule switched on its own)")
        elif site.kind == "sdpa":
            reason = (f"scaled_dot_product_attention got dropout_p={p:g} while {owner} is in eval mode (SDPA has "
                      "no training flag: pass dropout_p=p if self.training else 0.0)")
        elif why == "flag":
            reason = f"it was called with training=True while {owner} is in eval mode (pass training=self.training)"
        else:
            reason = f"{owner} is in train mode during evaluation, so the call keeps training=True"
        where = f" Called from {frame}." if frame is not None else ""
        return f"dropout active during evaluation at {name}: {reason}.{where}"

    # -- logging ----------------------------------------------------------------------
    def plan_metrics(self) -> dict:
        """tag -> configured rate of every site seen in training (and every nn.Dropout module)."""
        out: dict = {}
        named = [(tag(_Named(path, cls)), p) for (path, cls), p in self.static_plan.items()]
        seen = [(tag(s), s.train.p) for s in (self.instrument.sites.values() if self.instrument else ()) if s.train.ps]
        for key, p in named + seen:
            out[key] = max(out.get(key, 0.0), p)
        return {f"dropout/plan/{k}": v for k, v in sorted(out.items())}

    def measured_metrics(self) -> dict:
        out: dict = {}
        for s in (self.instrument.sites.values() if self.instrument else ()):
            t = s.train
            if t.n:
                n, k = out.get(tag(s), (0, 0))
                out[tag(s)] = (n + t.n, k + t.k)
        return {f"dropout/measured/{key}": k / n for key, (n, k) in sorted(out.items())}

    def _after_sample(self) -> None:
        if not self._plan_logged:
            self._plan_logged = True
            plan = self.plan_metrics()
            self._pending.update(plan)
            LOG.info("dropout plan (%d sites): %s", len(plan),
                     ", ".join(f"{k.removeprefix('dropout/plan/')}={v:g}" for k, v in plan.items()))
        self._pending.update(self.measured_metrics())

    def flush(self) -> dict:
        """Send what is pending (plan after the first sampled step, measured rates after each)."""
        metrics, self._pending = self._pending, {}
        if metrics:
            if self.emit is not None:
                self.emit(metrics)
            else:
                LOG.debug("dropout metrics: %s", metrics)
        return metrics

    def _tell(self, message: str) -> None:
        LOG.warning(message)
        warnings.warn(message, DropoutGuardWarning, stacklevel=3)

    # -- the end ------------------------------------------------------------------------
    def finish(self, *, aggregate: bool = True) -> list:
        """Merge every rank's counts (a collective when distributed and `aggregate`), judge, write
        the JSON. Safe to call more than once: later calls only re-read the findings."""
        if self._final is not None:
            return self._final
        ins = self._need_model()
        if ins.installed:
            ins.close()
        self.flush()
        sites = gather_sites(ins.sites) if aggregate else ins.sites
        self._sites = sites
        self._final = self.judge(sites)
        for f in self._final:
            if f not in self.start_findings and f is not self.rank_alarm:   # told as they happened
                LOG.log(logging.INFO if f.code == "DRP800" else logging.WARNING, "%s %s", f.code, f.message)
        if self.json_path and _rank() == 0:
            with open(self.json_path, "w", encoding="utf-8") as fh:
                json.dump(self.report(), fh, indent=1, default=str)
        return self._final

    @staticmethod
    def _live(plan: dict) -> bool:
        return any(p > 0 for p in plan.values())

    def judge(self, sites: dict) -> list:
        """Findings from merged sites. Shared masks matter only where something drops: DRP812
        needs a module with p > 0 at start or a site that ran with p > 0 in training."""
        out = list(self.start_findings)
        if self.rank_alarm is not None and (self._live(self.static_plan) or
                                            any(s.train.p > 0 for s in sites.values())):
            out.append(self.rank_alarm)
        ctx = checks.Context(self.where or "<run>", origin="factory")
        if self.sampled:
            _, train, _ = checks.site_rows(sites, ctx, scale_tolerance(self._dtype()), eval_check=False)
            out += train
            out += self._never_ran(sites)
        for s in sorted(sites.values(), key=lambda s: (s.path, s.kind)):
            e = s.eval
            if not e.active:
                continue
            frame, why, caller = self.first_active.get(s.ident, (None, "", ""))
            path, span = (frames.relative(frame.file), Span(frame.line, 1, frame.line, 1)) if frame else \
                ctx.location(s)[:2]
            first = self.active_message(s, why or "caller-train", caller, frame)
            out.append(probe_finding(
                "DRP800", path,
                f"{e.active} of {e.calls} applications of {checks.display_path(s.path)} ({s.kind}) during evaluation "
                f"or prediction dropped units; first: {first}", span, key=s.path))
        out.sort(key=lambda f: f.sort_key())
        return out

    def _never_ran(self, sites: dict) -> list:
        """Configured nn.Dropout modules with p > 0 that no sampled training step ran. A module
        whose rate an SDPA or functional call of its parent module reads (GPT-2's attn_dropout
        under SDPA) did its job without running, and is not reported."""
        if self.sampled < max(1, self.warmup):
            return []
        ran = {s.ident for s in sites.values() if s.train.calls}
        readers = [(s.path, s.train.p) for s in sites.values() if s.train.calls and s.ident not in self.static_plan]
        out = []
        for (path, cls), p in sorted(self.static_plan.items()):
            if p <= 0 or (path, cls) in ran:
                continue
            parent = path.rpartition(".")[0]
            if any(abs(rp - p) < 1e-12 and (rpath == "<root>" or parent == rpath or parent.startswith(rpath + "."))
                   for rpath, rp in readers):
                continue
            out.append(probe_finding(
                "DRP804", self.where,
                f"{checks.display_path(path)} ({cls}, p={p:g}) never ran in the {self.sampled} sampled training "
                "steps: its dropout has no effect on training.", key=path))
        return out

    def _dtype(self):
        for p in self.model.parameters():
            return p.dtype
        return torch.float32

    def report(self) -> dict:
        """Everything the guard measured, as JSON-ready data."""
        sites = self._sites if self._sites is not None else (self.instrument.sites if self.instrument else {})
        findings = self._final if self._final is not None else self.judge(sites)
        return {
            "steps": self.steps, "sampled_steps": self.sampled, "sample_every": self.sample_every,
            "warmup": self.warmup, "eval_runs": self.eval_runs,
            "plan": self.plan_metrics(), "measured": self.measured_metrics(),
            "sites": [{"path": checks.display_path(s.path), "kind": s.kind, "p": s.p,
                       "train_calls": s.train.calls, "train_units": s.train.n, "train_dropped": s.train.k,
                       "eval_calls": s.eval.calls, "eval_active": s.eval.active}
                      for s in sorted(sites.values(), key=lambda s: (s.path, s.kind))],
            "ranks": self.ranks,
            "first_active_in_eval": {f"{checks.display_path(k[0])} ({k[1]})": (v[0].to_dict() if v[0] else None)
                                     for k, v in self.first_active.items()},
            "findings": [f.to_dict() for f in findings],
        }


class _Named:
    __slots__ = ("path", "kind")

    def __init__(self, path: str, kind: str):
        self.path, self.kind = path, kind


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


@contextlib.contextmanager
def dropout_guard(model: nn.Module, mode: str = "eval", **options):
    """`with dropout_guard(model, mode="eval"):` around an evaluation loop raises (or warns, with
    on_eval_dropout="warn") at the first active dropout application; `mode="train"` around a
    training loop watches sampled forwards, checks ranks and LoRA at entry and judges at exit.
    Yields the Guard (`.report()`, `.finish()`, `.evaluation()` for eval passes inside a train block)."""
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    guard = Guard(**options)
    guard.bind(model)
    if mode == "eval":
        with guard.evaluation():
            yield guard
        guard.finish(aggregate=False)
        return
    guard.start()
    hooks = guard.watch_forwards()
    try:
        yield guard
    finally:
        for h in hooks:
            h.remove()
    guard.finish()
