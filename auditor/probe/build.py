"""Building the model under test: from a Transformers config (scaled down or full size, random
weights, never downloaded) plus an optional PEFT adapter, or from the user's own factory.

Scaling keeps what decides where dropout runs (model type, dropout keys, attention
implementation, head class) and shrinks what only costs time (layers, width, vocabulary).
`Subject` bundles the model with its synthetic batch and how to get a loss and a comparable
output from it, so the checks need not know where the model came from.

Imports inside functions (`knowledge.architectures`, `peft`, `probe.fullsize`, `transformers`)
are deferred for start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from auditor.probe import complete, rng
from auditor.probe.batch import (
    BATCH,
    SEQ_LEN,
    first_tensor,
    forward_params,
    hf_batch,
    loss_of,
    text_config_of,
    to_device,
)
from auditor.probe.errors import BuildError
from auditor.probe.shrink import fill_rope_sections, scale_config_dict, text_facing_widths  # noqa: F401  (the one scaler; re-exported)

_DROP = ("transformers_version", "torch_dtype", "dtype", "auto_map", "quantization_config", "_name_or_path")


@dataclass
class Subject:
    """The model under test and how to drive it."""

    model: nn.Module
    args: tuple
    kwargs: dict
    loss_fn: Callable[[Any], torch.Tensor]
    output_fn: Callable[[Any], torch.Tensor]
    origin: str                      # "config" or "factory"
    description: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    attn_implementation: str = ""

    def forward(self):
        return self.model(*self.args, **self.kwargs)


# --- Transformers configs ---------------------------------------------------------------

def _set_nested(d: dict, key_path: tuple, value) -> None:
    for k in key_path[:-1]:
        d = d.setdefault(k, {})
    d[key_path[-1]] = value


def config_object(cfg: dict, trust_remote_code: bool, config_dir: str):
    import transformers
    from transformers import AutoConfig

    d = {k: v for k, v in cfg.items() if k not in _DROP}
    attn = d.pop("_attn_implementation", None) or d.pop("attn_implementation", None)
    if trust_remote_code and "auto_map" in cfg:
        base = AutoConfig.from_pretrained(config_dir, trust_remote_code=True, local_files_only=True)
        obj = base.__class__.from_dict({**base.to_dict(), **d})
    else:
        if "auto_map" in cfg and not trust_remote_code:
            pass  # remote code is not run; the built-in class for model_type is used instead
        model_type = d.pop("model_type")
        try:
            cls = transformers.CONFIG_MAPPING[model_type]
        except KeyError:
            hint = " (it ships its own code: --trust-remote-code runs it)" if "auto_map" in cfg else ""
            raise BuildError(f"model_type {model_type!r} is not known to transformers {transformers.__version__}{hint}") from None
        obj = cls.from_dict(d)
    return obj, attn


def config_defaults(cfg: dict) -> dict:
    """The config class's own default for each top-level key (to tell stock values from choices)."""
    import transformers

    try:
        cls = transformers.CONFIG_MAPPING[cfg.get("model_type")]
        return cls().to_dict()
    except Exception:  # noqa: BLE001  unknown or remote-code config: no defaults known
        return {}


def adapter_defaults(adapter: dict) -> dict:
    try:
        import peft

        cls = peft.mapping.PEFT_TYPE_TO_CONFIG_MAPPING[adapter.get("peft_type")]
        return cls().to_dict()
    except Exception:  # noqa: BLE001  an unknown PEFT type has no defaults to compare with
        return {}


def _config_for_class(cls, config):
    """The causal-LM mapping names a text-only class for some composite types (emu3 ->
    Emu3ForCausalLM, llama4, qwen3_5): that class is built from the composite's text config,
    as loading its checkpoint does, not from the composite (AttributeError: no vocab_size)."""
    wanted = getattr(cls, "config_class", None)
    if not isinstance(wanted, type) or isinstance(config, wanted):
        return config
    text = text_config_of(config)
    return text if isinstance(text, wanted) else config


def _model_class(config, trust_remote_code: bool):
    import transformers

    archs = getattr(config, "architectures", None) or []
    for arch in archs:
        cls = getattr(transformers, arch, None)
        if isinstance(cls, type):
            return cls, arch
    auto = transformers.AutoModel
    for arch in archs:
        for suffix, name in (("ForCausalLM", "AutoModelForCausalLM"), ("ForMaskedLM", "AutoModelForMaskedLM"),
                             ("ForConditionalGeneration", "AutoModelForSeq2SeqLM"),
                             ("ForSequenceClassification", "AutoModelForSequenceClassification"),
                             ("ForTokenClassification", "AutoModelForTokenClassification")):
            if arch.endswith(suffix):
                return getattr(transformers, name), arch
    return auto, "base model"


