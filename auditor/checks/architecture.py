"""Checks that need to know the architecture or PEFT method: keys that nothing reads, types a
config class rejects, fields a PEFT method does not have, and backends that reject dropout.

All knowledge comes from `auditor.knowledge` (generated from the pinned Transformers and PEFT),
loaded only when a config.json or adapter_config.json is actually checked.

Imports inside functions (`core.model`, `knowledge.architectures`, `knowledge.peft_methods`) are
deferred for start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import re

from auditor.checks.base import Hit, check, hit_at
from auditor.core.lazy_regex import LazyRegex

# Model families whose dropout is a float attribute passed to F.dropout / SDPA, not an
# nn.Dropout module: TRL's disable_dropout_in_model (which only sets nn.Dropout.p = 0) leaves
# it on (facts.md "Where dropout runs", "Trainers").
FUNCTIONAL_ATTENTION = frozenset({
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3_text",
    "deepseek_v2", "deepseek_v3", "gpt_oss", "phi", "phi3", "bart", "whisper", "opt", "starcoder2", "granite",
})
# Rates besides attention dropout that these families apply with nn.functional.dropout(p=self.<attr>)
# from a float attribute (transformers 5.24.0: modeling_starcoder2.py residual_dropout at lines 66
# and 199, embedding_dropout at 368; bart/whisper/opt `dropout` and bart/whisper
# `activation_dropout` likewise); tests/test_code_everyday.py re-reads them from the installed
# source. TRL's disable_dropout leaves them on too (#26).
FUNCTIONAL_OTHER = {
    "starcoder2": ("residual_dropout", "embedding_dropout"),
    "bart": ("dropout", "activation_dropout"),
    "whisper": ("dropout", "activation_dropout"),
    "opt": ("dropout",),
}
EMBEDDING_MODULES = LazyRegex(r"(^|\.)(embed_tokens|wte|word_embeddings|embed_in|tok_embeddings|shared|embeddings)$")


def _arch():
    from auditor.knowledge import architectures

    return architectures


def _model_type(src):
    value = src.get("model_type")
    return value if isinstance(value, str) else None


def _default_of(info, key):
    k = info.keys.get(key)
    return None if k is None else k.default


def at_default(setting, default) -> bool:
    if setting.p is None or isinstance(default, bool) or not isinstance(default, (int, float)):
        return setting.reason == "null" and default is None
    return abs(setting.p - float(default)) < 1e-12


def head_reads(info, key: str, architectures) -> bool:
    """A key no config declares can still be read by a head (token classification reads
    classifier_dropout, else hidden_dropout). It counts as read when a head that reads it is in
    use, when config.json does not say which heads are used, or when the reader is a module
    every class builds rather than a head (issue #13.2: the answer used to be "read" before
    `architectures` was looked at)."""
    readers = _head_readers(info, key)
    if readers is None:
        return False
    return not architectures or any(not _is_head(r) or r in architectures for r in readers)


def _head_readers(info, key: str):
    """The classes that read an undeclared key (from the structured `read_by` list when the
    table has one, else from the note "Head: key, else ..."), or None when no class does."""
    readers = []
    for undeclared, entry in info.read_undeclared.items():
        by = entry.get("read_by") if isinstance(entry, dict) else None
        note = entry.get("note", "") if isinstance(entry, dict) else str(entry)
        if key != undeclared and not re.search(rf"\b{re.escape(key)}\b", note):
            continue
        readers.extend(by if by else [note.split(":", 1)[0].strip()])
    return readers or None


def _heads_skip_declared(info, declared, architectures) -> bool:
    """A declared key that only some classes read (bert's classifier_dropout: the sequence,
    token and multiple-choice heads) is a no-op when every class `architectures` lists was
    measured (it reads some other key of this type) and none of them reads this one."""
    read_by = set(getattr(declared, "read_by", ()) or ())
    if not architectures or not read_by or declared.read != "read":
        return False
    measured = set().union(*(getattr(k, "read_by", ()) or () for k in info.keys.values()))
    return all(a in measured and a not in read_by for a in architectures)


def _is_head(name: str) -> bool:
    """A class that can appear in `architectures` (LlamaForTokenClassification,
    GPT2DoubleHeadsModel); an encoder or layer class is built by every head."""
    return "For" in name or name.endswith("Model")


def config_entries(src):
    """(model type, settings directly in that config) for the top level and each nested
    sub-config dict (text_config: {...}) of a config.json."""
    arch = _arch()
    top = _model_type(src)
    if top is None:
        return
    info = arch.lookup(top)
    by_parent = {}
    for s in src.settings:
        by_parent.setdefault(s.key_path[:-1], []).append(s)
    yield top, info, by_parent.pop((), [])
    if info is None:
        return
    for parent, settings in by_parent.items():
        if len(parent) == 1 and parent[0] in info.sub_configs:
            sub_type = info.sub_configs[parent[0]]
            yield sub_type, arch.lookup(sub_type), settings


# Recipe keys whose mapping is applied to the model's config (axolotl: overrides_of_model_config,
# formerly model_config): the architecture rules judge them against the resolved model.
MODEL_CONFIG_OVERRIDES = frozenset({"overrides_of_model_config", "model_config"})


def _override_settings(setup):
    driver = setup.driver
    if driver is None or driver.dialect != "axolotl":
        return []
    return [s for s in driver.settings if len(s.key_path) == 2 and s.key_path[0] in MODEL_CONFIG_OVERRIDES]


def _setup_entries(setup):
    """(src, model type, info, settings, architectures) for each config.json of the setup and
    for the recipe's model-config overrides, judged against the model the setup trains."""
    for src in setup.of_kind("hf-config"):
        architectures = src.get("architectures") or []
        architectures = [architectures] if isinstance(architectures, str) else [a for a in architectures if isinstance(a, str)]
        for model_type, info, settings in config_entries(src):
            yield src, model_type, info, settings, architectures, model_type
    overrides = _override_settings(setup)
    model = setup.model
    if overrides and model is not None and model.model_type:
        label = f"{model.model_type} ({model.ref}, from {model.source.replace('-', ' ')})"
        yield (setup.driver, model.model_type, _arch().lookup(model.model_type), overrides,
               list(model.architectures), label)


