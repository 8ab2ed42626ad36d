"""Scaling a Transformers config down without changing its structure (no torch here).

Shared by the probe (`probe/build.py`) and the knowledge generator (`knowledge/build.py`): both
must build a model whose dropout sites are those of the real one, only smaller. Fixed small
values (2 layers, width 64, 4 heads) broke most modern configs: a hybrid decoder cut to 2
layers has no attention layer left, MLA rope dims no longer fit the head, Mamba heads times
head size no longer equal the inner width. So sizes are *scaled*, not set:

- every width (hidden, FFN, LoRA ranks of MLA) by one power-of-two factor `g`;
- every head count by one power-of-two factor `h` that keeps counts integral (kv divides q);
- every per-head size (head_dim, rope/nope dims, rotary_dim, Mamba head size) by `g / h`,
  so heads x head size still equals the width it was equal to;
- layers to the shortest prefix that still holds one layer of every kind the config names
  (layer_types, block_types, attention period/offset, intervals, dense-then-MoE), per-layer
  lists cut to match, index lists filtered;
- experts to at most 4 with top-k and expert groups within range; vocabulary to 512;
- vision: a stack counted by `depth` (Qwen-VL and GLM towers) or `layers` (Kosmos-2) is cut like
  any other, stage depths (`depths`: ConvNeXt, Swin, ResNet) to one block per stage, compound
  coefficients (EfficientNet's width and depth) to small ones, and the image to a few patches but
  never below twice the network's total stride, so the last stage still sees a 2 x 2 map.
Sub-configs (text, vision, audio, encoder, decoder) are scaled the same way, recursively.
"""

from __future__ import annotations

import copy
import math
import re

TARGET_WIDTH = 64
TARGET_HEADS = 4
MAX_LAYERS = 12
MAX_EXPERTS = 4
VOCAB = 512
POSITIONS = 1024
AUDIO_POSITIONS = 32
IMAGE_PATCHES = 4
STATE_CAPS = {"mamba_d_state": 16, "state_size": 16, "ssm_state_size": 16, "d_state": 16,
              "mamba_chunk_size": 32, "chunk_size": 32}

# Learned queries that make the image features (Kosmos-2.5 resamples every image into 2048): the
# text then holds that many image positions per row, which costs time only (Kosmos-2 has 64);
# Perceiver's latents cross-attend to every input position, 256 of them
QUERY_CAPS = {"latent_query_num": 64, "num_latents": 32}

LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "encoder_layers", "decoder_layers",
              "num_decoder_layers", "num_encoder_layers", "text_layers", "vision_layers", "depth", "layers",
              "num_self_attends_per_block")  # Perceiver: 26 self-attention layers per block
# EfficientNet-style compound scaling: channels x width, block repeats x depth (rounded up)
COEFFICIENT_CAPS = {"width_coefficient": 0.25, "depth_coefficient": 0.1, "depth_multiplier": 0.25,
                    "width_multiplier": 0.25}
WIDTH_KEYS = ("hidden_size", "d_model", "n_embd", "dim", "embed_dim", "intermediate_size", "d_ff", "n_inner",
              "encoder_ffn_dim", "decoder_ffn_dim", "ffn_dim", "moe_intermediate_size", "ffn_hidden_size",
              "shared_expert_intermediate_size", "expert_ffn_hidden_size", "attention_hidden_size",
              "kv_lora_rank", "q_lora_rank", "d_inner", "intermediate_size_mlp", "expert_intermediate_size",
              "mlp_dim", "hidden_dim", "ffn_hidden_dim", "lru_width", "projection_dim", "mamba_d_ssm",
              "d_latents")
# Conv channels of a VQ image tokenizer (Apertus 1.5, Emu3, Chameleon): widths too, but their
# encoders hard-code GroupNorm(32 groups), so they never go below 32 (nor below what was written).
CHANNEL_KEYS = ("base_channels", "latent_channels")
CHANNEL_FLOOR = 32
HEAD_COUNT = re.compile(r"^(num_(key_value_|kv_|attention_|query_)?heads|n_head|n_heads|num_attention_heads|"
                        r"(encoder|decoder)_attention_heads|mamba_n_heads|mamba_num_heads|n_mamba_heads|"
                        r"linear_num_(key_|value_)?heads|num_key_value_heads|multi_query_group_num|n_kv_heads)$")
PER_HEAD = re.compile(r"^(head_dim|d_kv|kv_channels|rotary_dim|mamba_d_head|mamba_headdim|attention_head_dim|"
                      r"qk_rope_head_dim|qk_nope_head_dim|v_head_dim|qk_head_dim|linear_(key_|value_)?head_dim|"
                      r"rope_dim|head_size|mamba_head_dim)$")
EXPERT_COUNT = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts", "num_routed_experts")
TOP_K = ("num_experts_per_tok", "top_k", "moe_topk", "num_experts_per_token", "moe_k", "router_top_k")
TOKEN_ID_KEYS = ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id", "sep_token_id",
                 "cls_token_id", "mask_token_id", "unk_token_id")
SUB_CONFIGS = ("text_config", "vision_config", "audio_config", "encoder", "decoder", "encoder_config",
               "decoder_config", "speech_config", "language_config", "llm_config", "thinker_config",
               "talker_config", "perceiver_config", "qformer_config", "vq_config", "backbone_config")


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def pow2_factor(value: int, target: int) -> int:
    """The largest power-of-two divisor d of `value` with value / d >= target (1 when small)."""
    d = 1
    while value % (d * 2) == 0 and value // (d * 2) >= target:
        d *= 2
    return d