def build_hf(config: dict, adapter: dict | None, *, full_size: bool, seed: int, device, dtype,
             trust_remote_code: bool = False, config_dir: str = ".", overrides: dict | None = None,
             attn_override: str | None = None, choice: dict | None = None):
    """Build the (optionally PEFT-wrapped) model; overrides maps (which, key_path) -> value
    with which in {"config", "adapter"} (used to switch single keys off for the key map).

    Scaled down, the first layout that builds *and* runs a forward wins (see SCALINGS); `choice`
    remembers it, so every rebuild of one probe (the key map's) has the same structure."""
    choice = {} if choice is None else choice
    if full_size:
        return _build_once(config, adapter, None, seed, device, dtype, trust_remote_code, config_dir,
                           overrides, attn_override)
    if "scaling" in choice:
        model, arch = _build_once(config, adapter, choice["scaling"], seed, device, dtype, trust_remote_code,
                                  config_dir, overrides, attn_override, choice.get("fills", ()))
        model._probe_text_only, model._probe_no_labels = choice["text_only"], choice.get("no_labels", False)
        if choice.get("image_dropped"):
            model._probe_image_dropped = choice["image_dropped"]
        if choice.get("tuple_output"):
            _return_tuples(model)
        return model, arch
    first: Exception | None = None
    fills: set = set()  # keys the default leaves out that its model reads (see probe/complete.py)
    needed = False
    fallback = None  # a layout that ran, but without the image its batch could not place
    image_error: Exception | None = None
    for completing in (False, True):  # completions only where no layout runs without them
        if completing and (not needed or fallback is not None):
            break
        first = None if completing else first  # after completions, report what still fails
        for keep_head_dim, text_only, no_labels in SCALINGS:
            if fallback is not None and text_only:
                continue  # only a layout that also runs the image can beat the fallback
            while True:
                try:
                    model, arch = _build_once(config, adapter, keep_head_dim, seed, device, dtype,
                                              trust_remote_code, config_dir, overrides, attn_override, fills)
                    model._probe_text_only, model._probe_no_labels = text_only, no_labels
                    _trial_forward_or_tuple(model, arch, seed, device)
                except BuildError:
                    raise
                except Exception as exc:  # noqa: BLE001  complete the config, else try the next layout
                    need = complete.wanted(exc)
                    needed = needed or need is not None
                    if completing and need is not None and need not in fills and len(fills) < MAX_COMPLETIONS:
                        fills.add(need)
                        continue
                    first = first or exc  # the first layout's error is the one to report
                    if not text_only and image_error is None:
                        image_error = exc  # why the layouts with the image failed, said if text only runs
                    break
                chosen = dict(scaling=keep_head_dim, text_only=text_only, no_labels=no_labels, fills=set(fills),
                              tuple_output=getattr(model, "_probe_tuple_output", False))
                if getattr(model, "_probe_image_dropped", "") and not text_only:
                    # the image could not be placed in this layout: a later one (per-head sizes
                    # kept: Qwen2-VL's vision rotary) may run the vision tower too
                    fallback = fallback or (model, arch, chosen)
                    break
                if text_only and image_error is not None and not getattr(model, "_probe_image_dropped", ""):
                    why = " ".join(f"{type(image_error).__name__}: {image_error}".split())[:200]
                    model._probe_image_dropped = width_mismatch(config, why) or \
                        f"every layout with the image failed its forward ({why})"
                    chosen["image_dropped"] = model._probe_image_dropped
                choice.update(chosen)
                return model, arch
    if fallback is not None:
        model, arch, chosen = fallback
        choice.update(chosen)
        return model, arch
    raise first


SAME_COUNT = re.compile(r"tokens: (\d+), features: (\d+)")