@check("arch-unread-key", scope="setup")
def arch_unread_key(ctx, rule):
    """Params: mode = undeclared | declared-unread | composite."""
    mode = rule.params.get("mode", "undeclared")
    arch = _arch()
    for src, model_type, info, settings, architectures, label in _setup_entries(ctx.setup):
        if info is None:
            continue
        for s in settings:
            key = s.key
            if key in info.aliases:
                continue
            declared = info.keys.get(key)
            if declared is not None:
                if mode == "declared-unread" and declared.read == "unread" and not at_default(s, declared.default) \
                        and s.p:
                    why = f" ({declared.note})" if declared.note else ""
                    yield hit_at(s, f"{key} = {s.raw} has no effect: {label} declares it but no module "
                                    f"reads it{why}")
                elif mode == "declared-unread" and s.p and not at_default(s, declared.default) \
                        and _heads_skip_declared(info, declared, architectures):
                    yield hit_at(s, f"{key} = {s.raw} has no effect here: only {', '.join(declared.read_by)} read "
                                    f"{key}, and architectures lists {', '.join(architectures)} (it acts only if "
                                    "the model is loaded with one of those)")
                continue
            if head_reads(info, key, architectures) or not s.p:
                continue
            sub_readers = [name for name, sub in info.sub_configs.items()
                           if (arch.lookup(sub) and key in arch.lookup(sub).keys)]
            if info.is_composite and sub_readers:
                if mode == "composite":
                    yield hit_at(s, f"{key} = {s.raw} at the top level of a {label} config reaches no "
                                    f"sub-config; set it inside {', '.join(sub_readers)}")
                continue
            readers = _head_readers(info, key)
            if readers:
                if mode == "undeclared":
                    heads = ", ".join(readers)
                    yield hit_at(s, f"{key} = {s.raw} has no effect here: only {heads} reads {key}, and architectures "
                                    f"lists {', '.join(map(str, architectures))} (it acts only if the model is loaded "
                                    "with that head)")
                continue
            if mode == "undeclared":
                hint = arch.suggest(model_type, key)
                tail = f"; did you mean {hint}?" if hint else ""
                fix = _rename_fix(src, s, hint, settings) if hint else None
                yield hit_at(s, f"{key} = {s.raw} has no effect: {label} does not read {key}{tail}", fix)


