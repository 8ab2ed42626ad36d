"""rng checks in code: recompute without the RNG state, one seed on every rank, and dropout
left on in preference training (pitfalls.md section D)."""

from __future__ import annotations

import ast
import re

from auditor.checks.base import Hit, check
from auditor.checks.code import models
from auditor.checks.code.common import (
    DDP_MARKERS,
    DROPOUT_MODULES,
    FUNCTIONAL,
    RANKISH,
    SEEDERS,
    hit,
    python_driver,
    python_module_of,
)
from auditor.knowledge import dropout_keys, frameworks
from auditor.sources.python_facts import (
    arg_or_kwarg,
    constant,
    dotted,
    is_zero,
    kwarg,
    last_name,
)


def _uses_dropout(src, module) -> bool:
    if any((s.p or 0) > 0 or s.reason == "expression" for s in src.settings):
        return True
    idx = module.index
    for call in idx.calls_named(_DROPOUT_CALLEES):
        name = last_name(call.func)
        p = arg_or_kwarg(call, "p", 0 if name in DROPOUT_MODULES else 1)
        if p is None or not is_zero(p):
            return True
    call = ast.Call
    return any(kw.arg and dropout_keys.is_rate_key(kw.arg) and not is_zero(kw.value)
               and idx.parents.get(kw).__class__ is call for kw in idx.of(ast.keyword))


_DROPOUT_CALLEES = DROPOUT_MODULES | frozenset(FUNCTIONAL)


@check("checkpoint-without-rng-state")
def checkpoint_without_rng_state(ctx, rule):
    """Activation checkpointing re-runs forward in backward; without the saved RNG state the
    recomputed dropout masks differ from the forward ones and gradients are wrong
    (OLMo-core#828, OLMo#702, guided-diffusion#167)."""
    module = python_module_of(ctx)
    if module is None or not _uses_dropout(ctx.source, module):
        return
    idx = module.index
    checkpoints = [call for call, name in zip(idx.calls, idx.call_names) if "checkpoint" in name]
    for node in checkpoints + idx.of(ast.Dict) + idx.of(ast.ClassDef):
        if isinstance(node, ast.Call) and "checkpoint" in last_name(node.func):
            kw = kwarg(node, "preserve_rng_state")
            if kw is not None and constant(kw.value) == (True, False) and not _recomputes_no_dropout(module, node):
                yield hit(ctx, module, kw.value, "preserve_rng_state=False in a model with dropout: the recompute "
                           "draws new dropout masks, so gradients do not match the forward pass", key="preserve_rng_state")
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if k is not None and constant(k) == (True, "preserve_rng_state") and constant(v) == (True, False):
                    yield hit(ctx, module, v, "preserve_rng_state: False in a model with dropout: the recompute "
                               "draws new dropout masks, so gradients do not match the forward pass",
                               key="preserve_rng_state")
        elif isinstance(node, ast.ClassDef) and any(last_name(b) == "Function" for b in node.bases):
            yield from _custom_recompute(ctx, module, node)


def _recomputes_no_dropout(module, call) -> bool:
    """The checkpoint sits in a module class that has no dropout, here or in what it builds
    (LSGM's GroupNormSwish checkpoints its GroupNorm and Swish): the recompute draws nothing,
    so the RNG state it does not save changes nothing, although the file has dropout elsewhere."""
    cls = next((a for a in module.ancestors(call) if isinstance(a, ast.ClassDef)), None)
    return cls is not None and models.class_dropout(module, cls) == models.ZERO


def _custom_recompute(ctx, module, cls):
    if "rng" in ast.dump(cls).lower():
        return
    backward = next((m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and m.name == "backward"), None)
    if backward is None or not backward.args.args:
        return
    ctx_name = backward.args.args[0].arg
    for n in ast.walk(backward):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
                and n.func.value.id == ctx_name and re.search(r"fn|func|run", n.func.attr)
                and not re.search(r"backward|grad|deriv", n.func.attr)):  # an activation's backward recomputes nothing
            yield hit(ctx, module, n, f"{cls.name}.backward re-runs the forward without saving and restoring the "
                       "RNG state: dropout masks in the recompute differ from the forward pass", key=cls.name)
            return


@check("same-seed-every-rank")
def same_seed_every_rank(ctx, rule):
    """A data-parallel script that seeds every rank with the same constant draws the same
    dropout masks on every GPU (transformers#31412, anemoi-core#595)."""
    module = python_module_of(ctx)
    if module is None or not any(m in module.text for m in DDP_MARKERS) or not _uses_dropout(ctx.source, module):
        return
    generators = _generator_names(module)
    for call in module.calls():
        if last_name(call.func) not in SEEDERS or not call.args:
            continue
        if kwarg(call, "device_specific") is not None and constant(kwarg(call, "device_specific").value) != (True, False):
            continue
        if _local_generator(call, generators):
            continue  # torch.Generator(device).manual_seed(s) seeds that generator, not the RNG dropout draws from
        arg = call.args[0]
        if _rank_offset(module, call, arg):
            continue
        if any(isinstance(a, ast.If) and any(RANKISH.search(getattr(n, "id", getattr(n, "attr", "")) or "")
                                             for n in ast.walk(a.test)) for a in module.ancestors(call)):
            continue
        yield hit(ctx, module, call, f"{last_name(call.func)}({module.text[module.span(arg).start:module.span(arg).end]}) "
                   "gives every data-parallel rank the same seed, so every GPU draws the same dropout masks; "
                   "re-seed with seed + rank once the model is built (weights must stay identical)", key="seed")


def _generator_names(module) -> set:
    """Names bound to a `torch.Generator(...)` anywhere in the module."""
    found = set()
    for node in module.index.of(ast.Assign):
        if isinstance(node.value, ast.Call) and last_name(node.value.func) == "Generator":
            found.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return found


