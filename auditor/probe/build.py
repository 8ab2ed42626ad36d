"""Building the model under test: from a Transformers config (scaled down or full size, random
weights, never downloaded) plus an optional PEFT adapter, or from the user's own factory.

Scaling keeps what decides where dropout runs (model type, dropout keys, attention
implementation, head class) and shrinks what only costs time (layers, width, vocabulary).
`Subject` bundles the model with its synthetic batch and how to get a loss and a comparable
output from it, so the checks need not know where the model came from.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import linecache
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from auditor.probe import complete
from auditor.probe.shrink import fill_rope_sections, scale_config_dict  # noqa: F401  (the one scaler; re-exported)

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


def _config_for_class(cls, config):
    """The causal-LM mapping names a text-only class for some composite types (emu3 ->
    Emu3ForCausalLM, llama4, qwen3_5): that class is built from the composite's text config,
    as loading its checkpoint does, not from the composite (AttributeError: no vocab_size)."""
    wanted = getattr(cls, "config_class", None)
    if not isinstance(wanted, type) or isinstance(config, wanted):
        return config
    text = _text_config(config)
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
        if choice.get("tuple_output"):
            _return_tuples(model)
        return model, arch
    first: Exception | None = None
    fills: set = set()  # keys the default leaves out that its model reads (see probe/complete.py)
    needed = False
    for completing in (False, True):  # completions only where no layout runs without them
        if completing and not needed:
            break
        first = None if completing else first  # after completions, report what still fails
        for keep_head_dim, text_only, no_labels in SCALINGS:
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
                    break
                choice.update(scaling=keep_head_dim, text_only=text_only, no_labels=no_labels, fills=set(fills),
                              tuple_output=getattr(model, "_probe_tuple_output", False))
                return model, arch
    raise first


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
        if not OUTPUT_CLASS_ERROR.search(str(exc)) or "return_dict" not in _forward_params(model):
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
    obj, attn = _config_object(cfg, trust_remote_code, config_dir)
    completed: list[str] = []
    if keep_head_dim is not None:
        # scale the complete dict (defaults included), not only the keys the file spells out
        full = obj.to_dict()
        full.setdefault("model_type", cfg.get("model_type"))
        completed = complete.complete(full, obj, set(fills)) if fills else []
        small = scale_config_dict(full, keep_head_dim=keep_head_dim)
        _fill_rope_sections(small, type(obj))
        obj, _ = _config_object(small, trust_remote_code, config_dir)
    attn = attn_override or attn
    cls, arch = _model_class(obj, trust_remote_code)
    obj = _config_for_class(cls, obj)
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


def first_tensor(output) -> torch.Tensor:
    """The tensor to compare between runs: logits when present, else the first tensor (past the
    loss that leads a Transformers tuple, `(loss,) + output`)."""
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
        for v in output[1:] if len(output) > 1 and _leading_loss(output) is not None else output:
            t = first_tensor(v) if not torch.is_tensor(v) else v
            if torch.is_tensor(t):
                return t
    if hasattr(output, "to_tuple"):
        return first_tensor(output.to_tuple())
    raise BuildError(f"the model returned no tensor ({type(output).__name__})")


def loss_of(output) -> torch.Tensor:
    """`.loss` when the model computes one, else the mean square of its output."""
    loss = getattr(output, "loss", None)
    if loss is None and isinstance(output, dict):
        loss = output.get("loss")
    if torch.is_tensor(loss):
        return loss
    loss = _leading_loss(output)
    return loss if loss is not None else first_tensor(output).float().pow(2).mean()


def _leading_loss(output) -> torch.Tensor | None:
    """With `return_dict=False` a Transformers model given labels returns `(loss,) + output`: a
    tuple whose first item is a 0-dim tensor."""
    if isinstance(output, tuple) and output and torch.is_tensor(output[0]) and output[0].dim() == 0:
        return output[0]
    return None


def hf_batch(model, arch: str, seed: int, device, batch: int = BATCH, seq: int = SEQ_LEN) -> dict:
    """A fixed synthetic batch for the model's main input and signature, with labels for its head:
    token ids; pixel_values at the config's image size and channels; input_values or
    input_features for audio; decoder ids for encoder-decoders; text plus image for multimodal."""
    config = getattr(model, "config", None)
    text = _text_config(config)
    vocab = int(getattr(text, "vocab_size", None) or getattr(config, "vocab_size", None) or 512)
    g = torch.Generator().manual_seed(seed + 1)
    main = getattr(model, "main_input_name", "input_ids")
    if main == "inputs":  # SpeechEncoderDecoderModel: whatever its encoder takes
        encoder = model.get_encoder() if callable(getattr(model, "get_encoder", None)) else None
        main = getattr(encoder, "main_input_name", main)
    params = _forward_params(model)
    kw: dict = {}
    placed = False  # the image's place in the text is already given (no placeholders to count)
    ids = torch.randint(min(3, vocab - 1), vocab, (batch, seq), generator=g)
    required = _required_params(model)
    if main == "input_ids" or "input_ids" in params and (
            main not in ("pixel_values", "input_values", "input_features") or "input_ids" in required
            or main == "pixel_values" and text is not config):  # BLIP-2 / InstructBLIP: image plus text
        kw["input_ids"] = ids
        if "attention_mask" in params:
            kw["attention_mask"] = torch.ones_like(ids)
    streams = _code_streams(model)
    if streams and "input_ids" in kw:
        kw["input_ids"] = _with_code_streams(ids, streams, getattr(config, "audio_pad_token_id", None), g)
    for name in sorted(required):  # a tower's own token ids (InstructBLIP's qformer_input_ids)
        if name.endswith("_input_ids") and name != "decoder_input_ids":
            own = getattr(config, name[: -len("input_ids")] + "config", None)
            own_vocab = int(getattr(own, "vocab_size", None) or vocab)
            kw[name] = torch.randint(min(3, own_vocab - 1), own_vocab, (batch, seq), generator=g)
            mask = name[: -len("input_ids")] + "attention_mask"
            if mask in params:
                kw[mask] = torch.ones_like(kw[name])
    text_only = getattr(model, "_probe_text_only", False)
    if main == "pixel_values" or (main == "input_ids" and "pixel_values" in params and _vision(config)
                                  and not text_only):
        kw["pixel_values"] = _pixels(_vision(config) or _image_encoder(config) or config, batch, g)
        if _features_getter(model)[0] == "video":  # InstructBLIP-Video: (batch, 4 frames, C, H, W)
            kw["pixel_values"] = torch.stack([kw["pixel_values"]] * VIDEO_FRAMES, dim=1)
        if "input_ids" in kw and {"image_attention_mask", "perceiver_embeddings"} <= params:
            placed = _cross_attended_image(kw)
    if main == "state" and _is_policy(config):
        placed = _policy_inputs(model, kw, batch, g)
    if main == "flattened_patches":
        kw["flattened_patches"] = _flattened_patches(_vision(config) or config, batch, g)
    if main == "input_values":
        kw["input_values"] = torch.randn(batch, 4000, generator=g)
    if main == "input_features":
        kw["input_features"] = _features(config, batch, g)
    per_token = getattr(config, "audio_length_per_tok", None)
    if main == "input_ids" and "input_features" in params and isinstance(per_token, int) and per_token > 0:
        kw["input_features"] = _streamed_features(config, seq * per_token, batch, g)
    if "shared_kv_states" in params and isinstance(getattr(config, "backbone_hidden_size", None), int):
        _backbone_states(model, kw, batch, seq, g)
    if "bbox" in params and _needs_boxes(config):
        kw["bbox"] = _token_boxes(batch, seq, g)
    if "lang_ids" in params and getattr(config, "languages", None):  # X-MOD: one language adapter per row
        kw["lang_ids"] = torch.zeros(batch, dtype=torch.long)
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        kw["decoder_input_ids"] = ids[:, : seq // 2].clone()
        _own_encoder_and_channel_ids(model, kw, vocab, batch, seq, g)
    labels = None if getattr(model, "_probe_no_labels", False) else _labels(arch, config, kw, ids, batch, seq, g)
    if labels is not None and "labels" in params:
        kw["labels"] = labels
    if getattr(model, "_probe_tuple_output", False):  # see _return_tuples
        kw["return_dict"] = True
    encoded_image = main == "pixel_values" and getattr(config, "is_encoder_decoder", False)  # no placeholders
    if "pixel_values" in kw and "input_ids" in kw and not encoded_image and not placed:
        _add_image_tokens(model, kw, "pixel_values" in required)
    if "mm_token_type_ids" in params and "input_ids" in kw and "mm_token_type_ids" in _required_in_training(model):
        kw["mm_token_type_ids"] = _modality_types(config, kw)
    return {k: _to(v, device) for k, v in kw.items()}


def _forward_params(model) -> set:
    import inspect

    try:
        return set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return {"input_ids", "attention_mask", "labels"}


def _required_params(model) -> set:
    """Forward parameters without a default: inputs the model cannot run without."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in params if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _text_config(config):
    getter = getattr(config, "get_text_config", None)
    try:
        return getter(decoder=True) if callable(getter) else config
    except Exception:  # noqa: BLE001  some composites cannot name one; the top level will do
        return config