def head_divisor(d: dict) -> int:
    """One power of two that divides every head count and brings the largest near TARGET_HEADS."""
    counts = [v for k, v in d.items() if HEAD_COUNT.match(k) and is_int(v) and v > 0]
    if not counts:
        return 1
    div = 1
    while all(c % (div * 2) == 0 for c in counts) and max(counts) // (div * 2) >= TARGET_HEADS:
        div *= 2
    return div


def width_divisor(d: dict) -> int:
    """One power of two for the widths of the config and all its sub-configs: a vision tower's
    projection must keep matching the text model's hidden size, so every config of the tree is
    scaled by the same factor (the smallest any of them allows)."""
    return _tree_divisor(d) or 1


SMALL_WIDTH = 2 * TARGET_WIDTH


def _own_width(d: dict) -> int | None:
    return next((d[k] for k in ("hidden_size", "d_model", "n_embd", "dim", "embed_dim") if is_int(d.get(k))), None)


def _tree_divisor(d: dict, root: bool = True) -> int | None:
    """None for a config (and sub-configs) naming no width: it must not pin the whole tree at 1
    (Granite Speech's encoder config names only hidden_dim, which left its 4096-wide text model
    at full size: 483M parameters). Nor does a leaf sub-config already as narrow as a scaled one
    (VibeVoice's 64- and 128-wide audio tokenizers left its 4096-wide text model at full size,
    2,028M parameters): it keeps its own width (see `_sub_width`)."""
    own = _own_width(d)
    subs = [v for k, v in d.items() if isinstance(v, dict) and _is_sub_config(k, v)]
    if not root and own is not None and own <= SMALL_WIDTH and not subs:
        return None
    divs = [pow2_factor(own, TARGET_WIDTH)] if own is not None else []
    divs += [v for v in (_tree_divisor(v, False) for v in subs) if v is not None]
    return min(divs) if divs else None


def _narrow_leaf(value: dict) -> bool:
    own = _own_width(value)
    return own is not None and own <= SMALL_WIDTH and not any(
        isinstance(v, dict) and _is_sub_config(k, v) for k, v in value.items())


def _sub_width(value: dict, width: int) -> int:
    """The tree's width factor, unless the sub-config is a narrow leaf: that keeps its widths
    (and a size elsewhere equal to one of them, VibeVoice's diffusion `latent_size`, keeps it)."""
    return 1 if _narrow_leaf(value) else width


def _is_sub_config(key: str, value: dict) -> bool:
    return key in SUB_CONFIGS or "model_type" in value


