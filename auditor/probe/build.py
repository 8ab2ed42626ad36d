"""Building the model under test: from a Transformers config (scaled down or full size, random
weights, never downloaded) plus an optional PEFT adapter, or from the user's own factory.

Scaling keeps what decides where dropout runs (model type, dropout keys, attention
implementation, head class) and shrinks what only costs time (layers, width, vocabulary).
`Subject` bundles the model with its synthetic batch and how to get a loss and a comparable
output from it, so the checks need not know where the model came from.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

SMALL = {"layers": 2, "hidden": 64, "heads": 4, "head_dim": 16, "ffn": 128, "vocab": 512,
         "positions": 1024, "experts": 4}
_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "encoder_layers", "decoder_layers",
               "num_decoder_layers", "num_encoder_layers")
_HIDDEN_KEYS = ("hidden_size", "d_model", "n_embd", "dim", "embed_dim")
_HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads", "encoder_attention_heads", "decoder_attention_heads",
              "n_heads")
_FFN_KEYS = ("intermediate_size", "d_ff", "n_inner", "encoder_ffn_dim", "decoder_ffn_dim", "ffn_dim",
             "moe_intermediate_size", "shared_expert_intermediate_size")
_TOKEN_ID_KEYS = ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id", "sep_token_id",
                  "cls_token_id", "mask_token_id", "unk_token_id")
_DROP = ("transformers_version", "torch_dtype", "dtype", "auto_map", "quantization_config", "_name_or_path")
SEQ_LEN = 32
BATCH = 4


class BuildError(Exception):
    """The model could not be built from what was given (exit 2 with this message)."""


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


def scale_config_dict(cfg: dict) -> dict:
    """A copy of a config.json dict shrunk to a tiny model with the same dropout keys."""
    d = copy.deepcopy(cfg)
    layers_before = None
    for k in _LAYER_KEYS:
        if isinstance(d.get(k), int):
            layers_before = layers_before or d[k]
            d[k] = min(d[k], SMALL["layers"])
    heads_before = None
    for k in _HEAD_KEYS:
        if isinstance(d.get(k), int):
            heads_before = heads_before or d[k]
            d[k] = SMALL["heads"]
    kv = d.get("num_key_value_heads")
    if isinstance(kv, int):
        d["num_key_value_heads"] = SMALL["heads"] if not heads_before or kv >= heads_before else 2
    for k in _HIDDEN_KEYS:
        if isinstance(d.get(k), int):
            d[k] = SMALL["hidden"]
    for k in _FFN_KEYS:
        if isinstance(d.get(k), int):
            d[k] = SMALL["ffn"]
    for k in ("head_dim", "d_kv", "kv_channels"):
        if isinstance(d.get(k), int):
            d[k] = SMALL["head_dim"]
    for k in ("num_experts", "num_local_experts", "n_routed_experts"):
        if isinstance(d.get(k), int):
            d[k] = min(d[k], SMALL["experts"])
    for k in ("num_experts_per_tok", "top_k"):
        if isinstance(d.get(k), int):
            d[k] = min(d[k], 2)
    rotary = any(k in d for k in ("rope_scaling", "rope_parameters", "rope_theta", "rotary_dim"))
    for k in ("max_position_embeddings", "n_positions", "n_ctx"):
        if isinstance(d.get(k), int) and d[k] > SMALL["positions"] and not rotary:
            d[k] = SMALL["positions"]
    if isinstance(d.get("vocab_size"), int) and d["vocab_size"] > SMALL["vocab"]:
        d["vocab_size"] = SMALL["vocab"]
    vocab = d.get("vocab_size", SMALL["vocab"])
    for i, k in enumerate(_TOKEN_ID_KEYS):
        v = d.get(k)
        if isinstance(v, int) and v >= vocab:
            d[k] = min(i, vocab - 1)
        elif isinstance(v, list):
            d[k] = [x if x < vocab else min(i, vocab - 1) for x in v]
    if layers_before:
        for k, v in list(d.items()):
            if isinstance(v, list) and len(v) == layers_before and layers_before > SMALL["layers"]:
                d[k] = v[: SMALL["layers"]]
    for k in ("text_config", "vision_config", "encoder", "decoder"):
        if isinstance(d.get(k), dict):
            d[k] = scale_config_dict(d[k])
    return d


def _config_object(cfg: dict, trust_remote_code: bool, config_dir: str):
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
             attn_override: str | None = None):
    """Build the (optionally PEFT-wrapped) model; overrides maps (which, key_path) -> value
    with which in {"config", "adapter"} (used to switch single keys off for the key map)."""
    cfg = copy.deepcopy(config)
    ad = copy.deepcopy(adapter) if adapter else None
    for (which, key_path), value in (overrides or {}).items():
        _set_nested(cfg if which == "config" else ad, key_path, value)
    obj, attn = _config_object(cfg, trust_remote_code, config_dir)
    if not full_size:
        # scale the complete dict (defaults included), not only the keys the file spells out
        full = obj.to_dict()
        full.setdefault("model_type", cfg.get("model_type"))
        obj, _ = _config_object(scale_config_dict(full), trust_remote_code, config_dir)
    attn = attn_override or attn
    cls, arch = _model_class(obj, trust_remote_code)
    if getattr(obj, "pad_token_id", None) is None and arch.endswith("ForSequenceClassification"):
        obj.pad_token_id = 0
    kwargs = {"trust_remote_code": True} if trust_remote_code and cls.__name__.startswith("Auto") else {}
    if attn:
        kwargs["attn_implementation"] = attn
    torch.manual_seed(seed)
    try:
        # allocate on the target device in the target dtype: a 1B model built in fp32 on the
        # host first would cost minutes and 5 GB before reaching the GPU
        with torch.device(device):
            if cls.__name__.startswith("Auto"):
                model = cls.from_config(obj, dtype=dtype, **kwargs)
            else:
                model = cls._from_config(obj, dtype=dtype, **kwargs)
    except (ValueError, ImportError, TypeError) as exc:
        raise BuildError(f"could not build {arch} from the config: {exc}") from None
    model.to(device=device, dtype=dtype)
    if ad is not None:
        model = _add_adapter(model, ad)
    return model, arch


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


def _first(output) -> torch.Tensor:
    """The tensor to compare between runs: logits when present, else the first tensor."""
    if torch.is_tensor(output):
        return output
    for name in ("logits", "last_hidden_state", "prediction_logits"):
        t = getattr(output, name, None)
        if torch.is_tensor(t):
            return t
    if isinstance(output, dict):
        for v in output.values():
            if torch.is_tensor(v):
                return v
    if isinstance(output, (tuple, list)):
        for v in output:
            t = _first(v) if not torch.is_tensor(v) else v
            if torch.is_tensor(t):
                return t
    if hasattr(output, "to_tuple"):
        return _first(output.to_tuple())
    raise BuildError(f"the model returned no tensor ({type(output).__name__})")


def loss_of(output) -> torch.Tensor:
    """`.loss` when the model computes one, else the mean square of its output."""
    loss = getattr(output, "loss", None)
    if loss is None and isinstance(output, dict):
        loss = output.get("loss")
    if torch.is_tensor(loss):
        return loss
    return _first(output).float().pow(2).mean()


def hf_batch(model, arch: str, seed: int, device, batch: int = BATCH, seq: int = SEQ_LEN) -> dict:
    """A fixed synthetic batch with labels for the head the model has."""
    config = getattr(model, "config", None)
    vocab = int(getattr(config, "vocab_size", 512) or 512)
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(min(3, vocab - 1), vocab, (batch, seq), generator=g)
    kw = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}
    if arch.endswith("ForSequenceClassification"):
        kw["labels"] = torch.randint(0, int(getattr(config, "num_labels", 2)), (batch,), generator=g).to(device)
    elif arch.endswith("ForTokenClassification"):
        kw["labels"] = torch.randint(0, int(getattr(config, "num_labels", 2)), (batch, seq), generator=g).to(device)
    elif arch == "base model":
        pass
    else:
        kw["labels"] = ids.clone().to(device)
    return kw


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


def _to(x, device):
    if torch.is_tensor(x):
        return x.to(device)
    if isinstance(x, tuple):
        return tuple(_to(v, device) for v in x)
    if isinstance(x, list):
        return [_to(v, device) for v in x]
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    return x


def subject_from_factory(fn: Callable, *, seed: int, device, description: str) -> Subject:
    torch.manual_seed(seed)
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
        args, kwargs = (), _to(example, device)
    elif isinstance(example, (tuple, list)):
        args, kwargs = tuple(_to(v, device) for v in example), {}
    else:
        args, kwargs = (_to(example, device),), {}
    dtype = next((p.dtype for p in model.parameters()), torch.float32)
    return Subject(model, args, kwargs, loss_of, _first, "factory", description, torch.device(device), dtype)


def subject_from_hf(model, arch: str, *, seed: int, device, dtype, description: str) -> Subject:
    kw = hf_batch(model, arch, seed, device)
    attn = getattr(getattr(model, "config", None), "_attn_implementation", "") or ""
    return Subject(model, (), kw, loss_of, _first, "config", description, torch.device(device), dtype, attn)