def _rename_fix(src, setting, new_key: str, siblings):
    """Rename the key to the one the architecture reads, keeping its quoting. Unsafe: the value
    starts to act (0.1 attention dropout where there was none), and only when the mapping does
    not already have the new key, since two spellings would then disagree."""
    from auditor.core.model import Edit, Fix

    if any(other.key == new_key for other in siblings):
        return None
    span = setting.key_span
    written = src.text[span.start:span.end]
    quote = written[0] if written[:1] in ("'", '"') else ""
    return Fix(f"rename {setting.key} to {new_key}", (Edit(span.start, span.end, f"{quote}{new_key}{quote}"),),
               "unsafe")


@check("arch-type-rejected", scope="setup")
def arch_type_rejected(ctx, rule):
    """Transformers 5 configs are strict dataclasses: an int where a field is float-only, a
    float where it is int-only, or null where None is not allowed fails when loading."""
    names = {"int": int, "float": float}
    for _src, _model_type, info, settings, _archs, _label in _setup_entries(ctx.setup):
        if info is None:
            continue
        for s in settings:
            declared = info.keys.get(s.key)
            if declared is None or not declared.types:
                continue
            value = s.value
            kind = ("NoneType" if value is None else "bool" if isinstance(value, bool)
                    else type(value).__name__ if type(value) in names.values() else None)
            if kind is None or kind in declared.types or kind == "bool":
                continue
            wanted = " or ".join(t.replace("NoneType", "null") for t in declared.types)
            yield hit_at(s, f"{s.key} = {s.raw} is {kind.replace('NoneType', 'null')}, but {info.config_class} "
                            f"declares {wanted}: loading this config.json fails")


@check("arch-unknown-model-type")
def arch_unknown_model_type(ctx, rule):
    src = ctx.source
    model_type = _model_type(src)
    if src.kind != "hf-config" or model_type is None or _arch().lookup(model_type) is not None:
        return
    if any(code == "DRP003" for code, _, _ in src.problems):
        return  # custom code (auto_map) is already reported once, with the reason
    field = src.fields["model_type"]
    yield Hit(src.path, field.span, f"model_type '{model_type}' is not in Transformers "
                                    f"{_arch().library_version()}; its dropout keys cannot be checked", key="model_type")


@check("peft-method-field")
def peft_method_field(ctx, rule):
    """PEFT drops fields a method does not have (with a warning at load time at best)."""
    src = ctx.source
    if src.kind != "peft-adapter":
        return
    from auditor.knowledge import peft_methods

    peft_type = src.get("peft_type")
    info = peft_methods.lookup(str(peft_type).upper()) if peft_type else None
    if info is None:
        return
    for s in src.settings:
        if len(s.key_path) == 1 and s.key not in info.dropout_fields and s.p:
            have = ", ".join(sorted(info.dropout_fields)) or "no dropout field at all"
            yield hit_at(s, f"{s.key} = {s.raw} has no effect: {peft_type} adapters have {have}")


def _lora_settings(src):
    return [s for s in src.settings if s.role == "lora" and len(s.key_path) == 1 and s.p]


@check("embedding-target")
def embedding_target(ctx, rule):
    """PEFT creates the LoRA dropout for an Embedding target but never calls it (facts.md)."""
    src = ctx.source
    if src.kind != "peft-adapter":
        return
    targets = src.get("target_modules") or []
    if isinstance(targets, str):
        targets = [targets]
    embedded = [t for t in targets if isinstance(t, str) and EMBEDDING_MODULES.search(t)]
    if not embedded:
        return
    for s in _lora_settings(src):
        yield hit_at(s, f"{s.key} = {s.raw} is not applied to the embedding target(s) "
                        f"{', '.join(embedded)}: PEFT's LoRA Embedding layer never calls its dropout")


@check("target-parameters-dropout", scope="setup")
def target_parameters_dropout(ctx, rule):
    """PEFT's ParamWrapper (target_parameters, MoE expert weights) raises for lora_dropout != 0
    (pitfalls #22; axolotl validate_lora_target_parameters_dropout)."""
    for src in ctx.setup.sources:
        params = src.get("target_parameters") or src.get("lora_target_parameters")
        if not params:
            continue
        for s in _lora_settings(src):
            yield hit_at(s, f"{s.key} = {s.raw} with target_parameters: PEFT raises ValueError, "
                            "lora_dropout must be 0 for parameter targets")


