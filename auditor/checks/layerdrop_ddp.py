"""Layer drop under DistributedDataParallel that expects every parameter to get a gradient.

A model that skips whole layers at random in training (measured per model type and key, see
auditor/generate/layer_skipping.py) leaves the skipped layers' parameters without a
gradient. DDP with find_unused_parameters=False then fails with "Expected to have finished
reduction in the prior iteration" (speechbrain#2340, transformers#30113). That setting comes
from trainer args, from DDP's own default in code, or from the Trainer's default, which in the
pinned Transformers is `not (model.is_activation_checkpointing or args.activation_checkpointing)`
when ddp_find_unused_parameters is unset (Trainer._build_accelerator_args): gradient
checkpointing turns the search off.

Imports inside functions (`ast`, `checks.architecture`, `knowledge.architectures`,
`knowledge.layer_skipping`, `sources.python_code`, `sources.python_facts`) are deferred for
start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import os
import re

from auditor.checks.base import check, hit_at

_DDP_CLASSES = frozenset({"DistributedDataParallel", "DDP"})
_CHECKPOINTING_KWARGS = ("gradient_checkpointing", "activation_checkpointing")
# ddp_find_unused_parameters unset + checkpointing: Trainer._build_accelerator_args passes False.
_TRAINER_DEFAULT = " makes the Trainer pass find_unused_parameters=False"


@check("layerdrop-ddp", scope="setup")
def layerdrop_ddp(ctx, rule):
    setup = ctx.setup
    evidence = _ddp_expects_every_gradient(setup)
    if evidence is None:
        return
    fallback_type = next((c.get("model_type") for c in setup.of_kind("hf-config")
                          if isinstance(c.get("model_type"), str)), None)
    for _src, s, model_type in _layer_drop_settings(setup, fallback_type):
        what, (path, line), consequence = evidence
        at = os.path.relpath(path, os.path.dirname(s.path) or '.')
        where = f"{what} at {at}:{line}{consequence}" if line is not None else f"{what} for {at}{consequence}"
        yield hit_at(s, f"{s.key} = {s.raw} makes {model_type} skip whole layers at random in training, but DDP "
                        f"expects every parameter to get a gradient ({where}), so multi-GPU training fails "
                        f"('Expected to have finished reduction'). Set {s.key} to 0.0, or let DDP find unused "
                        "parameters (find_unused_parameters=True)")


def _layer_drop_settings(setup, fallback_type):
    """(source, setting, model type in words) for each value > 0 of a key that, for its model
    type, skips whole layers."""
    arch_entries = {}
    for cfg in setup.of_kind("hf-config"):
        try:
            from auditor.checks.architecture import config_entries
        except ImportError:
            return
        for model_type, _info, settings in config_entries(cfg):
            for s in settings:
                arch_entries[id(s)] = model_type
    for src in setup.sources:
        if src.dialect == "fairseq":
            yield from _fairseq_layer_drop(src)
            continue
        for s in src.settings:
            if s.role not in ("layerdrop", "stochastic-depth") or not s.p or s.reason is not None or s.p >= 1:
                continue
            from auditor.knowledge import layer_skipping  # here: most setups have no layer drop
            model_type = arch_entries.get(id(s)) or _class_model_type(s) or (
                fallback_type if src.kind != "hf-config" else None)
            if model_type is not None:
                if layer_skipping.skips(model_type, s.key):
                    yield src, s, model_type
            elif src.kind != "hf-config":
                everywhere = layer_skipping.skips_wherever_read(s.key)
                if everywhere:
                    yield src, s, f"every model type that reads {s.key} ({everywhere} measured)"


def _fairseq_layer_drop(src):
    """fairseq's LayerDropModuleList skips whole layers in training (frameworks.json "fairseq")."""
    from auditor.knowledge import frameworks

    keys = frameworks.profile("fairseq").get("layer_drop_keys", ())
    for s in src.settings:
        if s.key in keys and s.p and s.reason is None and s.p < 1:
            yield src, s, "fairseq's transformer (LayerDropModuleList)"


def _class_model_type(setting) -> str | None:
    """Wav2Vec2ForCTC.from_pretrained(..., layerdrop=0.1) -> wav2vec2, when that names a known type."""
    if setting.origin != "code" and not setting.path.endswith(".py"):
        return None
    owner = str(setting.key_path[0]).split(".")[0] if setting.key_path else ""
    prefix = re.split(r"For[A-Z]|Model\b|Config\b", owner)[0].lower()
    if not prefix or prefix.startswith("auto"):
        return None
    from auditor.knowledge import architectures

    squashed = {t.replace("-", "").replace("_", ""): t for t in architectures.model_types()}
    return squashed.get(prefix)