def _local_generator(call, generators: set) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    receiver = func.value
    if isinstance(receiver, ast.Call):
        return last_name(receiver.func) == "Generator"
    if isinstance(receiver, ast.Name):
        return receiver.id in generators
    if isinstance(receiver, ast.Attribute):
        return receiver.attr in generators or "generator" in receiver.attr.lower()
    return False


def _rank_offset(module, call, arg) -> bool:
    """The seed mentions the rank, or is a name last assigned from an expression that does (mae's
    `seed = args.seed + misc.get_rank()` on the line before): the fix this rule asks for (#31)."""
    exprs = [arg]
    if isinstance(arg, ast.Name):
        scope = next((a for a in module.ancestors(call) if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef))),
                     module.tree)
        exprs += [n.value for n in ast.walk(scope) if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign))
                  and n.value is not None and getattr(n.value, "lineno", 0) <= call.lineno
                  and any(isinstance(t, ast.Name) and t.id == arg.id
                          for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))]
    for expr in exprs:
        names = [n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(expr)
                 if isinstance(n, (ast.Name, ast.Attribute))]
        if any(RANKISH.search(n) for n in names) or any(isinstance(n, ast.Call) for n in ast.walk(expr)):
            return True
    return False


_CPU_RNG = frozenset({"torch.get_rng_state", "torch.set_rng_state", "torch.random.get_rng_state",
                      "torch.random.set_rng_state"})
_DEVICE_RNG = ("cuda.get_rng_state", "cuda.set_rng_state", "get_rng_state_all", "set_rng_state_all", "fork_rng",
               "get_device_states", "set_device_states", "get_state", "xpu.get_rng_state")
_ON_CUDA = re.compile(r"\.cuda\(|[\"']cuda(:\d+)?[\"']|device_map|\.to\(device\)")


@check("rng-sync-cpu-only")
def rng_sync_cpu_only(ctx, rule):
    """Saving and restoring torch's RNG state to replay dropout masks (two forward passes with
    the same masks, a manual recompute) covers only the CPU generator: a model on CUDA draws its
    masks from torch.cuda's generator, which is never restored (#31; torch.utils.checkpoint keeps
    both, see get_device_states)."""
    module = python_module_of(ctx)
    if module is None or "rng_state" not in module.text or not _ON_CUDA.search(module.text):
        return
    if any(mark in module.text for mark in _DEVICE_RNG) or not _uses_dropout(ctx.source, module):
        return
    calls = [c for c in module.calls() if dotted(c.func) in _CPU_RNG]
    restores = [c for c in calls if dotted(c.func).endswith("set_rng_state")]
    if not restores or len(restores) == len(calls):
        return  # a replay saves and restores; a lone restore may load a checkpoint's state
    call = restores[0]
    yield hit(ctx, module, call, f"{dotted(call.func)}() restores only the CPU generator, but this code runs "
              "on CUDA, whose dropout masks come from torch.cuda's generator: save and restore "
              "torch.cuda.get_rng_state() as well (or use torch.random.fork_rng(devices=...))", key="rng_state")


@check("preference-dropout-on", scope="setup")
def preference_dropout_on(ctx, rule):
    """Preference and RL objectives compare log-probabilities of the same text; dropout makes
    them noisy and inflates KL (trl#744, trl#3500). Which TRL trainers disable it comes from the
    pinned trl (data/trl.json). What the model really has weighs in (#11): a Qwen2 whose only
    rate is attention_dropout 0.0, with no LoRA dropout, has nothing for dropout to disturb."""
    src, module = python_driver(ctx)
    if module is None:
        return
    trainer = src.get("trainer")
    if trainer not in frameworks.PREFERENCE_TRAINERS:
        return
    if not models.training_calls(module):
        return  # builds a trainer (a test, a factory) but never trains
    lora_on = [s for s in src.settings if s.p is not None and 0 < s.p < 1 and s.reason is None]
    explicit = src.fields.get("disable_dropout")
    if explicit is not None:
        if explicit.value is False and (lora_on or _trained_model_dropout(module, ctx.setup) != models.ZERO):
            yield Hit(src.path, explicit.span, f"disable_dropout=False keeps dropout on in {trainer.upper()} training: "
                      "log-probabilities of policy and reference become noisy", key="disable_dropout")
        return
    if frameworks.TRL_DISABLE_DROPOUT_DEFAULT.get(trainer, True):
        return  # disables dropout, or not in the pinned trl (BCO, PPO): nothing is claimed (data/trl.json)
    for s in lora_on:
        yield Hit(src.path, s.value_span, f"{s.key} = {s.raw} stays on in {trainer.upper()} training (its trainer "
                  "does not disable dropout): log-probabilities become noisy; pass disable_dropout=True or use 0.0",
                  key=s.dotted)


def _trained_model_dropout(module, setup) -> str:
    """ZERO/NONZERO/UNKNOWN for the model the script's trainer trains (`XTrainer(model=...)` or
    its first argument): a name through models.known_dropout, a hub id through the identity the
    setup stage resolved for it."""
    for call in module.calls():
        name = last_name(call.func)
        if not name.endswith("Trainer"):
            continue
        model = arg_or_kwarg(call, "model", 0)
        if isinstance(model, ast.Name):
            return models.known_dropout(module, model.id, setup)
        ok, ref = constant(model) if model is not None else (False, None)
        if ok and isinstance(ref, str):
            found = {m.model_type for m in getattr(setup, "models", {}).values() if m.ref == ref and m.model_type}
            if len(found) == 1:
                return models.type_dropout(found.pop(), ())
        return models.UNKNOWN
    return models.UNKNOWN