def _adapter_call_settings(src):
    """lora_dropout passed in code to the call that builds the adapter
    (`FastLanguageModel.get_peft_model(model, lora_dropout=0.1)`, `LoraConfig(lora_dropout=...)`);
    argparse and dataclass defaults are not counted, since nothing shows they reach the adapter."""
    return [s for s in src.settings if s.origin == "code" and s.role == "lora" and s.p and len(s.key_path) == 2
            and (s.key_path[0].endswith("get_peft_model") or s.key_path[0] == "LoraConfig")]


@check("unsloth-fast-path", scope="setup")
def unsloth_fast_path(ctx, rule):
    """Unsloth patches LoRA layers with fused kernels only when lora_dropout == 0 and bias is
    none (unslothai/unsloth#2076, #2319)."""
    for src in ctx.setup.sources:
        base = str(src.get("base_model") or "")
        uses_unsloth = base.lower().startswith("unsloth/") or bool(src.get("unsloth"))
        if not uses_unsloth:
            continue
        for s in _lora_settings(src) + _adapter_call_settings(src):
            yield hit_at(s, f"{s.key} = {s.raw} turns off Unsloth's fused LoRA fast path "
                            "(it patches layers only with lora_dropout = 0)")


def _flex(src) -> bool:
    impl = src.get("attn_implementation")
    return impl == "flex_attention" or src.get("flex_attention") is True


@check("flex-attention-dropout", scope="setup")
def flex_attention_dropout(ctx, rule):
    """Transformers' flex_attention integration raises for dropout > 0 (unslothai/unsloth#4605,
    meta-pytorch/torchtune#1803)."""
    setup = ctx.setup
    if not any(_flex(s) for s in setup.sources):
        return
    for cfg in setup.of_kind("hf-config"):
        for s in cfg.settings:
            if s.role == "attention" and s.p and len(s.key_path) == 1:
                yield hit_at(s, f"{s.key} = {s.raw} with flex_attention: Transformers raises "
                                "'flex_attention does not support dropout' in training")


@check("functional-dropout-survives-disable", scope="setup")
def functional_dropout_survives_disable(ctx, rule):
    """disable_dropout zeroes nn.Dropout modules only; these families apply attention dropout
    functionally, so preference training still sees stochastic log-probabilities (trl#3500)."""
    plan = ctx.plan
    if not plan.disabled_by:
        return
    setup = ctx.setup
    for cfg in setup.of_kind("hf-config"):
        model_type = _model_type(cfg)
        if model_type not in FUNCTIONAL_ATTENTION:
            continue
        for s in cfg.settings:
            if s.p and len(s.key_path) == 1 and _functional(model_type, s):
                yield hit_at(s, f"{s.key} = {s.raw} stays on under {plan.trainer.upper()} training: "
                                f"disable_dropout only zeroes nn.Dropout modules, and {_applies(model_type)}")
    model = setup.model
    if model is None or model.model_type not in FUNCTIONAL_ATTENTION or setup.of_kind("hf-config"):
        return
    for s in _override_settings(setup):
        if s.p and _functional(model.model_type, s):
            yield hit_at(s, f"{s.key} = {s.raw} stays on under {plan.trainer.upper()} training: "
                            f"disable_dropout only zeroes nn.Dropout modules, and {_applies(model.model_type)}")
    if model.config is not None:  # the model's own config.json (local path or HF cache)
        for s in model.config.settings:
            if s.p and len(s.key_path) == 1 and _functional(model.model_type, s):
                yield Hit(model.path, model.span, f"{model.ref} has {s.key} = {s.raw} ({model.detail}), which "
                          f"stays on under {plan.trainer.upper()} training: disable_dropout only zeroes "
                          f"nn.Dropout modules, and {_applies(model.model_type)}", key="model")


def _functional(model_type: str, setting) -> bool:
    return setting.role == "attention" or setting.key in FUNCTIONAL_OTHER.get(model_type, ())


def _applies(model_type: str) -> str:
    """`starcoder2 applies attention dropout, residual_dropout and embedding_dropout functionally`."""
    others = FUNCTIONAL_OTHER.get(model_type, ())
    if not others:
        return f"{model_type} applies attention dropout functionally"
    return f"{model_type} applies attention dropout, {', '.join(others[:-1])}{' and ' if len(others) > 1 else ''}" \
           f"{others[-1]} functionally"