def scaled(value: int, divisor: int) -> int:
    return max(1, value // divisor) if value % divisor == 0 else max(1, round(value / divisor))


# lists of layer indices that must fit the scaled stack: SAM's `global_attn_indexes` (DeepSeek-VL
# hybrid's high-resolution tower reads the hidden state after its first global layer)
LAYER_INDEX_LIST = re.compile(r"(layer_indices|layer_ids|attn_layers?|attention_layers|block_indexes|attn_indexes)$")


def layer_count(d: dict) -> int | None:
    return next((d[k] for k in LAYER_KEYS if is_int(d.get(k))), None)


LAYER_LISTS = ("layers_block_type", "layer_types")


def listed_layers(d: dict) -> int | None:
    """The layer count of a config that names no count, only one type per layer (Nemotron-H's
    `layers_block_type`, whose length its config class takes as the depth: `num_hidden_layers`
    is deprecated there). Nested in NeMo Speech-LM, its 52 layers were never cut (714M parameters)."""
    for key in LAYER_LISTS:
        value = d.get(key)
        if isinstance(value, list) and len(value) > 2 and all(isinstance(v, str) for v in value):
            return len(value)
    return None


# Layer kinds whose weights the modeling code ties across all their occurrences, so a scaled
# model needs two of them: Zamba ties every hybrid layer's shared transformer to the first one's
# through a `_tied_weights_keys` pattern that must match another layer (modeling_zamba.py), and
# raises when only one hybrid layer is left.
TIED_ACROSS_LAYERS = {"zamba": "hybrid"}


def layers_needed(d: dict, layers: int) -> int:
    """Layers in the shortest prefix that keeps one of every layer kind the config names."""
    need = 2
    tied = TIED_ACROSS_LAYERS.get(d.get("model_type"))
    for key, value in d.items():
        if isinstance(value, (list, str)) and len(value) == layers and layers > 2 and _is_pattern(key, value):
            firsts: dict = {}
            for i, item in enumerate(value):
                firsts.setdefault(repr(item), i)
            need = max(need, max(firsts.values()) + 1)
            if tied is not None and isinstance(value, list):
                seen = [i for i, item in enumerate(value) if item == tied]
                if len(seen) > 1:
                    need = max(need, seen[1] + 1)
        elif key.endswith("_offset") and is_int(value):
            period = d.get(key[: -len("_offset")] + "_period")
            if is_int(period) and period > 0:
                need = max(need, value % period + 2 if period > 1 else 2)
        elif re.search(r"(interval|sliding_window_pattern|first_k_dense_replace|decoder_sparse_step|"
                       r"moe_layer_freq|first_dense_layers?)$", key) and is_int(value) and value > 0:
            need = max(need, value + 1)
        elif key in ("block_types", "layers_block_type_pattern") and isinstance(value, list) and value:
            need = max(need, len(value))
        elif LAYER_INDEX_LIST.search(key) \
                and isinstance(value, list) and value and all(is_int(v) for v in value):
            need = max(need, min(value) + 2)
    return min(layers, min(need, MAX_LAYERS))


SPLIT_KEY = re.compile(r"^(n|num)_\w+_layers$")


def _layer_split(d: dict, layers: int) -> list[str]:
    """Counts that divide the layer stack into consecutive parts (Dory: n_input_layers +
    n_recurrent_layers + n_output_layers == num_hidden_layers, which its config validates)."""
    keys = [k for k, v in d.items() if SPLIT_KEY.match(k) and k not in LAYER_KEYS
            and k != "num_kv_shared_layers" and is_int(v) and v > 0]
    return keys if len(keys) >= 2 and sum(d[k] for k in keys) == layers else []


def _rescale_split(d: dict, keys: list[str], total: int, unit: int) -> None:
    """Every part keeps at least one layer; the parts still add up to the new total. Parts that
    were all even stay even (unit 2): Dory's config.json counts an attention block and its MLP
    block as two layers and halves every count on loading."""
    if not keys:
        return
    before, units = sum(d[k] for k in keys), total // unit
    new = {k: max(1, d[k] * units // before) for k in keys}
    biggest = max(keys, key=lambda k: d[k])
    new[biggest] += units - sum(new.values())
    d.update({k: v * unit for k, v in new.items()})


def _with_shared_tail(d: dict, keep: int) -> int:
    """Layers that reuse an earlier layer's KV cache (Gemma 3n's num_kv_shared_layers) sit at
    the end and need a layer of every kind before them: keep the prefix twice, the second copy
    as the shared tail."""
    shared = d.get("num_kv_shared_layers")
    return 2 * keep if is_int(shared) and shared > 0 else keep


def _is_pattern(key: str, value) -> bool:
    """A per-layer list or string: one entry per layer (types, windows, flags, ...)."""
    if isinstance(value, str):
        return key.endswith("pattern")
    return all(isinstance(v, (str, int, float, bool)) or v is None for v in value)


def cut_per_layer(d: dict, before: int, after: int) -> None:
    for key, value in list(d.items()):
        if isinstance(value, dict) and value and key.startswith("per_layer") \
                and all(str(k).isdigit() for k in value):  # {layer index: override}
            d[key] = {k: v for k, v in value.items() if int(k) < after}
            continue
        if isinstance(value, (list, str)) and len(value) == before and before > after \
                and (isinstance(value, list) or key.endswith("pattern")):
            d[key] = value[:after]
        elif LAYER_INDEX_LIST.search(key) \
                and isinstance(value, list) and value and all(is_int(v) for v in value):
            d[key] = [v for v in value if v < after]


MERGE_KEYS = ("spatial_merge_size", "merge_size")


def tree_widths(d: dict) -> set[int]:
    """The hidden sizes of a config and all its sub-configs (before scaling), but a narrow leaf's,
    which is not scaled; and a vision tower's merged width, its width x merge size squared, which
    the projector after it takes (MuSE Glimmer's `out_hidden_size`, 1536 x 2 x 2 = 6144)."""
    own = {d[k] for k in ("hidden_size", "d_model", "n_embd") if is_int(d.get(k))}
    width = d["embed_dim"] if is_int(d.get("embed_dim")) else _own_width(d)  # Qwen2-VL: hidden_size is the merger's output
    merge = next((d[k] for k in MERGE_KEYS if is_int(d.get(k)) and d[k] > 1), None)
    if width is not None and merge is not None:
        own.add(width * merge * merge)
    for key, value in d.items():
        if isinstance(value, dict) and _is_sub_config(key, value) and not _narrow_leaf(value):
            own |= tree_widths(value)
    return own


def scale_config_dict(cfg: dict, width: int | None = None, keep_head_dim: bool = False,
                      widths: set[int] | None = None) -> dict:
    """A copy of a config.json dict shrunk to a tiny model of the same structure and dropout keys.

    keep_head_dim: scale widths with the head count, so per-head sizes stay as they are; the
    second attempt for modeling code that hard-codes per-head splits (Qwen2-VL's mrope sections).
    """
    d = copy.deepcopy(cfg)
    widths = tree_widths(d) if widths is None else widths
    width = width_divisor(d) if width is None else width
    heads = min(head_divisor(d), width)
    if keep_head_dim:
        width = heads
    heads = _vision_rope_heads(d, width, heads)
    per_head = max(1, width // heads)
    _scale_dims(d, width, heads, per_head, widths)
    _derive_unset_heads(d)
    _fit_ssm_groups(d)
    for key, value in d.items():  # per-layer overrides ({"02": {"num_attention_heads": 64}})
        if key.startswith("per_layer") and isinstance(value, dict):
            for override in value.values():
                if isinstance(override, dict):
                    _scale_dims(override, width, heads, per_head, widths)
    layers = layer_count(d)
    if layers:
        keep = layers_needed(d, layers)
        split = _layer_split(d, layers)
        unit = 2 if split and all(d[k] % 2 == 0 for k in split) else 1
        keep = min(layers, max(keep, unit * len(split)))
        keep += keep % unit
        _rescale_split(d, split, _with_shared_tail(d, keep), unit)
        for key in LAYER_KEYS:
            if is_int(d.get(key)):
                before = d[key]
                d[key] = min(before, _with_shared_tail(d, keep))
                cut_per_layer(d, before, d[key])
        if is_int(d.get("num_kv_shared_layers")) and d["num_kv_shared_layers"] > 0:
            total = layer_count(d)
            d["num_kv_shared_layers"] = min(d["num_kv_shared_layers"], max(0, total - keep))
    elif listed := listed_layers(d):
        cut_per_layer(d, listed, layers_needed(d, listed))
    _fit_stages(cfg, d)
    _scale_experts(d)
    _scale_vocab(d)
    rotary = any(k in d for k in ("rope_scaling", "rope_parameters", "rope_theta", "rotary_dim"))
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        if is_int(d.get(key)) and d[key] > POSITIONS and not rotary:
            d[key] = POSITIONS
    for key, cap in {**STATE_CAPS, **QUERY_CAPS}.items():  # recurrent state, scan chunks, queries: time only
        if is_int(d.get(key)) and d[key] > cap:
            d[key] = cap
    _scale_vision(d)
    _fit_axial_positions(d)
    # audio encoders need exactly 2x this many frames; a windowed one (Qwen2.5-Omni) adds its
    # position table to each window of 2 x n_window frames, halved by its conv: n_window rows
    window = d.get("n_window") if is_int(d.get("n_window")) else 0
    for key in ("max_source_positions",):
        if is_int(d.get(key)) and d[key] > max(AUDIO_POSITIONS, window):
            d[key] = max(AUDIO_POSITIONS, window)
    d["use_cache"] = False
    _scale_rope_sections(d, per_head)
    for key, value in list(d.items()):
        if isinstance(value, dict) and _is_sub_config(key, value):
            d[key] = scale_config_dict(value, None if keep_head_dim else _sub_width(value, width), keep_head_dim,
                                       widths)
    _fit_feature_layers(cfg, d)
    _scale_token_ranges(cfg, d)
    _fit_image_tokens(cfg, d)
    _tie_vision_output(d)
    if not is_int(d.get("vocab_size")) and isinstance(d.get("text_config"), dict):
        # a composite's placeholder ids (image_token_id) index the text model's vocabulary
        _scale_vocab(d, d["text_config"].get("vocab_size"))
        _set_unset_placeholders(d, d["text_config"].get("vocab_size"))
    return d


AXIAL_SHAPE = [4, 8]  # multiplies to the probe batch's 32 tokens (batch.SEQ_LEN)
CHUNK_CAP = 16        # Reformer's attention chunks: the 32 tokens must split into whole chunks


def _fit_axial_positions(d: dict) -> None:
    """Reformer's axial position embeddings: the factors of `axial_pos_embds_dim` must add up to
    the (scaled) hidden size, and in training the sequence must be exactly as long as the
    product of `axial_pos_shape` and a whole number of attention chunks. Shapes only: its
    dropout keys are untouched."""
    dims, width = d.get("axial_pos_embds_dim"), d.get("hidden_size")
    if not (isinstance(dims, list) and dims and all(is_int(v) for v in dims) and is_int(width)):
        return
    if sum(dims) != width:
        total = sum(dims)
        d["axial_pos_embds_dim"] = [max(1, v * width // total) for v in dims[:-1]]
        d["axial_pos_embds_dim"].append(width - sum(d["axial_pos_embds_dim"]))
    if isinstance(d.get("axial_pos_shape"), list) and len(d["axial_pos_shape"]) == len(AXIAL_SHAPE):
        d["axial_pos_shape"] = list(AXIAL_SHAPE)
        d["max_position_embeddings"] = math.prod(AXIAL_SHAPE)
    for key in ("lsh_attn_chunk_length", "local_attn_chunk_length"):
        if is_int(d.get(key)) and d[key] > CHUNK_CAP:
            d[key] = CHUNK_CAP


def _vision_output_key(vision: dict) -> str | None:
    """The vision config's key for the width of the features it hands the text model: Qwen2-VL
    style towers name their merger's output `hidden_size` beside their own `embed_dim`, others
    `out_hidden_size`."""
    return "out_hidden_size" if "out_hidden_size" in vision else "hidden_size" if "embed_dim" in vision else None


def text_facing_widths(d: dict) -> list[tuple[tuple, int]]:
    """(key path, width) of every width at which a composite hands features to its text model,
    which must equal `text_config.hidden_size`: the vision tower's output (_vision_output_key),
    an adapter's `text_hidden_size` (Molmo2), and the composite's own `hidden_size`, at which
    Ovis 2 embeds its image. One list for the scaler, which ties them, and for the report, which
    says where a config disagrees (build.width_mismatch)."""
    vision, text = d.get("vision_config"), d.get("text_config")
    if not isinstance(vision, dict) or not isinstance(text, dict):
        return []
    found = []
    key = _vision_output_key(vision)
    if key and is_int(vision.get(key)):
        found.append((("vision_config", key), vision[key]))
    found += [((name, "text_hidden_size"), sub["text_hidden_size"]) for name, sub in d.items()
              if isinstance(sub, dict) and is_int(sub.get("text_hidden_size"))]
    if is_int(d.get("hidden_size")):
        found.append((("hidden_size",), d["hidden_size"]))
    return found


def _tie_vision_output(d: dict) -> None:
    """The scaled tower hands the text model features of the text model's scaled width. Real
    checkpoints agree at full size; Transformers' own defaults for qwen2_vl, qwen3_vl, glm_ocr and
    others do not (a 3584-wide merger before a 4096-wide text model), and scaling both by one
    divisor kept them apart, so their towers never ran and their dropout keys went unmeasured."""
    width = (d.get("text_config") or {}).get("hidden_size") if isinstance(d.get("text_config"), dict) else None
    if not is_int(width):
        return
    for path, _ in text_facing_widths(d):
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = width


def _vision_rope_heads(d: dict, width: int, heads: int) -> int:
    """A vision tower (it has a patch size) keeps a per-head size divisible by 4: Qwen-VL and
    GLM-V towers split each head into row and column rotary halves, each of sine/cosine pairs
    (Qwen2-VL's 80-wide heads cut to 10 broke the rotary product, so its image never ran, #32).
    Fewer heads, not a narrower tower: the head count is divided further while all counts allow."""
    if not is_int(d.get("patch_size")) and not isinstance(d.get("patch_size"), list):
        return heads
    width_now = d["embed_dim"] if is_int(d.get("embed_dim")) else _own_width(d)  # Qwen2-VL: hidden_size is the merger's output
    counts = [v for k, v in d.items() if HEAD_COUNT.match(k) and is_int(v) and v > 0]
    if not is_int(width_now) or not counts or is_int(d.get("head_dim")):
        return heads
    head_dim = width_now // max(counts)
    while head_dim * heads // width % 4 and all(c % (heads * 2) == 0 for c in counts) and heads * 2 <= width:
        heads *= 2
    return heads


def total_stride(d: dict) -> int:
    """How much a vision network shrinks its image in all (1 when the config does not say): the
    stride it declares (`encoder_stride`, `output_stride`), the product of its stage strides, or
    its patch size halved once more by every stage after the first (ConvNeXt, Swin)."""
    found = [d[k] for k in ("encoder_stride", "output_stride") if is_int(d.get(k)) and d[k] > 0]
    strides = d.get("strides")
    if isinstance(strides, list) and strides and all(is_int(v) and v > 0 for v in strides):
        found.append(math.prod(strides) * (2 if "width_coefficient" in d else 1))  # EfficientNet's stem
    depths, patch = d.get("depths"), d.get("patch_size")
    if isinstance(depths, list) and depths and is_int(patch) and patch > 0:
        found.append(patch * 2 ** (len(depths) - 1))
    return max(found, default=1)


STAGE_NAME = re.compile(r"^stage(\d+)$")
STAGE_BLOCKS = {"depths": 1, "depth": 1, "stage_num_blocks": 1, "stage_numb_of_layers": 2}


def _fit_stages(before: dict, after: dict) -> None:
    """A backbone names its outputs by stage (`stage_names`, `out_features`, `out_indices`); a
    transformer backbone has one stage per layer, so the cut stack has fewer: BEiT's and DINOv2's
    saved defaults ask for 'stage12' of a 2-layer stack ("out_features must be a subset of
    stage_names"). Stage names follow the cut; an output beyond it becomes the last stage."""
    names = after.get("stage_names")
    layers, was = layer_count(after), layer_count(before)
    if not (isinstance(names, list) and is_int(layers) and is_int(was) and layers < was
            and len(names) == was + 1):
        return
    after["stage_names"] = ["stem"] + [f"stage{i}" for i in range(1, layers + 1)]
    features = after.get("out_features")
    if isinstance(features, list):
        fitted = []
        for name in features:
            found = STAGE_NAME.match(str(name))
            new = f"stage{min(int(found.group(1)), layers)}" if found else name
            if new not in fitted:
                fitted.append(new)
        after["out_features"] = fitted
    indices = after.get("out_indices")
    if isinstance(indices, list) and all(is_int(v) for v in indices):
        after["out_indices"] = sorted({min(v, layers) if v >= 0 else max(v, -layers - 1) for v in indices})


def _scale_vision(d: dict) -> None:
    """Stage depths, compound coefficients and the image size (see the module docstring)."""
    for key, keep in STAGE_BLOCKS.items():
        value = d.get(key)
        if isinstance(value, list) and value and all(is_int(v) and v > 0 for v in value):
            d[key] = [min(v, keep) for v in value]
            if key == "depth" and isinstance(d.get("drop_path_rate"), list):
                # CvT indexes stage i's per-block drop-path schedule at i (modeling_cvt.py:422,
                # `drop_path_rates[self.stage]`): stage i needs i + 1 blocks, as its defaults have
                d[key] = [min(v, max(keep, i + 1)) for i, v in enumerate(value)]
    if isinstance(d.get("depths"), list) and is_int(d.get("window_size")) and d["window_size"] > 2:
        d["window_size"] = 2  # Swin's windows: the last stage of a small image is 2 x 2
    if isinstance(d.get("downsampling_ratios"), list) and is_int(d.get("num_filters")) and d["num_filters"] > 8:
        d["num_filters"] = max(8, d["num_filters"] // 4)  # a codec's conv channels double per stage from it
    for key, cap in COEFFICIENT_CAPS.items():
        if isinstance(d.get(key), (int, float)) and not isinstance(d[key], bool) and d[key] > cap:
            if key == "width_coefficient" and is_int(d.get("hidden_dim")):
                # the head's width is the last conv's, round_filters(1280) at the config's width
                divisor = d.get("depth_divisor") if is_int(d.get("depth_divisor")) else 8
                channels = d["hidden_dim"] / d[key] * cap
                d["hidden_dim"] = max(divisor, int(channels + divisor / 2) // divisor * divisor)
            d[key] = cap
    size, patch = d.get("image_size"), d.get("patch_size")
    square = is_int(size) or (isinstance(size, list) and len(size) == 2 and all(is_int(v) for v in size))
    if not square:
        return
    stride = total_stride(d)
    target = IMAGE_PATCHES * patch if is_int(patch) and patch > 0 else 0  # 4 x 4 patches: the same encoder, shorter
    if not target and stride == 1:
        return  # neither patches nor strides known (Hiera's patch is a pair): the size stays
    target = max(target, 2 * stride)
    if stride > 1:
        target = -(-target // stride) * stride
    current = size if is_int(size) else max(size)
    if target and current > target:
        d["image_size"] = target if is_int(size) else [target, target]
        _fit_position_table(d, current, target)


def _fit_position_table(d: dict, before: int, after: int) -> None:
    """Molmo2's tower adds its `num_position_embeddings` table to the patches as they are, with
    no interpolation: the table is one row per patch of the image, so it shrinks with the image
    (a table of another size, Qwen3-VL's interpolated one, is left alone)."""
    patch, rows = d.get("patch_size"), d.get("num_position_embeddings")
    if is_int(patch) and patch > 0 and is_int(rows) and rows == (before // patch) ** 2:
        d["num_position_embeddings"] = (after // patch) ** 2


def _fit_image_tokens(before: dict, after: dict) -> None:
    """What a composite derives from its vision tower's image size: LLaVA-NeXT's
    `image_grid_pinpoints` (resolutions in pixels, multiples of the image size) shrink with the
    image; Gemma 3's `mm_tokens_per_image` (a square, pooled from the patch grid) becomes a
    square whose side divides the scaled grid's, or its pooling kernel is 0 ("stride should not
    be zero")."""
    vb, va = before.get("vision_config"), after.get("vision_config")
    if not (isinstance(vb, dict) and isinstance(va, dict)):
        return
    old, new, patch = vb.get("image_size"), va.get("image_size"), va.get("patch_size")
    if not (is_int(old) and is_int(new) and old > 0):
        return
    pins = after.get("image_grid_pinpoints")
    if new < old and isinstance(pins, list) and all(isinstance(p, list) and all(is_int(v) for v in p) for p in pins):
        after["image_grid_pinpoints"] = [[max(new, v * new // old) for v in p] for p in pins]
    tokens = after.get("mm_tokens_per_image")
    if is_int(tokens) and is_int(patch) and patch > 0:
        side, want = new // patch, math.isqrt(tokens)
        if side and (want > side or side % want):
            fit = max(s for s in range(1, side + 1) if side % s == 0 and s <= max(1, side // 2))
            after["mm_tokens_per_image"] = fit * fit
    if is_int(patch) and patch > 0 and new // patch:
        _fit_patch_counts(after, (new // patch) ** 2)


def _fit_patch_counts(d: dict, patches: int) -> None:
    """Aria's projector takes only the patch counts its `projector_patch_to_query_dict` names
    (1,225 and 4,900: its processor's 490- and 980-pixel images), which the scaled image's 16
    patches is not: the smallest count becomes the scaled image's, the others keep their ratio
    to it, and each still maps to its number of queries (image tokens)."""
    for key, table in list(d.items()):
        if not key.endswith("patch_to_query_dict") or not isinstance(table, dict) or not table:
            continue
        try:
            counts = {int(k): v for k, v in table.items()}
        except (TypeError, ValueError):
            continue
        if patches in counts:
            continue
        smallest = min(counts)
        if smallest <= 0:
            continue
        d[key] = {max(1, round(k * patches / smallest)): v for k, v in sorted(counts.items())}


FEATURE_LAYER = re.compile(r"^((vision_)?feature_layers?|insert_layer_id)$")


def _fit_feature_layers(before: dict, after: dict) -> None:
    """Indices of the vision layers whose features the model takes (`vision_feature_layer`,
    `feature_layer`) must survive the layer cut: Molmo2's adapter takes layers [24, 18] of 25,
    and its config rejects them once the tower has 2. An index the scaled stack still holds is
    kept; one beyond it keeps its distance from the last layer, clamped into the stack (24 of 25
    stays the last layer, 18 becomes the first), so a model still taking several layers' features
    takes the same number. The indices sit in the config that owns them (Phi-4's vision config)
    or beside its vision config (LLaVA's top level, Molmo2's adapter config). MiniCPM-V's
    `insert_layer_id` (the layer after which its tower merges windows of patches) is one too:
    left at 6 of a 2-layer tower, the merge never ran and its merger read a quarter of the patches."""
    vision_before, vision_after = before.get("vision_config"), after.get("vision_config")
    vision = (layer_count(vision_before), layer_count(vision_after)) \
        if isinstance(vision_before, dict) and isinstance(vision_after, dict) else (None, None)
    own = (layer_count(before), layer_count(after))
    holders = [(after, own if own[0] else vision)]
    holders += [(value, vision) for key, value in after.items() if isinstance(value, dict)
                and key != "vision_config" and _is_sub_config(key, value) and layer_count(value) is None]
    for holder, (n, m) in holders:
        if not (is_int(n) and is_int(m)) or m >= n:
            continue
        for key, value in list(holder.items()):
            if not FEATURE_LAYER.match(key):
                continue
            if is_int(value):
                holder[key] = _fit_layer_index(value, n, m)
            elif isinstance(value, list) and value and all(is_int(v) for v in value):
                holder[key] = [_fit_layer_index(v, n, m) for v in value]


def _fit_layer_index(index: int, before: int, after: int) -> int:
    if -after <= index < after:
        return index
    if index < 0:
        return -after
    return max(0, after - 1 - (before - 1 - index))


TOKEN_OFFSET = re.compile(r"^(\w+)_token_offset$")
CODEBOOK = 64
RANGE_OWNERS = {"image": "vision_config"}  # whose codebook a `<kind>_token_offset` range holds


def _scale_token_ranges(before: dict, after: dict) -> None:
    """A vocabulary that holds media codebooks as token ranges (Apertus 1.5: text, then the
    131,072 image codes from `image_token_offset`, then the 4,096 audio codes from
    `audio_token_offset`, all inside `text_config.vocab_size`, which its config validates) is laid
    out again at the scaled size: the text part keeps the scaled vocabulary's size, each codebook
    shrinks to CODEBOOK codes, the ranges keep their order and adjacency, and the vocabulary ends
    where it ended relative to the last range. Nothing changes unless every range's codebook is known."""
    text_before, text_after = before.get("text_config"), after.get("text_config")
    if not (isinstance(text_before, dict) and isinstance(text_after, dict) and is_int(text_before.get("vocab_size"))):
        return
    ranges = []
    for key, offset in before.items():
        kind = TOKEN_OFFSET.match(key)
        if not kind or not is_int(offset):
            continue
        owner = RANGE_OWNERS.get(kind.group(1), f"{kind.group(1)}_config")
        book = (before.get(owner) or {}).get("codebook_size") if isinstance(before.get(owner), dict) else None
        if not is_int(book) or not isinstance(after.get(owner), dict):
            return
        ranges.append((offset, book, key, owner))
    if not ranges:
        return
    old = new = 0
    for offset, book, key, owner in sorted(ranges):
        if offset < old:
            return  # overlapping ranges: not a layout to redo
        new += min(offset - old, VOCAB if old == 0 else CODEBOOK)
        after[key], old = new, offset + book
        after[owner]["codebook_size"] = min(book, CODEBOOK)
        new += after[owner]["codebook_size"]
    vocab = text_before["vocab_size"]
    if vocab < old:
        return
    text_after["vocab_size"] = new + min(vocab - old, CODEBOOK)


PLACEHOLDERS = ("image_token_index", "image_token_id", "video_token_index", "video_token_id", "audio_token_id",
                "audio_token_index")


def _set_unset_placeholders(d: dict, vocab) -> None:
    """BLIP-2 and InstructBLIP(-Video) defaults leave the image placeholder id None (Voxtral the
    audio one), yet their forward finds the positions by that id (`input_ids ==
    config.image_token_id`), so a default config cannot run; released checkpoints name one. Give a key present as None an id
    near the top of the scaled vocabulary, as the written ids get."""
    vocab = vocab if is_int(vocab) and vocab > 32 else VOCAB
    for key in PLACEHOLDERS:
        if key in d and d[key] is None:
            d[key] = vocab - 1 - (sum(map(ord, key)) % 16)


def _scale_rope_sections(d: dict, per_head: int) -> None:
    """Multimodal RoPE splits half the head dim into sections (Qwen2-VL [16, 24, 24]); they must
    still add up to half the scaled head dim."""
    head_dim = d.get("head_dim")
    if not is_int(head_dim):
        width = next((d[k] for k in ("hidden_size", "d_model") if is_int(d.get(k))), None)
        heads = d.get("num_attention_heads")
        head_dim = width // heads if is_int(width) and is_int(heads) and heads else None
    for name in ("rope_parameters", "rope_scaling"):
        rope = d.get(name)
        if not isinstance(rope, dict) or not head_dim:
            continue
        sections = rope.get("mrope_section")
        if isinstance(sections, list) and sections and all(is_int(v) for v in sections):
            new = [max(1, v // per_head) for v in sections]
            new[-1] = max(1, head_dim // 2 - sum(new[:-1]))
            rope["mrope_section"] = new


def fill_rope_sections(d: dict) -> None:
    """Give a multimodal-RoPE config that names no `mrope_section` one that fits its scaled head.

    The modeling code of Qwen2-VL, GLM-4V and their kin falls back to a hard-coded split sized
    for the full head ([8, 12, 12] for GLM-4V) or to None (HunYuan-VL), so a default config
    cannot run even its own full-size model, let alone a scaled one. Three sections that add up
    to half the rotary dims are what a real checkpoint writes. The caller decides that the config
    class takes the key (its rope validation ignores `mrope_section`); only a missing or None
    value is filled."""
    rope = d.get("rope_parameters")
    if not isinstance(rope, dict) or "rope_type" not in rope or rope.get("mrope_section") is not None:
        return  # (per-layer-type RoPE dicts, and an empty one, are not one RoPE to complete)
    head_dim = d.get("head_dim")
    if not is_int(head_dim):
        width, heads = d.get("hidden_size"), d.get("num_attention_heads")
        head_dim = width // heads if is_int(width) and is_int(heads) and heads else None
    factor = rope.get("partial_rotary_factor", d.get("partial_rotary_factor"))
    factor = factor if isinstance(factor, (int, float)) and not isinstance(factor, bool) and factor > 0 else 1.0
    half = int(head_dim * factor) // 2 if head_dim else 0
    if half < 3:
        return
    rope["mrope_section"] = [half - 2 * (half // 3), half // 3, half // 3]


NOT_A_WIDTH = re.compile(r"(image|patch|position|window|vocab|chunk|frame|sample|length|token|layers?)")


def _scale_dims(d: dict, width: int, heads: int, per_head: int, widths: set[int] = frozenset()) -> None:
    hidden = {d[k] for k in ("hidden_size", "d_model", "n_embd") if is_int(d.get(k))} | set(widths)
    for key, value in list(d.items()):
        if isinstance(value, list) and value and all(is_int(v) for v in value) and (
                key in WIDTH_KEYS or key == "downsample_channels" and value[-1] in hidden):
            # per layer (Gemma 3n FFN); or a neck's conv channels ending at a width of the tree
            # (Unlimited OCR's SAM neck, [512, 1024], feeds its 1024-wide encoder). Detection
            # models' channel lists (RT-DETR's decoder_in_channels) are left as they were.
            d[key] = [scaled(v, width) if v > 0 else v for v in value]
        if not is_int(value) or value <= 0:
            continue
        if key in CHANNEL_KEYS:
            d[key] = max(scaled(value, width), min(value, CHANNEL_FLOOR))
        elif key in WIDTH_KEYS or key.startswith("hidden_size_") or _mirrors_width(key, value, hidden):
            d[key] = scaled(value, width)
        elif HEAD_COUNT.match(key):
            d[key] = scaled(value, heads)
        elif PER_HEAD.match(key):
            d[key] = _even(scaled(value, per_head)) if value > 1 else value


SSM_GROUPS = ("n_groups", "mamba_n_groups")
SSM_HEADS = ("num_heads", "mamba_n_heads", "mamba_num_heads")


def _fit_ssm_groups(d: dict) -> None:
    """Mamba-2 repeats its B/C groups over the SSM heads (num_heads // n_groups): the groups must
    still divide the scaled head count (mamba2: 8 groups were left for 4 heads, 0 repeats)."""
    heads = next((d[k] for k in SSM_HEADS if is_int(d.get(k)) and d[k] > 0), None)
    for key in SSM_GROUPS:
        if heads and is_int(d.get(key)) and d[key] > 0 and heads % d[key]:
            d[key] = math.gcd(d[key], heads)


def _mirrors_width(key: str, value: int, hidden: set[int]) -> bool:
    """A size a config validates against a hidden size of its tree (dots3's adapter_in_dim must
    equal the vision width, adapter_out_dim the text width): any *_dim / *_size key holding
    exactly one of those hidden sizes is that width under another name."""
    if value in hidden and key.endswith("_groups"):  # depthwise conv groups = channels (Mimi's upsample_groups)
        return True
    return value in hidden and key.endswith(("_dim", "_size")) and not NOT_A_WIDTH.search(key)


def _derive_unset_heads(d: dict) -> None:
    """Defaults that cannot build their own model (hunyuan_v1, ministral: head_dim None; nemotron:
    num_key_value_heads None) get the value every config class derives when the key is unset:
    width / heads, and as many KV heads as query heads. Only a key present as None is filled."""
    width = next((d[k] for k in ("hidden_size", "d_model") if is_int(d.get(k))), None)
    heads = d.get("num_attention_heads")
    if not (is_int(width) and is_int(heads) and heads > 0):
        return
    if "head_dim" in d and d["head_dim"] is None and width % heads == 0:
        d["head_dim"] = width // heads
    if "num_key_value_heads" in d and d["num_key_value_heads"] is None:
        d["num_key_value_heads"] = heads


def _even(value: int) -> int:
    return value if value % 2 == 0 or value == 1 else value + 1


def _scale_experts(d: dict) -> None:
    experts = None
    for key in EXPERT_COUNT:
        if is_int(d.get(key)) and d[key] > MAX_EXPERTS:
            d[key] = MAX_EXPERTS
        if is_int(d.get(key)):
            experts = d[key]
    if experts is None:
        return
    for key in TOP_K:
        if is_int(d.get(key)):
            d[key] = max(1, min(d[key], 2, experts))
        elif key in d and d[key] is None:  # a default that cannot run its own MoE (deepseek_v2)
            d[key] = min(2, experts)
    for key in ("n_group", "num_expert_group", "topk_group"):
        if is_int(d.get(key)) and d[key] > 1:
            d[key] = 1
    for key in ("zero_expert_num", "n_shared_experts", "num_shared_experts"):
        if is_int(d.get(key)) and d[key] > 2:
            d[key] = 2


def _scale_vocab(d: dict, vocab: int | None = None) -> None:
    for key, value in list(d.items()):  # vocab_size, per-layer tables (Gemma 3n/4), Marian's decoder_vocab_size
        if (key.startswith("vocab_size") or key.endswith("_vocab_size")) and is_int(value) and value > VOCAB:
            d[key] = VOCAB
        # a hash-embedding table (BLT's encoder_hash_byte_group_vocab, 500,002 rows per hash
        # function): ids are taken modulo its size, so any size is valid
        elif "hash" in key and key.endswith("_vocab") and is_int(value) and value > VOCAB:
            d[key] = VOCAB
    if not is_int(vocab):
        vocab = d["vocab_size"] if is_int(d.get("vocab_size")) else VOCAB
    for i, key in enumerate(TOKEN_ID_KEYS):
        value = d.get(key)
        if is_int(value) and value >= vocab:
            d[key] = min(i, vocab - 1)
        elif isinstance(value, list):
            d[key] = [x if not is_int(x) or x < vocab else min(i, vocab - 1) for x in value]
    for key, value in list(d.items()):  # special-token ids beyond the vocabulary (image_token_id, ...)
        if key.endswith(("_token_id", "_token_index", "_patch_id")) and key not in TOKEN_ID_KEYS and is_int(value) \
                and value >= vocab:  # Molmo2's placeholder is `image_patch_id` (its image_token_id)
            d[key] = vocab - 1 - (sum(map(ord, key)) % 16)