def width_mismatch(config: dict, error: str = "") -> str:
    """The config's vision tower ends in a width the text model does not have: Transformers'
    own defaults for qwen2_vl, qwen2_5_vl, qwen3_vl, glm_ocr and others pair a 3584-wide merger
    with a 4096- or 8192-wide text model, so no image can enter the text model at full size
    either. Said as the config's fact, not as the probe's failure ("" when widths agree).
    Ovis 2 embeds its image features at its top-level `hidden_size` (1536 in its default, beside
    a 4096-wide text model): said before a probe, or after a failed image when the forward's error
    shows as many image tokens as image features ("tokens: 64, features: 64"), so only their
    width can differ."""
    vision, text = config.get("vision_config"), config.get("text_config")
    if not isinstance(vision, dict) or not isinstance(text, dict):
        try:  # sub-configs left out take the config class's defaults, as Transformers reads them
            from transformers import AutoConfig

            config = AutoConfig.for_model(**config).to_dict()
        except Exception:  # noqa: BLE001  a config Transformers cannot read has nothing to compare
            return ""
        vision, text = config.get("vision_config"), config.get("text_config")
        if not isinstance(vision, dict) or not isinstance(text, dict):
            return ""
    width = text.get("hidden_size")
    counts = SAME_COUNT.search(error)
    for path, out in text_facing_widths(config):
        if not isinstance(width, int) or out == width:
            continue
        if path != ("hidden_size",):
            return (f"its config's vision tower outputs {'.'.join(path)} = {out} features per token, while the "
                    f"text model is text_config.hidden_size = {width} wide: no image can enter the text model, at "
                    f"full size either")
        if not error or counts and counts.group(1) == counts.group(2):
            return (f"its config embeds image features at hidden_size = {out}, while the text model is "
                    f"text_config.hidden_size = {width} wide: no image can enter the text model, at full size either")
    return ""


MAX_COMPLETIONS = 4  # keys completed for one config at most (each costs a rebuild)

# Layouts tried in order: (keep per-head sizes, text only, no labels). Scaling per-head sizes
# keeps models tiny; modeling code that hard-codes per-head splits needs them kept; a multimodal
# model whose image inputs cannot be synthesized still runs its language model (and its dropout)
# on text; a head whose labels have a layout of their own (MusicGen's (batch, seq, codebooks),
# GIT's text after the image) runs without labels, its loss taken from the output.
SCALINGS = ((False, False, False), (True, False, False), (False, True, False), (True, True, False),
            (False, False, True), (True, False, True))


def _trial_forward(model, arch: str, seed: int, device) -> None:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            loss_of(model(**hf_batch(model, arch, seed, device)))
    finally:
        model.train(was_training)


OUTPUT_CLASS_ERROR = re.compile(r"'\w*Output\w*' object has no attribute")


def _trial_forward_or_tuple(model, arch: str, seed: int, device) -> None:
    """A forward that fails while assembling its output object (Llama 4's image-text class reads
    `image_outputs` from its language model's output, which has none, so in Transformers 5.24 it
    cannot return a dict at all) runs through the forward's tuple path: the same computation,
    returned as Transformers' tuple, (loss, logits, ...) (see `loss_of`)."""
    try:
        _trial_forward(model, arch, seed, device)
    except AttributeError as exc:
        if not OUTPUT_CLASS_ERROR.search(str(exc)) or "return_dict" not in forward_params(model):
            raise
        _return_tuples(model)
        _trial_forward(model, arch, seed, device)


def _return_tuples(model) -> None:
    """The body of such a forward takes its tuple path when the config says `return_dict=False`
    (Transformers' output-capturing wrapper takes a `return_dict` argument away from the body);
    the call then passes `return_dict=True` (see `hf_batch`), or the wrapper would convert the
    body's tuple a second time (AttributeError: 'tuple' object has no attribute 'to_tuple')."""
    model.config.return_dict = False
    model._probe_tuple_output = True