def _vision(config):
    return getattr(config, "vision_config", None)


def _image_encoder(config):
    """VisionEncoderDecoder keeps the image size in its encoder config (scaled with it)."""
    encoder = getattr(config, "encoder", None)
    return encoder if getattr(encoder, "image_size", None) else None


def _pixels(config, batch: int, g) -> torch.Tensor:
    size = getattr(config, "image_size", None) or 224
    if isinstance(size, dict):
        height, width = size.get("height", 224), size.get("width", 224)
    elif isinstance(size, (list, tuple)):
        height, width = size[0], size[-1]
    else:
        height = width = int(size)
    channels = int(getattr(config, "num_channels", None) or 3)
    return torch.randn(batch, channels, height, width, generator=g)


def _code_streams(model) -> tuple[int, int] | None:
    """(codebooks, codebook vocabulary) of a model whose input ids carry, per time step, a text
    token and one audio code per codebook: Kyutai speech-to-text embeds (batch, seq, 1 + codebooks)
    ids through an `audio_tokens_offsets` buffer that starts with the text column's 0."""
    config = getattr(model, "config", None)
    books, book_vocab = getattr(config, "num_codebooks", None), getattr(config, "codebook_vocab_size", None)
    if not isinstance(books, int) or not isinstance(book_vocab, int):
        return None
    for _name, buf in model.named_buffers():
        if _name.endswith("audio_tokens_offsets") and buf.dim() == 1 and len(buf) == books + 1 and buf[0] == 0:
            return books, book_vocab
    return None