def _ddp_expects_every_gradient(setup):
    """(what, (path, line), consequence) for the first setting in the setup that makes DDP expect a gradient
    for every parameter, or None (also None when anything asks DDP to find unused ones)."""
    found = []
    for src in setup.sources:
        if src.kind == "recipe":
            found.extend(_from_trainer_fields(src))
        elif src.kind == "python":
            found.extend(_from_code(src))
    if any(f is None for f in found):
        return None
    return found[0] if found else None


def _from_trainer_fields(src):
    if src.dialect == "fairseq":
        yield from _fairseq_ddp(src)
        return
    unused = src.fields.get("ddp_find_unused_parameters")
    checkpointing = src.fields.get("gradient_checkpointing")
    if unused is not None:
        if unused.value is False:
            yield "ddp_find_unused_parameters: false", (src.path, unused.span.line), ""
        elif unused.value is True:
            yield None
    elif checkpointing is not None and checkpointing.value is True:
        written = checkpointing.key_path[-1] if checkpointing.key_path else "gradient_checkpointing"
        yield f"{written}: true", (src.path, checkpointing.span.line), _TRAINER_DEFAULT


def _fairseq_ddp(src):
    """fairseq's own DDP wrapper (fairseq/models/distributed_fairseq_model.py) passes
    distributed_training.find_unused_parameters, which defaults to False, to torch's DDP for
    its default backend (frameworks.json "fairseq"); other backends are not judged."""
    from auditor.knowledge import frameworks

    defaults = frameworks.profile("fairseq").get("ddp_defaults", {})
    backend = src.fields.get("ddp_backend")
    if backend is not None and str(backend.value) not in defaults.get("backends_with_the_flag", ()):
        yield None  # another wrapper (legacy_ddp, fully_sharded, ...): nothing is claimed
        return
    unused = src.fields.get("ddp_find_unused_parameters")
    if unused is not None:
        if unused.value is False:
            yield "distributed_training.find_unused_parameters: false", (src.path, unused.span.line), ""
        elif unused.value is True:
            yield None
        return
    if defaults.get("find_unused_parameters") is False:
        yield ("fairseq's default distributed_training.find_unused_parameters (False, "
               "fairseq/dataclass/configs.py)"), (src.path, None), ""


def _from_code(src):
    from auditor.sources.python_code import TRAINING_ARGS, get_module
    from auditor.sources.python_facts import kwarg, last_name

    module = get_module(src)
    if module is None:
        return
    checkpointing_call = trainer = None
    explicit = False
    idx = module.index
    read = {name for name in idx.calls_by_name if name in _DDP_CLASSES or name in TRAINING_ARGS or name.endswith("Trainer")
            or name in ("DistributedDataParallelKwargs", "gradient_checkpointing_enable")}
    for call in idx.calls_named(read) if read else ():
        name = last_name(call.func)
        if name in _DDP_CLASSES or name == "DistributedDataParallelKwargs":
            kw = kwarg(call, "find_unused_parameters")
            value = _literal(kw)
            if value is True or (kw is not None and value is None):
                yield None  # True, or a value decided at run time
            elif name in _DDP_CLASSES:
                if kw is not None:
                    yield f"{name}(..., find_unused_parameters=False)", (src.path, call.lineno), ""
                else:
                    yield f"{name}(...)", (src.path, call.lineno), " leaves find_unused_parameters at its default, False"
            elif value is False:
                yield f"{name}(find_unused_parameters=False)", (src.path, call.lineno), ""
        elif name in TRAINING_ARGS:
            kw = kwarg(call, "ddp_find_unused_parameters")
            value = _literal(kw)
            if kw is not None:
                explicit = True
                if value is False:
                    yield f"{name}(ddp_find_unused_parameters=False)", (src.path, call.lineno), ""
                else:
                    yield None
            elif any(_literal(kwarg(call, k)) is True for k in _CHECKPOINTING_KWARGS):
                yield f"{name}(gradient_checkpointing=True)", (src.path, call.lineno), _TRAINER_DEFAULT
        elif name == "gradient_checkpointing_enable":
            checkpointing_call = checkpointing_call or call
        elif name.endswith("Trainer"):
            trainer = trainer or call
    if checkpointing_call is not None and trainer is not None and not explicit:
        yield "gradient_checkpointing_enable()", (src.path, checkpointing_call.lineno), _TRAINER_DEFAULT


def _literal(kw):
    import ast  # here, not at the top: a check of recipes and configs never parses Python

    if kw is None or not isinstance(kw.value, ast.Constant):
        return None
    return kw.value.value