def _build_once(config, adapter, keep_head_dim, seed, device, dtype, trust_remote_code, config_dir,
                overrides, attn_override, fills=()):
    cfg = copy.deepcopy(config)
    ad = copy.deepcopy(adapter) if adapter else None
    for (which, key_path), value in (overrides or {}).items():
        _set_nested(cfg if which == "config" else ad, key_path, value)
    obj, attn = config_object(cfg, trust_remote_code, config_dir)
    completed: list[str] = []
    if keep_head_dim is not None:
        # scale the complete dict (defaults included), not only the keys the file spells out
        full = obj.to_dict()
        full.setdefault("model_type", cfg.get("model_type"))
        completed = complete.complete(full, obj, set(fills)) if fills else []
        small = scale_config_dict(full, keep_head_dim=keep_head_dim)
        completed += complete.after_scaling(small, set(fills)) if fills else []
        _fill_rope_sections(small, type(obj))
        obj, _ = config_object(small, trust_remote_code, config_dir)
    attn = attn_override or attn
    cls, arch = _model_class(obj, trust_remote_code)
    obj = _config_for_class(cls, obj)
    if getattr(obj, "pad_token_id", None) is None and arch.endswith("ForSequenceClassification"):
        obj.pad_token_id = 0
    kwargs = {"trust_remote_code": True} if trust_remote_code and cls.__name__.startswith("Auto") else {}
    if attn:
        kwargs["attn_implementation"] = attn
    rng.seed_all(seed)
    try:
        # allocate on the target device in the target dtype: a 1B model built in fp32 on the
        # host first would cost minutes and 5 GB before reaching the GPU
        with torch.device(device):
            if cls.__name__.startswith("Auto"):
                model = cls.from_config(obj, dtype=dtype, **kwargs)
            else:
                model = cls._from_config(obj, dtype=dtype, **kwargs)
    except ImportError as exc:
        raise BuildError(missing_package(arch, exc)) from None
    model.to(device=device, dtype=dtype)
    model._probe_completed = completed
    if ad is not None:
        model = _add_adapter(model, ad)
    return model, arch


# Config classes whose sections run (height, width, time) instead of Qwen2-VL's (time, height,
# width). Ernie 4.5 VL interleaves the height and width frequencies pairwise, so those two must
# be equal (modeling_ernie4_5_vl_moe.py, `recomposition_frequencies`; its fallback is [22, 22, 20]).
HEIGHT_WIDTH_TIME_SECTIONS = frozenset({"ernie4_5_vl_moe_text"})


def _fill_rope_sections(d: dict, config_cls) -> None:
    """Fill `mrope_section` wherever the config class (or a sub-config class) declares it a key of
    its RoPE (`ignore_keys_at_rope_validation`); see shrink.fill_rope_sections, which writes
    (time, height, width) with height == width; reordered for the classes above."""
    if "mrope_section" in (getattr(config_cls, "ignore_keys_at_rope_validation", None) or ()):
        rope = d.get("rope_parameters")
        written = isinstance(rope, dict) and rope.get("mrope_section") is not None
        fill_rope_sections(d)
        if not written and getattr(config_cls, "model_type", None) in HEIGHT_WIDTH_TIME_SECTIONS \
                and isinstance(rope, dict) and rope.get("mrope_section"):
            time, height, width = rope["mrope_section"]
            rope["mrope_section"] = [height, width, time]
    import transformers

    for key, sub_cls in (getattr(config_cls, "sub_configs", None) or {}).items():
        sub = d.get(key)
        if not isinstance(sub, dict):
            continue
        if sub.get("model_type") in transformers.CONFIG_MAPPING:  # AutoConfig slots (glm46v)
            sub_cls = transformers.CONFIG_MAPPING[sub["model_type"]]
        if isinstance(sub_cls, type):
            _fill_rope_sections(sub, sub_cls)


def missing_package(arch: str, exc: ImportError) -> str:
    """One line naming the package a model class needs (Gemma 3n's and FastVLM's timm tower
    need PIL), instead of Transformers' paragraph of install advice."""
    found = re.search(r"requires the (\S+) library", str(exc)) or re.search(r"No module named '([\w.]+)'", str(exc))
    if found:
        return f"{arch} needs the {found.group(1)} package, which is not installed here"
    return f"could not build {arch} from the config: {' '.join(str(exc).split())}"


def _add_adapter(model, adapter: dict):
    try:
        import peft
    except ImportError:
        raise BuildError("an adapter needs peft: pip install 'dropout-auditor[probe]'") from None
    d = {k: v for k, v in adapter.items() if k not in ("base_model_name_or_path", "revision", "auto_mapping")}
    d["inference_mode"] = False  # the probe examines training, so the adapter must train
    try:
        config = peft.get_peft_config(d)
        return peft.get_peft_model(model, config)
    except (ValueError, TypeError, KeyError) as exc:
        raise BuildError(f"could not apply the adapter: {exc}") from None


