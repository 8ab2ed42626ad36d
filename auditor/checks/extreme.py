"""Legal values far outside practice for their role (the `extreme` category).

"Far outside practice" has two anchors. The role limits describe fine-tuning pretrained
transformers, so they apply only where the setup fine-tunes one; a from-scratch script's 0.5 is
a design choice (the papers' graph networks use 0.5 and 0.6). And an architecture's own default
is what its pretrained checkpoints ship with (efficientnet's 0.5, mobilenet_v1's 0.999), so a
config.json at that default is not extreme; only a value raised well above it is.

Imports inside functions (`ast`, `checks.architecture`, `sources.python_code`) are deferred for
start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

from auditor.checks.base import check, fmt_p, hit_at
from auditor.knowledge.dropout_keys import is_keep_probability

_ROLE_NAMES = {"lora": "LoRA", "stochastic-depth": "stochastic-depth (drop path)"}

# Calls in a script that load pretrained weights: the script fine-tunes.
_PRETRAINED_CALLS = frozenset({"from_pretrained", "get_peft_model", "hf_hub_download", "snapshot_download"})


@check("too-high")
def too_high(ctx, rule):
    """Params: `max` per role (a value strictly above it fires); `setup`: fine-tune (default)
    or from-scratch, the kind of setup this rule judges; `above_default`: how far above the
    architecture's default a value must be raised to count when that default already exceeds
    the role limit. Values >= 1 are left to the range rule, so one mistake gives one finding."""
    limits = rule.params.get("max", {})
    src = ctx.source
    if not src.settings:
        return  # nothing to judge, so no need to ask whether the file fine-tunes
    if (rule.params.get("setup", "fine-tune") == "fine-tune") != fine_tunes(src):
        return
    own = own_weights_only(src) if src.kind == "python" and fine_tunes(src) else ""  # once per file
    margin = float(rule.params.get("above_default", 0.1))
    defaults = _architecture_defaults(src)
    for s in src.settings:
        limit = limits.get(s.role)
        if limit is None or s.p is None or is_keep_probability(s.key) or s.reason not in (None, "yaml11-string"):
            continue
        model_type, default = defaults.get(id(s), (None, None))
        threshold = float(limit)
        if default is not None and default > threshold:
            threshold = default + margin
        if not threshold < s.p < 1:
            continue
        role = _ROLE_NAMES.get(s.role, s.role)
        if default is not None:
            basis = f"{model_type}'s default is {fmt_p(default)}"
            basis = f"above {limit}; {basis}" if threshold == float(limit) else f"{basis}, raised by more than {margin}"
        else:
            basis = f"above {limit}"
        if own:
            tail = (f"noted only: {own} is this project's own model loading its own weights, and the fine-tuning "
                    f"limits describe pretrained transformers")
        elif fine_tunes(src):
            tail = "fine-tunes rarely gain from it and converge slower"
        else:
            tail = "noted only: the fine-tuning limits do not bind a model trained from scratch"
        found = hit_at(s, f"{s.key} = {s.raw} is high for {role} dropout ({basis}); {tail}")
        if own:
            found.severity = "info"
        yield found


def fine_tunes(src) -> bool:
    """Whether the file configures the fine-tune of a pretrained model. Configs, adapters and
    the recipes of fine-tuning-only frameworks do by construction; any other recipe when a key
    its framework reads says so (pretrained_from: NeMo's init_from_nemo_model, fairseq's
    finetune_from_model, ...) or it names a base model or an adapter; a script when it loads
    pretrained weights (from_pretrained, pretrained=True, a PEFT wrap)."""
    if src.kind in ("hf-config", "peft-adapter"):
        return True
    if src.get("base_model") or src.get("finetune") or src.get("pretrained_from"):
        return True
    if src.kind == "recipe":
        # Frameworks that also train from scratch (NeMo's ASR and TTS recipes, gpt-neox, litgpt
        # pretrain) state a fine-tune with a key (knowledge/data/setup_kinds.json, #25).
        from auditor.knowledge import setup_kinds

        return setup_kinds.by_construction(src.dialect) is not None
    if src.kind == "python":
        from auditor.sources.python_code import get_module

        module = get_module(src)
        if module is None:
            return False
        found = module.cache.get("loads-pretrained")
        if found is None:  # asked per setting and per rule: one scan of the calls per file
            idx = module.index
            found = module.cache["loads-pretrained"] = any(name in idx.calls_by_name for name in _PRETRAINED_CALLS) \
                or any(_loads_pretrained(call) for call in idx.calls if call.keywords)
        return found
    return False


def own_weights_only(src) -> str:
    """The class when every pretrained load of a script is the project's own model class reading
    its own weights: pretrain-gnns' `model.from_pretrained(args.input_model_file)`, whose
    GNN_graphpred.from_pretrained (model.py beside it) is a `load_state_dict`. The role limits
    describe fine-tuning pretrained transformers; a small GNN fine-tuned from its own
    pre-training at its paper's 0.5 is not what they measure, so it is noted, not warned.
    nanoGPT's GPT.from_pretrained, which calls GPT2LMHeadModel.from_pretrained, is a
    transformer's fine-tune; any library loader (a PEFT wrap, pretrained=True) is one too."""
    import ast

    from auditor.checks.code import classes, models
    from auditor.checks.code.common import located
    from auditor.sources.python_code import get_module

    module = located(src, get_module(src))  # its sibling modules are read beside the file
    if module is None:
        return ""
    idx = module.index
    loads = idx.calls_by_name.get("from_pretrained", [])
    if not loads or any(idx.calls_by_name.get(n) for n in _PRETRAINED_CALLS - {"from_pretrained"}) \
            or any(_loads_pretrained(c) for c in idx.calls if c.keywords and c not in loads):
        return ""
    owners = set()
    for call in loads:
        receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
        if isinstance(receiver, ast.Name) and isinstance(built := models.binding(module, receiver.id), ast.Call):
            receiver = built.func  # model = GNN_graphpred(...); model.from_pretrained(file)
        found = classes.module_class(module, receiver) if receiver is not None else None
        method = next((m for m in found[1].body if isinstance(m, ast.FunctionDef) and m.name == "from_pretrained"),
                      None) if found else None
        if method is None or any(isinstance(n, ast.Call) and (_loads_pretrained(n) or (
                isinstance(n.func, ast.Attribute) and n.func.attr in _PRETRAINED_CALLS)) for n in ast.walk(method)):
            return ""
        owners.add(found[1].name)
    return ", ".join(sorted(owners))


def _loads_pretrained(call) -> bool:
    import ast  # here, not at the top: a check of recipes and configs never parses Python

    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name in _PRETRAINED_CALLS:
        return True
    for kw in call.keywords:
        literal = kw.value.value if isinstance(kw.value, ast.Constant) else ...
        if kw.arg == "pretrained" and literal is True:
            return True
        if kw.arg == "weights" and literal not in (None, False, ""):  # torchvision: weights=ResNet50_Weights.DEFAULT
            return True
    return False


def _architecture_defaults(src) -> dict:
    """id(setting) -> (model type, its default) for the dropout keys of a config.json that the
    architecture declares with a numeric default."""
    if src.kind != "hf-config":
        return {}
    try:
        from auditor.checks.architecture import config_entries
    except ImportError:
        return {}
    found = {}
    for model_type, info, settings in config_entries(src):
        if info is None:
            continue
        for s in settings:
            declared = info.keys.get(info.aliases.get(s.key, s.key))
            default = None if declared is None else declared.default
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                found[id(s)] = (model_type, float(default))
    return found