def _with_code_streams(ids, streams: tuple[int, int], pad, g) -> torch.Tensor:
    """Codes never equal the audio pad id, which the embedding leaves unshifted (as padding)."""
    books, book_vocab = streams
    codes = torch.randint(0, book_vocab, (*ids.shape, books), generator=g)
    if isinstance(pad, int):
        codes = codes.masked_fill(codes == pad, 0 if pad else 1)
    return torch.cat([ids.unsqueeze(-1), codes], dim=-1)


def _own_encoder_and_channel_ids(model, kw: dict, vocab: int, batch: int, seq: int, g) -> None:
    """Dia encodes text bytes (an encoder vocabulary of 256, not the decoder's) and decodes audio
    codes in `num_channels` channels, embedded through per-channel `offsets`: its decoder ids are
    (batch, length, channels) and its labels (batch x channels, length), as its logits are. (The
    (batch x channels, length) form of the ids, which it also documents, fails in its embedding:
    "view size is not compatible with input tensor's size and stride".)"""
    config = model.config
    encoder_vocab = getattr(getattr(config, "encoder_config", None), "vocab_size", None)
    if "input_ids" in kw and isinstance(encoder_vocab, int) and 1 < encoder_vocab < vocab:
        kw["input_ids"] = torch.randint(min(3, encoder_vocab - 1), encoder_vocab, (batch, seq), generator=g)
    channels = getattr(getattr(config, "decoder_config", None), "num_channels", None)
    if isinstance(channels, int) and channels > 1 and any(
            n.endswith("embeddings.offsets") and b.dim() == 1 and len(b) == channels for n, b in model.named_buffers()):
        kw["decoder_input_ids"] = torch.randint(min(3, vocab - 1), vocab, (batch, seq // 2, channels), generator=g)


def _backbone_states(model, kw: dict, batch: int, seq: int, g) -> None:
    """Gemma 4's assistant drafts tokens from its backbone's states and raises without them
    ("inputs_embeds and shared_kv_states cannot be None"): `inputs_embeds` of 2 x
    backbone_hidden_size per position, and the backbone's keys and values for each attention kind,
    (batch, kv heads, length, head dim) as the assistant's own layers of that kind take them."""
    config = model.config
    text = _text_config(config)
    per_layer, kinds = getattr(text, "per_layer_config", None), getattr(text, "layer_types", None)
    if not per_layer or not kinds:
        return
    states = {}
    for layer, kind in zip(per_layer, kinds):
        if kind not in states:
            shape = (batch, int(layer.num_key_value_heads), seq, int(layer.head_dim))
            states[kind] = (torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))
    kw["inputs_embeds"] = torch.randn(batch, seq, 2 * config.backbone_hidden_size, generator=g)
    kw["shared_kv_states"] = states


def _needs_boxes(config) -> bool:
    """UDOP's encoder biases attention by the horizontal and vertical distance between the tokens'
    boxes, and raises without them (its relative_bias_args name those kinds). LayoutLM-style models
    fill in zero boxes themselves, so they get none here."""
    kinds = {a.get("type") for a in getattr(config, "relative_bias_args", None) or () if isinstance(a, dict)}
    return bool(kinds & {"horizontal", "vertical"})


def _token_boxes(batch: int, seq: int, g) -> torch.Tensor:
    """One box per token, (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1, normalized to [0, 1] as
    UDOP's embeddings take them (they clip to [0, 1] and scale by max_2d_position_embeddings)."""
    low = torch.rand(batch, seq, 2, generator=g) * 0.5
    high = low + torch.rand(batch, seq, 2, generator=g) * 0.5
    return torch.cat([low, high], dim=-1)


def _is_policy(config) -> bool:
    return all(isinstance(getattr(config, k, None), int) for k in ("max_state_dim", "max_action_dim", "chunk_size"))


def _policy_inputs(model, kw: dict, batch: int, g) -> bool:
    """PI0 (a robot policy) trains on a robot state, a chunk of `chunk_size` target actions and
    their noised copy at a flow-matching timestep, conditioned on camera images and text: its
    forward needs `state`, and its VLM prefix needs pixels (batch, cameras, C, H, W) with a
    camera mask and one image placeholder per image feature. Noise and timestep are given, not
    drawn inside the forward, so that only dropout varies between two runs of one seed. One camera."""
    config = model.config
    actions = (batch, config.chunk_size, config.max_action_dim)
    kw["state"] = torch.randn(batch, config.max_state_dim, generator=g)
    kw["noise"] = torch.randn(*actions, generator=g)
    kw["actions"] = torch.randn(*actions, generator=g)
    kw["timestep"] = 0.001 + 0.998 * torch.rand(batch, generator=g)
    vlm = getattr(config, "vlm_config", None)
    owner = getattr(getattr(model, "model", None), "vlm", None)
    token = getattr(vlm, "image_token_id", None)
    if vlm is None or owner is None or not isinstance(token, int) or "input_ids" not in kw:
        return False
    pixels = _pixels(_vision(vlm) or vlm, batch, g)
    with torch.no_grad():
        per_image = owner.get_image_features(pixels).pooler_output.shape[1]
    vocab = int(getattr(_text_config(vlm), "vocab_size", None) or 512)
    ids = kw["input_ids"].masked_fill(kw["input_ids"] == token, min(3, vocab - 1))
    kw["input_ids"] = torch.cat([torch.full((batch, per_image), token, dtype=ids.dtype), ids], dim=1)
    kw["attention_mask"] = torch.ones_like(kw["input_ids"])
    kw["pixel_values"] = pixels.unsqueeze(1)
    kw["pixel_attention_mask"] = torch.ones(batch, 1, dtype=torch.bool)
    return True


PATCH_GRID = 4  # rows and columns of patches in a synthetic image (16 patches, as a scaled ViT sees)


def _flattened_patches(config, batch: int, g) -> torch.Tensor:
    """Pix2Struct's image as its processor hands it over: (batch, patches, 2 + patch pixels), each
    patch a row id and a column id (from 1; 0 marks padding and is masked out) followed by its
    `patch_embed_hidden_size` pixel values (16 x 16 x 3 in the default)."""
    depth = int(getattr(config, "patch_embed_hidden_size", None) or 768)
    rows = torch.arange(1, PATCH_GRID + 1, dtype=torch.float).repeat_interleave(PATCH_GRID)
    cols = torch.arange(1, PATCH_GRID + 1, dtype=torch.float).repeat(PATCH_GRID)
    ids = torch.stack([rows, cols], dim=-1).expand(batch, -1, -1)
    return torch.cat([ids, torch.randn(batch, PATCH_GRID * PATCH_GRID, depth, generator=g)], dim=-1)


AUDIO_SUB_CONFIGS = ("encoder_config", "audio_config", "speech_config", "encoder")


def _features(config, batch: int, g) -> torch.Tensor:
    """Audio features. Whisper-like encoders take (batch, mel bins, 2 x max_source_positions
    frames); feature-projection encoders (Wav2Vec2-BERT, Speech2Text) take (batch, frames, dim).
    An encoder-decoder's audio settings may sit in its encoder config; a conformer there that
    subsamples time by convolution (Canary, Cohere ASR) takes (batch, frames, mel bins)."""
    if not getattr(config, "num_mel_bins", None):
        sub = next((getattr(config, n) for n in AUDIO_SUB_CONFIGS
                    if getattr(getattr(config, n, None), "num_mel_bins", None)), None)
        if sub is not None and getattr(sub, "subsampling_factor", None):
            return torch.randn(batch, 64, int(sub.num_mel_bins), generator=g)
        config = sub or config
    bins = getattr(config, "num_mel_bins", None)
    if bins:
        positions = getattr(config, "max_source_positions", None)
        return torch.randn(batch, int(bins), 2 * int(positions) if positions else 64, generator=g)
    per_channel = getattr(config, "input_feat_per_channel", None)
    dim = getattr(config, "feature_projection_input_dim", None) or (
        per_channel * int(getattr(config, "input_channels", 1) or 1) if per_channel else None) \
        or getattr(config, "feature_size", None) or 80
    return torch.randn(batch, 64, int(dim), generator=g)


def _streamed_features(config, frames: int, batch: int, g) -> torch.Tensor:
    """Voxtral Realtime adds its audio embeddings to the text embeddings position by position,
    one text token per `audio_length_per_tok` mel frames, and raises without audio ("You must
    specify exactly one of input_features or encoder_inputs_embeds"): (batch, mel bins, frames)
    that make exactly one audio embedding per token."""
    audio = next((getattr(config, n) for n in AUDIO_SUB_CONFIGS if getattr(getattr(config, n, None), "num_mel_bins", None)),
                 config)
    return torch.randn(batch, int(getattr(audio, "num_mel_bins", None) or 128), frames, generator=g)


def _labels(arch: str, config, kw: dict, ids, batch: int, seq: int, g):
    num_labels = int(getattr(config, "num_labels", 2) or 2)
    if arch.endswith("ForSequenceClassification") or arch.endswith("ForImageClassification"):
        return torch.randint(0, num_labels, (batch,), generator=g)
    if arch.endswith("ForTokenClassification"):
        return torch.randint(0, num_labels, (batch, seq), generator=g)
    if arch == "base model" or "input_ids" not in kw and not getattr(config, "is_encoder_decoder", False):
        return None
    if "decoder_input_ids" not in kw:
        return ids.clone()
    decoder = kw["decoder_input_ids"]  # per channel (Dia): one row of labels per batch row and channel
    return decoder.transpose(1, 2).reshape(-1, decoder.shape[1]) if decoder.dim() == 3 else decoder.clone()


def _add_image_tokens(model, kw: dict, image_required: bool = False) -> None:
    """Multimodal decoders match one placeholder token per image feature: ask the model how many
    features the synthetic image makes, and write that many placeholders into the text. When it
    cannot say, the probe runs the text path only (the language model's dropout still runs),
    unless the forward cannot run without the image (BLIP, BLIP-2 with no placeholder token:
    the image features are prepended to the text, so the text stays as it is). Kosmos-2 has no
    placeholder id: its `image_embeds_position_mask` marks the positions the features replace."""
    config = model.config
    by_mask = "image_embeds_position_mask" in _forward_params(model)
    kind, getter = _features_getter(model)
    token = next((getattr(config, n) for n in (f"{kind}_token_id", f"{kind}_token_index")
                  if isinstance(getattr(config, n, None), int)), None)
    try:
        with torch.no_grad():
            out = getter(**_accepted(getter, kw, "pixel_values"))
        feats = getattr(out, "pooler_output", None)
        feats = out if feats is None else feats
        if isinstance(feats, (list, tuple)):
            rows = sum(f.reshape(-1, f.shape[-1]).shape[0] for f in feats)
        else:
            feats = first_tensor(feats) if not torch.is_tensor(feats) else feats
            rows = feats.reshape(-1, feats.shape[-1]).shape[0]
        per_image = rows // kw["pixel_values"].shape[0]
    except Exception:  # noqa: BLE001  no way to count image tokens: text only
        per_image = None
    if token is None and not by_mask or per_image is None or per_image <= 0 or per_image > 4096:
        if not image_required:
            kw.pop("pixel_values")
        return
    ids = kw["input_ids"]
    batch, seq = ids.shape
    vocab = int(getattr(_text_config(config), "vocab_size", 512) or 512)
    text = ids.masked_fill(ids == token, min(3, vocab - 1)) if token is not None else ids
    image = torch.full((batch, per_image), min(3, vocab - 1) if token is None else token, dtype=ids.dtype)
    kw["input_ids"] = torch.cat([text[:, :1], image, text[:, 1:]], dim=1)
    if by_mask:
        kw["image_embeds_position_mask"] = torch.cat(
            [torch.zeros(batch, 1), torch.ones(batch, per_image), torch.zeros(batch, seq - 1)], dim=1).long()
    if "attention_mask" in kw:
        kw["attention_mask"] = torch.ones_like(kw["input_ids"])
    if "labels" in kw:
        kw["labels"] = kw["input_ids"].clone()


TRAINING_INPUT = re.compile(r"`(\w+)` is required as a model input when training")


def _required_in_training(model) -> set:
    """Inputs the forward takes as optional but raises without in training (Molmo2's
    `mm_token_type_ids`), as its modeling module says; other models are given none of them, as
    their processors give none by default."""
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    module = sys.modules.get(type(base).__module__)
    path = getattr(module, "__file__", None)
    if not path or f"{os.sep}transformers{os.sep}" not in path:
        return set()
    return _training_inputs_named_in(path)


@functools.lru_cache(maxsize=64)
def _training_inputs_named_in(path: str) -> frozenset:
    try:
        with open(path, encoding="utf-8") as fh:
            return frozenset(TRAINING_INPUT.findall(fh.read()))
    except OSError:
        return frozenset()


def _modality_types(config, kw: dict) -> torch.Tensor:
    """The per-token modality that Molmo2's forward requires in training (its processor writes it:
    0 for text, 1 for image tokens): 1 at the image placeholders written into the text, if any."""
    ids = kw["input_ids"]
    token = next((getattr(config, n) for n in ("image_token_id", "image_token_index")
                  if isinstance(getattr(config, n, None), int)), None)
    if token is None or "pixel_values" not in kw:
        return torch.zeros_like(ids)
    return (ids == token).long()


VIDEO_FRAMES = 4


def _cross_attended_image(kw: dict) -> bool:
    """IDEFICS reads images through gated cross-attention, not placeholders: its forward takes
    (batch, images, C, H, W) pixels and an `image_attention_mask` of (batch, text length, images)
    saying which tokens see which image, and runs only with an image. One image, seen by every
    token."""
    kw["pixel_values"] = kw["pixel_values"].unsqueeze(1)
    kw["image_attention_mask"] = torch.ones(*kw["input_ids"].shape, 1, dtype=torch.long)
    return True


def _features_getter(model):
    """("image", get_image_features), or ("video", get_video_features) for a model that takes
    only video (InstructBLIP-Video), or ("image", None)."""
    for kind in ("image", "video"):
        for owner in (model, getattr(model, "model", None)):
            getter = getattr(owner, f"get_{kind}_features", None) if owner is not None else None
            if callable(getter):
                return kind, getter
    return "image", None


def _accepted(fn, kw: dict, first: str) -> dict:
    """`first` plus the other inputs of the batch that `fn` names (InstructBLIP's image features
    need its qformer_input_ids)."""
    import inspect

    try:
        names = set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = set()
    return {first: kw[first], **{k: v for k, v in kw.items()
                                 if k in names and k != first and k.endswith(("_input_ids", "_attention_mask"))
                                 and not k.startswith("decoder_")}}


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
        obj, _ = _config_object(copy.deepcopy(config), trust_remote_code, config_dir)
        found = fullsize.same_failure(exc, obj)
    except Exception:  # noqa: BLE001  no second opinion: the scaled failure is reported as it is
        return None
    return f"its config cannot build its own model at full size either: {found}" if found else None


CONFIG_READ = re.compile(r"\bconfig\.(\w+)")
SELF_READ = re.compile(r"\bself\.(\w+)")


def unset_key(exc: BaseException) -> str | None:
    """A TypeError inside the modeling code at a line that reads `config.<key>` (directly, or
    through `self.<attr>` copied from it earlier in the same function) where that key is None in
    the config object of the failing frame: the config leaves a key unset that this model needs
    (lfm2_moe's layer_types, granite4_vision's deepstack_layer_map, dots1's n_routed_experts).
    Found in the traceback, so the key named is the one the model read, never a guess."""
    none_attr = isinstance(exc, AttributeError) and str(exc).startswith("'NoneType' object")
    if not isinstance(exc, (TypeError, KeyError)) and not none_attr:
        return None
    tb, frames = exc.__traceback__, []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    for tb in reversed(frames):
        code = tb.tb_frame.f_code
        if f"{os.sep}transformers{os.sep}models{os.sep}" not in code.co_filename:
            continue
        local = tb.tb_frame.f_locals
        owner = local.get("config") or getattr(local.get("self"), "config", None)
        if owner is None:
            continue
        empty = isinstance(exc, KeyError)  # cohere_compass_text: rope_parameters {} indexed by layer type
        key = _unset_read(code, tb.tb_lineno, owner, local.get("self"), empty)
        if key:
            where = f"{os.path.basename(code.co_filename)}:{tb.tb_lineno}"
            state = "empty" if empty else "unset (None)"
            return (f"its config leaves {key} {state} and {type(owner).__name__}'s model reads it "
                    f"({where}); write {key} in config.json")
    return None


def _unset_read(code, lineno: int, owner, this, empty: bool = False) -> str | None:
    text = linecache.getline(code.co_filename, lineno)
    keys = CONFIG_READ.findall(text)
    if this is not None:  # `self.num_experts = config.num_local_experts` earlier in this function
        body = "".join(linecache.getline(code.co_filename, n) for n in range(code.co_firstlineno, lineno))
        for attr in SELF_READ.findall(text):
            if getattr(this, attr, 0) is None and not empty:
                keys += re.findall(rf"self\.{attr}\s*=\s*config\.(\w+)\s*$", body, re.M)
    aliases = getattr(owner, "attribute_map", None) or {}
    for key in keys:
        try:
            value = getattr(owner, key) if hasattr(owner, key) else 0
            if (value == {} or value == []) if empty else value is None:
                return aliases.get(key, key)
        except Exception:  # noqa: BLE001  a config property that raises says nothing either way
            continue
    return None


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
    return Subject(model, args, kwargs, loss_of, first_tensor, "factory", description, torch.device(device), dtype)


def subject_from_hf(model, arch: str, *, seed: int, device, dtype, description: str) -> Subject:
    kw = hf_batch(model, arch, seed, device)
    attn = getattr(getattr(model, "config", None), "_attn_implementation", "") or ""
    return Subject(model, (), kw, loss_of, first_tensor, "config", description, torch.device(device), dtype, attn)