def refusal(model_type: str, exc: BaseException) -> str | None:
    """One line for a config no model class takes on its own (a sub-config such as a vision
    tower): name the model types that embed it, instead of Transformers' list of every type.
    Or for a config that leaves a key None that its model needs (see `unset_key`)."""
    if "ValidationError" in type(exc).__name__ and exc.__cause__ is not None:  # huggingface_hub @strict
        return f"config validation failed: {' '.join(str(exc.__cause__).split())}"
    if "Unrecognized configuration class" not in str(exc) and "Model type should be one of" not in str(exc):
        return unset_key(exc)
    from auditor.knowledge import architectures

    parents = sorted(t for t in architectures.model_types()
                     if model_type in (architectures.lookup(t).sub_configs or {}).values())
    if not parents:
        return f"no model class takes a {model_type} config on its own"
    shown = ", ".join(parents[:3]) + (f" (+{len(parents) - 3})" if len(parents) > 3 else "")
    return f"{model_type} is a sub-config with no model class of its own; probe its parent ({shown})"


def full_size_refusal(exc: BaseException, config: dict, trust_remote_code: bool = False,
                      config_dir: str = ".") -> str | None:
    """For a module that rejects the scaled config and the full-size one alike (see
    probe/fullsize.py): the refusal quotes the full-size failure."""
    from auditor.probe import fullsize

    try:
        obj, _ = config_object(copy.deepcopy(config), trust_remote_code, config_dir)
        found = fullsize.same_failure(exc, obj)
    except Exception:  # noqa: BLE001  no second opinion: the scaled failure is reported as it is
        return None
    return f"its config cannot build its own model at full size either: {found}" if found else None


def unset_key(exc: BaseException) -> str | None:
    """A key the config leaves unset that its model reads (see complete.unset_read), said as
    the user's fix."""
    found = complete.unset_read(exc)
    if found is None:
        return None
    owner, key, where, empty = found
    state = "empty" if empty else "unset (None)"
    return f"its config leaves {key} {state} and {type(owner).__name__}'s model reads it ({where}); write {key} in config.json"


# --- user factories -------------------------------------------------------------------

def load_factory(spec: str) -> Callable:
    """Import `file.py:function` and return the function. This runs the user's code."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise BuildError(f"--factory expects file.py:function, got {spec!r}")
    if not os.path.isfile(path):
        raise BuildError(f"--factory: no such file {path}")
    mod_name = "_dropout_audit_factory_" + os.path.splitext(os.path.basename(path))[0]
    spec_obj = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec_obj)
    sys.modules[mod_name] = module
    spec_obj.loader.exec_module(module)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise BuildError(f"--factory: {path} has no function {name!r}")
    return fn


def _default_inputs(model: nn.Module, seed: int, device) -> tuple:
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, nn.Embedding):
            return (torch.randint(0, m.num_embeddings, (BATCH, SEQ_LEN), generator=g).to(device),)
        if isinstance(m, nn.Linear):
            return (torch.randn(BATCH * 4, m.in_features, generator=g).to(device),)
        if isinstance(m, nn.Conv1d):
            return (torch.randn(BATCH, m.in_channels, 64, generator=g).to(device),)
        if isinstance(m, nn.Conv2d):
            return (torch.randn(BATCH, m.in_channels, 16, 16, generator=g).to(device),)
    raise BuildError("cannot guess inputs for this model: return (model, example_inputs) from the factory")


def subject_from_factory(fn: Callable, *, seed: int, device, description: str) -> Subject:
    rng.seed_all(seed)
    made = fn()
    example = None
    if isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], nn.Module):
        made, example = made
    if not isinstance(made, nn.Module):
        raise BuildError(f"--factory must return an nn.Module or (module, example_inputs), got {type(made).__name__}")
    model = made.to(device)
    if example is None:
        args, kwargs = _default_inputs(model, seed, device), {}
    elif isinstance(example, dict):
        args, kwargs = (), to_device(example, device)
    elif isinstance(example, (tuple, list)):
        args, kwargs = tuple(to_device(v, device) for v in example), {}
    else:
        args, kwargs = (to_device(example, device),), {}
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    return Subject(model, args, kwargs, loss_of, first_tensor, "factory", description, torch.device(device), dtype)


def subject_from_hf(model, arch: str, *, seed: int, device, dtype, description: str) -> Subject:
    kw = hf_batch(model, arch, seed, device)
    attn = getattr(getattr(model, "config", None), "_attn_implementation", "") or ""
    return Subject(model, (), kw, loss_of, first_tensor, "config", description, torch.device(device), dtype, attn)
