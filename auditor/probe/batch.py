"""The probe's synthetic batch for a Transformers model, and reading its loss and output.

A default config says what a model is; its forward's signature and its config say what it eats:
token ids, pixels at the vision tower's image size, audio features at the encoder's frame rate,
decoder inputs, and the model-specific inputs some forwards cannot run without (PI0's robot
state, pix2struct's flattened patches, UDOP's token boxes). Every input is one the model really
accepts, so two runs from one seed differ by dropout alone. Kept apart from `build.py`, which
decides *which* model is built; this decides what it is fed.

Imports inside functions (`inspect`) are deferred for start-up time: a run that never takes that
path never pays for them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys

import torch

from auditor.probe import rng
from auditor.probe.errors import BuildError

SEQ_LEN = 32


BATCH = 4


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
    text = text_config_of(config)
    vocab = int(getattr(text, "vocab_size", None) or getattr(config, "vocab_size", None) or 512)
    g = torch.Generator().manual_seed(seed + 1)
    main = getattr(model, "main_input_name", "input_ids")
    params = forward_params(model)
    if main == "inputs":  # SpeechEncoderDecoderModel: whatever its encoder takes
        encoder = model.get_encoder() if callable(getattr(model, "get_encoder", None)) else None
        main = getattr(encoder, "main_input_name", main)
    if main == "inputs" and "pixel_values" in params:  # Perceiver's image classifiers take pixels by name too
        main = "pixel_values"
    kw: dict = {}
    placed = False  # the image's place in the text is already given (no placeholders to count)
    ids = _text_ids(model, vocab, batch, seq, g)
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
    grid = _grid_image(model, batch, g) if "image_grid_thw" in params and not text_only else None
    flex = _naflex(config, batch, g) if "spatial_shapes" in params and not text_only else None
    flat = _patch_grid(config, batch, g) if "image_grid_hw" in params and not text_only else None
    packed = _packed_row(config, batch, g) if "target_sizes" in params and not text_only \
        and "target_sizes" in _required_of(_features_getter(model)[1]) else None
    pooled = _pooled_crops(config, batch, g) if "image_token_pooling" in params and not text_only \
        and "image_token_pooling" in _required_of(_features_getter(model)[1]) else None
    if grid is not None and main in ("input_ids", "pixel_values"):  # Qwen-VL style: patches + a grid per image
        kw["pixel_values"], kw["image_grid_thw"] = grid
        if "image_merge_sizes" in params:  # VideoLLaMA 3: its processor writes each image's merge, no config
            kw["image_merge_sizes"] = torch.full((batch,), _grid_merge(_vision(config)), dtype=torch.long)
    elif flat is not None and main == "input_ids":  # NemotronH Omni: the same patches, (rows, columns) per image
        kw["pixel_values"], kw["image_grid_hw"] = flat[0], flat[1][:, 1:]
    elif packed is not None and main == "input_ids":  # MiniCPM-V: every image's patches in one row
        kw["pixel_values"], kw["target_sizes"] = packed
    elif pooled is not None and main == "input_ids":  # Molmo2: crops of patches, pooled into tokens
        kw["pixel_values"], kw["image_token_pooling"], kw["image_grids"] = pooled
    elif flex is not None and main in ("input_ids", "pixel_values") and "pixel_values" in params:
        kw["pixel_values"], kw["pixel_attention_mask"], kw["spatial_shapes"] = flex
    elif main == "pixel_values" or (main == "input_ids" and "pixel_values" in params and _vision(config)
                                    and not text_only):
        kw["pixel_values"] = _pixels(_vision(config) or _image_encoder(config) or config, batch, g)
        if _features_getter(model)[0] == "video":  # InstructBLIP-Video: (batch, 4 frames, C, H, W)
            kw["pixel_values"] = torch.stack([kw["pixel_values"]] * VIDEO_FRAMES, dim=1)
        elif "pixel_attention_mask" in params and main == "input_ids" and not _is_policy(config):
            kw["pixel_values"] = kw["pixel_values"].unsqueeze(1)  # Idefics 2/3, SmolVLM: (batch, images, C, H, W)
            if _getter_requires(model, "pixel_attention_mask"):
                # Granite Docling's getter picks the real tiles by a (batch, tiles) mask: one, real
                kw["pixel_attention_mask"] = torch.ones(kw["pixel_values"].shape[:2], dtype=torch.bool)
        elif "image_sizes" in params and getattr(config, "image_grid_pinpoints", None) and main == "input_ids":
            _any_resolution(model, kw, batch, g)
        elif "image_sizes" in params and main == "input_ids" and kw["pixel_values"].dim() == 4 \
                and "image_sizes" in _required_of(_features_getter(model)[1]):
            # Pixtral-style towers (Mistral 3, LightOnOCR) need each image's own height and width;
            # LLaVA accepts image_sizes too, but a CLIP tower given them fails (no patch_size)
            height, width = kw["pixel_values"].shape[-2:]
            kw["image_sizes"] = torch.tensor([[height, width]] * kw["pixel_values"].shape[0])
        if "input_ids" in kw and {"image_attention_mask", "perceiver_embeddings"} <= params:
            placed = _cross_attended_image(kw)
        _own_pixels(config, kw, params, batch, g)
    if main == "state" and _is_policy(config):
        placed = _policy_inputs(model, kw, batch, g)
    if main == "flattened_patches" or (main == "input_ids" and "flattened_patches" in params and _vision(config)
                                       and not text_only):  # Kosmos-2.5: text plus Pix2Struct-style patches
        kw["flattened_patches"] = _flattened_patches(_vision(config) or config, batch, g)
    if main == "input_values":
        frames, bins = getattr(config, "max_length", None), getattr(config, "num_mel_bins", None)
        if isinstance(frames, int) and isinstance(bins, int) and frames > 0 and bins > 0:
            # Audio Spectrogram Transformer: a filterbank of (max_length frames, num_mel_bins)
            kw["input_values"] = torch.randn(batch, frames, bins, generator=g)
        else:
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
    image_input = next((n for n in IMAGE_INPUTS if n in kw), None)
    if image_input and "input_ids" in kw and not encoded_image and not placed and main != "flattened_patches":
        _add_image_tokens(model, kw, image_input in required, image_input)
    if "pixel_values" in kw and "input_ids" in kw and "pixel_values_videos" in params and not placed:
        _add_video(model, kw, g)
    if main == "input_ids" and "input_ids" in kw and not text_only and not placed:
        _add_audio(model, kw, params, batch, g)
        _add_own_ids(model, kw, params, batch, seq, g)
    if "mm_token_type_ids" in params and "input_ids" in kw and (
            "mm_token_type_ids" in _required_in_training(model) or any(n in kw for n in PER_IMAGE_SIZES)):
        kw["mm_token_type_ids"] = _modality_types(config, kw)  # its processor writes them beside the grid
    return {k: to_device(v, device) for k, v in kw.items()}


@contextlib.contextmanager
def counting(model):
    """Running a tower only to count its features (image or audio tokens): in eval mode, without
    gradients, every random stream put back after, so the count leaves no trace on the run."""
    flags = [(m, m.training) for m in model.modules()]
    saved = rng.state()
    try:
        model.eval()
        with torch.no_grad():
            yield
    finally:
        for m, training in flags:
            m.training = training
        rng.restore(saved)


def forward_params(model) -> set:
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


def text_config_of(config):
    getter = getattr(config, "get_text_config", None)
    try:
        return getter(decoder=True) if callable(getter) else config
    except Exception:  # noqa: BLE001  some composites cannot name one; the top level will do
        return config


def _vision(config):
    """The vision config, also inside an encoder-decoder's encoder (T5Gemma 2)."""
    return getattr(config, "vision_config", None) or getattr(getattr(config, "encoder", None), "vision_config", None)


def _image_encoder(config):
    """VisionEncoderDecoder keeps the image size in its encoder config (scaled with it)."""
    encoder = getattr(config, "encoder", None)
    return encoder if getattr(encoder, "image_size", None) else None


def _pixels(config, batch: int, g) -> torch.Tensor:
    """Pixels at the config's image size; a convolutional image tokenizer that names no size but
    its downsampling (Apertus 1.5's `spatial_scale_factor`, 16) gets an image of twice that, a
    2 x 2 grid of codes (224 pixels cost it 25 s per encoding on a CPU: the probe timed out)."""
    factor = getattr(config, "spatial_scale_factor", None)
    small = 2 * factor if isinstance(factor, int) and not isinstance(factor, bool) and factor > 0 else None
    size = getattr(config, "image_size", None) or small or 224
    if isinstance(size, dict):
        height, width = size.get("height", 224), size.get("width", 224)
    elif isinstance(size, (list, tuple)):
        height, width = size[0], size[-1]
    else:
        height = width = int(size)
    channels = int(getattr(config, "num_channels", None) or 3)
    return torch.randn(batch, channels, height, width, generator=g)


def _own_pixels(config, kw: dict, params: set, batch: int, g) -> None:
    """A second tower's own view of the image, named after its sub-config: DeepSeek-VL hybrid's
    forward takes `high_res_pixel_values` for its `high_res_vision_config` (a SAM tower), at that
    config's image size, and its image features need both views."""
    for name in sorted(params):
        stem = name[: -len("_pixel_values")]
        if not name.endswith("_pixel_values") or name in kw or not stem:
            continue
        own = getattr(config, f"{stem}_vision_config", None) or getattr(config, f"{stem}_config", None)
        if getattr(own, "image_size", None):
            kw[name] = _pixels(own, batch, g)


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
    text = text_config_of(config)
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
    with counting(model):
        per_image = owner.get_image_features(pixels).pooler_output.shape[1]
    vocab = int(getattr(text_config_of(vlm), "vocab_size", None) or 512)
    ids = kw["input_ids"].masked_fill(kw["input_ids"] == token, min(3, vocab - 1))
    kw["input_ids"] = torch.cat([torch.full((batch, per_image), token, dtype=ids.dtype), ids], dim=1)
    kw["attention_mask"] = torch.ones_like(kw["input_ids"])
    kw["pixel_values"] = pixels.unsqueeze(1)
    kw["pixel_attention_mask"] = torch.ones(batch, 1, dtype=torch.bool)
    return True


PATCH_GRID = 4  # rows and columns of patches in a synthetic image (16 patches, as a scaled ViT sees)


def _any_resolution(model, kw: dict, batch: int, g) -> None:
    """LLaVA-NeXT style "any resolution": one image is its base view plus the tiles of the best
    grid of `image_grid_pinpoints` for its size, (batch, views, C, H, W), with `image_sizes`;
    the model's own `image_size_to_num_patches` says how many views (the scaler shrinks the
    pinpoints with the image)."""
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    count = getattr(sys.modules.get(type(base).__module__), "image_size_to_num_patches", None)
    vision = _vision(model.config)
    size = getattr(vision, "image_size", None)
    if not callable(count) or not isinstance(size, int):
        return
    views = int(count((size, size), model.config.image_grid_pinpoints, size))
    pixels = kw["pixel_values"]
    kw["pixel_values"] = torch.randn(batch, views, *pixels.shape[1:], generator=g)
    kw["image_sizes"] = torch.tensor([[size, size]] * batch, dtype=torch.long)


def _naflex(config, batch: int, g):
    """SigLIP 2's NaFlex tower takes an image as its patches, (batch, patches, channels x patch x
    patch), a mask over them and each image's (rows, columns) of patches, `spatial_shapes`, to
    which it resizes its position embeddings: 4 x 4 patches. None without a patch size."""
    vision = _vision(config) or config
    patch = getattr(vision, "patch_size", None)
    if not isinstance(patch, int) or patch <= 0 or not isinstance(getattr(vision, "num_patches", None), int):
        return None
    channels = getattr(vision, "num_channels", None) or 3
    patches = PATCH_GRID * PATCH_GRID
    pixels = torch.randn(batch, patches, channels * patch * patch, generator=g)
    shapes = torch.tensor([[PATCH_GRID, PATCH_GRID]] * batch, dtype=torch.long)
    return pixels, torch.ones(batch, patches, dtype=torch.long), shapes


def _packed_row(config, batch: int, g):
    """MiniCPM-V's getter requires `target_sizes`, each image's (rows, columns) of patches: its
    processor packs the patches of every image side by side into one NaViT row, (1, channels,
    patch, all patches x patch), which the tower's patch convolution cuts again. One square image
    per text row, its side a multiple of what the merges take away (the tower's window, then the
    merger's kernel `merger_times` times). None without a patch size."""
    vision = _vision(config) or config
    patch = getattr(vision, "patch_size", None)
    patch = patch[-1] if isinstance(patch, (list, tuple)) and patch else patch
    if not isinstance(patch, int) or patch <= 0:
        return None
    side = _merged_away(vision, config)
    side *= -(-PATCH_GRID // side)  # at least PATCH_GRID patches a side
    channels = int(getattr(vision, "num_channels", None) or 3)
    pixels = torch.randn(1, channels, patch, batch * side * side * patch, generator=g)
    return pixels, torch.tensor([[side, side]] * batch, dtype=torch.int32)


POOL = 2  # patches a side that one pooled image token reads (Molmo2's processor pools 2 x 2)


def _pooled_crops(config, batch: int, g):
    """Molmo2's getter requires, beside its crops of flattened patches (crops, patches, channels
    x patch x patch), `image_token_pooling`: for each image token the indices of the patches it
    pools, counted through every crop's patches in turn; and `image_grids`, each image's token
    grids (rows and columns at low and at high resolution) whose sizes split the tokens per image.
    One crop per image at the tower's image size, pooled in 2 x 2 blocks: one low-resolution grid.
    None without a patch size."""
    vision = _vision(config) or config
    patch = getattr(vision, "patch_size", None)
    size = _pixels(vision, 1, torch.Generator()).shape[-1]
    if not isinstance(patch, int) or patch <= 0 or size // patch < POOL:
        return None
    side = size // patch // POOL * POOL
    channels = int(getattr(vision, "num_channels", None) or 3)
    pixels = torch.randn(batch, (size // patch) ** 2, channels * patch * patch, generator=g)
    grid = torch.arange((size // patch) ** 2).view(size // patch, size // patch)[:side, :side]
    blocks = grid.reshape(side // POOL, POOL, side // POOL, POOL).permute(0, 2, 1, 3).reshape(-1, POOL * POOL)
    pooling = torch.cat([blocks + image * (size // patch) ** 2 for image in range(batch)])
    grids = torch.tensor([[side // POOL, side // POOL, 0, 0]] * batch, dtype=torch.long)
    return pixels, pooling, grids


def _merged_away(vision, config) -> int:
    """Patches a side that the window merge (`window_kernel_size`) and the `merger_times` merges
    by `merge_kernel_size` divide: a side they do not divide cannot be reshaped into windows."""
    def first(value) -> int:
        value = value[0] if isinstance(value, (list, tuple)) and value else value
        return value if isinstance(value, int) and value > 0 else 1

    times = getattr(config, "merger_times", None)
    times = times if isinstance(times, int) and times > 0 else 1
    return first(getattr(vision, "window_kernel_size", None)) * first(getattr(config, "merge_kernel_size", None)) ** times


def _grid_image(model, batch: int, g):
    """The first of the grid layouts below that the model's image getter runs on; None when the
    vision config does not say its patch size. Only the getter can tell them apart: all take
    `(pixel_values, image_grid_thw)`. Patches flattened (Qwen-VL), patches as small images (Kimi
    K2.5, PaddleOCR-VL), or one row per image token (Inkling 2)."""
    layouts = [f(model.config, batch, g) for f in (_patch_grid, _token_grid)]
    layouts = [layout for layout in layouts if layout is not None]
    unflattened = _unflattened(model.config, *layouts[0]) if layouts else None
    if unflattened is not None:
        layouts.insert(1, unflattened)
    getter = _features_getter(model)[1]
    if len(layouts) < 2 or getter is None:
        return layouts[0] if layouts else None
    for pixels, grid in layouts:
        try:
            with counting(model):
                getter(pixels, grid)
        except Exception:  # noqa: BLE001  not this layout: try the next
            continue
        return pixels, grid
    return layouts[0]


def _unflattened(config, pixels, grid):
    """Kimi K2.5 cuts the patches but leaves each one an image, (patches, channels, patch,
    patch), for its patch convolution. None where a patch spans frames too (a temporal patch)."""
    vision = _vision(config)
    channels = getattr(vision, "in_channels", None) or getattr(vision, "num_channels", None) or 3
    patch = getattr(vision, "patch_size", None)
    patch = patch[-1] if isinstance(patch, (list, tuple)) and patch else patch
    if not isinstance(patch, int) or not isinstance(channels, int) or pixels.shape[-1] != channels * patch * patch:
        return None
    return pixels.reshape(pixels.shape[0], channels, patch, patch), grid


def _token_grid(config, batch: int, g):
    """Inkling 2 takes one row per image token, (tokens, patch x merge, patch x merge, channels),
    the merge size's square of patches as pixels, and counts `image_grid_thw` in image tokens:
    2 x 2 tokens per image."""
    vision = _vision(config)
    patch, merge = getattr(vision, "patch_size", None), getattr(vision, "spatial_merge_size", None)
    channels = getattr(vision, "num_channels", None) or 3
    if not all(isinstance(v, int) and v > 0 for v in (patch, merge, channels)):
        return None
    side = 2
    grid = torch.tensor([[1, side, side]] * batch, dtype=torch.long)
    return torch.randn(batch * side * side, patch * merge, patch * merge, channels, generator=g), grid


def _kernel_side(kernel) -> int | None:
    """A square merge kernel's side (Kimi K2.5's `merge_kernel_size`, [2, 2])."""
    if isinstance(kernel, (list, tuple)) and kernel and all(isinstance(v, int) and v == kernel[0] for v in kernel):
        return kernel[0]
    return None


def _patch_grid(config, batch: int, g):
    """Qwen-VL style towers (Qwen2-VL, GLM-4V, Ernie 4.5 VL, ...) take one image as its patches,
    already cut and flattened by the processor, (patches, channels x temporal patch x patch x
    patch), with `image_grid_thw` = (temporal patches, rows, columns) per image (NemotronH Omni's
    RADIO tower: the same patches, with `image_grid_hw` = (rows, columns)); rows and columns
    are multiples of the merge size, whose square of patches makes one image token. One temporal
    patch of 2 merge sizes square per image: 4 image tokens each. (MuSE Glimmer names its
    temporal patch `patch_temporal`.)"""
    vision = _vision(config)
    patch = getattr(vision, "patch_size", None)
    if isinstance(patch, (list, tuple)) and patch:
        patch = patch[-1]
    if not isinstance(patch, int) or patch <= 0:
        return None
    merge = _grid_merge(vision)
    temporal = getattr(vision, "temporal_patch_size", None) or getattr(vision, "patch_temporal", None) or 1
    channels = getattr(vision, "in_channels", None) or getattr(vision, "num_channels", None) or 3
    if not all(isinstance(v, int) and v > 0 for v in (merge, temporal, channels)):
        return None
    side = 2 * merge
    grid = torch.tensor([[1, side, side]] * batch, dtype=torch.long)
    pixels = torch.randn(batch * side * side, channels * temporal * patch * patch, generator=g)
    return pixels, grid


def _grid_merge(vision):
    """The side of the square of patches that makes one image token: the vision config's merge
    size or square merge kernel (Kimi K2.5), else 1 (VideoLLaMA 3's processor merges an image's
    patches by 1)."""
    return getattr(vision, "spatial_merge_size", None) or getattr(vision, "merge_size", None) or _kernel_side(
        getattr(vision, "merge_kernel_size", None)) or 1


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


def _text_ids(model, vocab: int, batch: int, seq: int, g):
    """Random text ids, none of them a VQ image code: Chameleon sets the logits of every image
    code to the dtype's minimum (text generation may not emit one), so a label drawn there makes
    the loss infinite. A real text batch holds no image codes either (Chameleon and Emu3 name
    theirs in `vocabulary_mapping.image_tokens`)."""
    low = min(3, vocab - 1)
    mapping = getattr(getattr(model, "model", model), "vocabulary_mapping", None)
    try:
        codes = set(mapping.image_tokens) if mapping is not None else set()
    except Exception:  # noqa: BLE001  a map that cannot list its codes reserves none
        codes = set()
    allowed = [i for i in range(low, vocab) if i not in codes] if codes else []
    if not allowed:
        return torch.randint(low, vocab, (batch, seq), generator=g)
    pool = torch.tensor(allowed)
    return pool[torch.randint(0, len(pool), (batch, seq), generator=g)]


def _labels(arch: str, config, kw: dict, ids, batch: int, seq: int, g):
    num_labels = int(getattr(config, "num_labels", 2) or 2)
    if re.search(r"For(Sequence|Image)Classification[A-Z]?\w*$", arch):  # Perceiver's ...Learned, ...Fourier
        return torch.randint(0, num_labels, (batch,), generator=g)
    if arch.endswith("ForTokenClassification"):
        return torch.randint(0, num_labels, (batch, seq), generator=g)
    if arch == "base model" or "input_ids" not in kw and not getattr(config, "is_encoder_decoder", False):
        return None
    if "decoder_input_ids" not in kw:
        return ids.clone()
    decoder = kw["decoder_input_ids"]  # per channel (Dia): one row of labels per batch row and channel
    return decoder.transpose(1, 2).reshape(-1, decoder.shape[1]) if decoder.dim() == 3 else decoder.clone()


IMAGE_INPUTS = ("pixel_values", "flattened_patches")  # an image as pixels, or as Pix2Struct-style patches


def _add_image_tokens(model, kw: dict, image_required: bool = False, image: str = "pixel_values") -> None:
    """Multimodal decoders match one placeholder token per image feature: ask the model how many
    features the synthetic image makes, and write that many placeholders into the text. When it
    cannot say, the probe runs the text path only (the language model's dropout still runs),
    unless the forward cannot run without the image (BLIP, BLIP-2 with no placeholder token:
    the image features are prepended to the text, so the text stays as it is). Kosmos-2 has no
    placeholder id: its `image_embeds_position_mask` marks the positions the features replace.
    `image` names the input that holds the image: pixels, or Kosmos-2.5's flattened patches."""
    config = model.config
    by_mask = "image_embeds_position_mask" in forward_params(model)
    kind, getter = _features_getter(model)
    token = next((getattr(config, n) for n in (f"{kind}_token_id", f"{kind}_token_index")
                  if isinstance(getattr(config, n, None), int)), None)
    model._probe_image_dropped = ""
    declared = any(hasattr(config, n) for n in (f"{kind}_token_id", f"{kind}_token_index"))
    if not declared and not by_mask:
        return  # no placeholder at all (GIT): the model joins the image features to the text itself
    try:
        if getter is None:
            raise BuildError("the model has no get_image_features to count its image tokens")
        with counting(model):
            out = getter(**_accepted(getter, kw, image))
        feats = getattr(out, "pooler_output", None)
        feats = out if feats is None else feats
        if isinstance(feats, (list, tuple)):
            rows = sum(f.reshape(-1, f.shape[-1]).shape[0] for f in feats)
        else:
            feats = first_tensor(feats) if not torch.is_tensor(feats) else feats
            rows = feats.reshape(-1, feats.shape[-1]).shape[0]
        images = next((kw[n].shape[0] for n in PER_IMAGE_SIZES if n in kw), kw[image].shape[0])
        per_image = rows // images
    except Exception as exc:  # noqa: BLE001  no way to count image tokens: text only
        per_image, why = None, " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
    else:
        why = f"{per_image} image features per image" if per_image else "no image features"
    if token is None and not by_mask or per_image is None or per_image <= 0 or per_image > 4096:
        if not image_required:
            kw.pop(image)
            for name in [n for n in kw if n in PER_IMAGE_SIZES or n.endswith(("_pixel_values", "_token_pooling"))]:
                kw.pop(name)
            model._probe_image_dropped = (f"its image tokens could not be counted ({why})" if per_image is None
                                          else f"no placeholder token to place its image ({why})")
        return
    ids = kw["input_ids"]
    batch, seq = ids.shape
    vocab = int(getattr(text_config_of(config), "vocab_size", 512) or 512)
    text = ids.masked_fill(ids == token, min(3, vocab - 1)) if token is not None else ids
    image = torch.full((batch, per_image), min(3, vocab - 1) if token is None else token, dtype=ids.dtype)
    kw["input_ids"] = torch.cat([text[:, :1], image, text[:, 1:]], dim=1)
    if by_mask:
        kw["image_embeds_position_mask"] = torch.cat(
            [torch.zeros(batch, 1), torch.ones(batch, per_image), torch.zeros(batch, seq - 1)], dim=1).long()
    if "attention_mask" in kw:
        kw["attention_mask"] = torch.ones_like(kw["input_ids"])
    if "labels" in kw and "decoder_input_ids" not in kw:  # an encoder-decoder's labels are the decoder's
        kw["labels"] = kw["input_ids"].clone()


PER_IMAGE_SIZES = ("image_grid_thw", "image_grid_hw", "target_sizes", "image_grids")  # one row per image, where pixels are packed patches

AUDIO_TOKENS = ("audio_token_id", "audio_token_index")
AUDIO_INPUTS = ("input_features", "input_values")


def _add_audio(model, kw: dict, params: set, batch: int, g) -> None:
    """Audio-LLMs (Granite Speech, Voxtral, GLM-ASR, AudioFlamingo 3, ...) place one placeholder
    per audio embedding, as images do: audio features shaped for the audio encoder's config (mel
    bins by frames, else frames by features), counted through `get_audio_features`, then that
    many `audio_token_id`s written into the text. A mask the feature path requires is all ones.
    When the audio cannot be counted, it is left out and `_probe_audio_dropped` says why."""
    config = model.config
    name = next((n for n in AUDIO_INPUTS if n in params and n not in kw), None)
    audio = next((getattr(config, n) for n in AUDIO_SUB_CONFIGS if getattr(config, n, None) is not None), None)
    if audio is None and name == "input_values":  # raw waveform: its encoders' configs have other names
        audio = next((v for k, v in vars(config).items() if k.endswith("_config") and "encoder" in k), None)
    token = next((getattr(config, n) for n in AUDIO_TOKENS if isinstance(getattr(config, n, None), int)), None)
    # the inner model's getter first: the outer one often takes (*args, **kwargs), hiding what it needs
    getter = next((getattr(o, "get_audio_features", None) for o in (getattr(model, "model", None), model)
                   if o is not None and callable(getattr(o, "get_audio_features", None))), None)
    if name is None or audio is None:
        return
    model._probe_audio_dropped = ""
    if token is None:
        model._probe_audio_dropped = "no audio placeholder token to place its audio"
        return
    getter = getter or _output_length_counter(model)
    if getter is None:
        model._probe_audio_dropped = "no get_audio_features (nor encoder output lengths) to count its audio tokens"
        return
    required = _required_of(getter)
    why = ""
    for feats, frames in _audio_candidates(audio, name, batch, g):
        trial = {name: feats}
        for other in sorted(required - {name}) + [m for m in AUDIO_MASKS if m in params and m not in required]:
            if other.endswith("mask"):
                trial[other] = torch.ones(feats.shape[0], frames, dtype=torch.long)
            elif other.endswith("_lengths"):
                trial[other] = _feature_lengths(audio, other, feats.shape[0], frames)
            elif other == "input_ids":
                trial[other] = kw["input_ids"]
        try:
            rows = _audio_rows(model, getter, trial, required, name, batch)
        except _PlaceholdersFirst as first:
            # MusicFlamingo's getter checks the text's placeholders itself ("tokens: 0, features:
            # 64"): place that many and ask again
            placed = dict(kw)
            _place(model, placed, token, first.rows)
            trial["input_ids"] = placed["input_ids"]
            try:
                rows = _audio_rows(model, getter, trial, required, name, batch)
            except Exception as exc:  # noqa: BLE001  this layout does not fit either
                why = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
                continue
        except Exception as exc:  # noqa: BLE001  try the other layout, else leave the audio out
            why = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            continue
        if 0 < rows <= 4096:
            kw.update({k: v for k, v in trial.items() if k != "input_ids"})
            _place(model, kw, token, rows)
            return
    model._probe_audio_dropped = f"its audio tokens could not be counted ({why or 'no audio embeddings'})"


def _feature_lengths(audio, name: str, rows: int, frames: int) -> torch.Tensor:
    """Each row's full length, for a getter that requires it: Dots3 Note's `chunk_sample_lengths`
    counts the waveform samples a row of features stands for, `hop_length` per frame (its conv
    stem divides them back into frames); a length in frames is the frames."""
    hop = getattr(audio, "hop_length", None)
    per_frame = hop if "sample" in name and isinstance(hop, int) and hop > 0 else 1
    return torch.full((rows,), frames * per_frame, dtype=torch.long)


class _PlaceholdersFirst(Exception):
    def __init__(self, rows: int):
        super().__init__(rows)
        self.rows = rows


FEATURE_COUNT = re.compile(r"tokens: 0, features: (\d+)")


def _audio_rows(model, getter, trial: dict, required: set, name: str, batch: int) -> int:
    """Audio embeddings per row, from the getter's output."""
    try:
        with counting(model):
            out = getter(**{k: v for k, v in trial.items() if k in required or k == name or k in _params_of(getter)})
    except ValueError as exc:
        found = FEATURE_COUNT.search(str(exc))
        if found and "input_ids" in trial and int(found.group(1)) % batch == 0:
            raise _PlaceholdersFirst(int(found.group(1)) // batch) from None
        raise
    feats = getattr(out, "pooler_output", None)
    feats = out if feats is None else feats
    if isinstance(feats, (list, tuple)) and len(feats) == batch and all(torch.is_tensor(f) for f in feats):
        # one tensor per clip (Apertus 1.5 tokenizes each clip at its own length): a row's is one clip's
        return sum(f.reshape(-1, f.shape[-1]).shape[0] for f in feats) // batch
    if not torch.is_tensor(feats):
        feats = first_tensor(feats)
    return feats.shape[1] if feats.dim() == 3 else feats.shape[0] // batch


AUDIO_MASKS = ("feature_attention_mask",)  # masks a forward cannot run audio without, though optional


def _output_length_counter(model):
    """Qwen2-Audio has no get_audio_features: its forward asks its audio tower how many embeddings
    `feature_attention_mask.sum(-1)` frames make (`_get_feat_extract_output_lengths`)."""
    base = getattr(model, "model", model)
    tower = getattr(base, "audio_tower", None) or getattr(model, "audio_tower", None)
    lengths = getattr(tower, "_get_feat_extract_output_lengths", None)
    if not callable(lengths):
        return None

    def count(input_features, feature_attention_mask):
        out = lengths(feature_attention_mask.sum(-1))
        out = out[-1] if isinstance(out, tuple) else out
        return torch.zeros(int(out.sum()), 1)

    return count


def _params_of(fn) -> set:
    import inspect

    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def _bins(audio) -> list:
    """Feature widths the audio config may mean, in order: Fun-ASR stacks frames (`input_size` =
    mel bins x stacked frames), others name mel bins, an input dim or a feature size."""
    found = []
    for name in ("input_size", "num_mel_bins", "input_dim", "feature_size"):
        value = getattr(audio, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0 and value not in found:
            found.append(value)
    return found or [80]


WAVEFORM = 4000


def _waveform_length(audio) -> int:
    """4000 samples, rounded up to a whole number of audio tokens where the encoder takes only
    whole ones (MuSE Spark: a multiple of its `samples_per_token`, 1920, as its extractor pads)."""
    per_token = getattr(audio, "samples_per_token", None)
    if isinstance(per_token, int) and not isinstance(per_token, bool) and per_token > 0:
        return -(-WAVEFORM // per_token) * per_token
    return WAVEFORM


def _audio_candidates(audio, name: str, batch: int, g) -> list:
    """(features, frames) layouts to try: a waveform flat or with one channel; mel features as
    (batch, bins, frames) or (batch, frames, bins) for each width the config may mean."""
    if name == "input_values":
        samples = _waveform_length(audio)
        return [(torch.randn(batch, samples, generator=g), samples),
                (torch.randn(batch, 1, samples, generator=g), samples)]
    positions, window = getattr(audio, "max_source_positions", None), getattr(audio, "n_window", None)
    frames = 2 * int(positions) if isinstance(positions, int) and positions > 0 else 64
    if isinstance(window, int) and window > 0:  # Qwen3-ASR pads its frames to whole windows of 2 x n_window
        frames = 2 * window
    out = []
    for bins in _bins(audio):
        out += [(torch.randn(batch, bins, frames, generator=g), frames), (torch.randn(batch, frames, bins, generator=g), frames)]
    return out


def _required_of(fn) -> set:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in params if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _place(model, kw: dict, token: int, count: int) -> None:
    """`count` placeholders after the first token of every row (labels and mask follow)."""
    ids = kw["input_ids"]
    batch = ids.shape[0]
    vocab = int(getattr(text_config_of(model.config), "vocab_size", 512) or 512)
    text = ids.masked_fill(ids == token, min(3, vocab - 1))
    kw["input_ids"] = torch.cat([text[:, :1], torch.full((batch, count), token, dtype=ids.dtype), text[:, 1:]], dim=1)
    if "attention_mask" in kw:
        kw["attention_mask"] = torch.ones_like(kw["input_ids"])
    if "labels" in kw and "decoder_input_ids" not in kw:  # an encoder-decoder's labels are the decoder's
        kw["labels"] = kw["input_ids"].clone()


def _add_own_ids(model, kw: dict, params: set, batch: int, seq: int, g) -> None:
    """A tower fed its own token ids, named after its sub-config: Evolla's protein encoder reads
    `protein_input_ids` (its SaProt vocabulary, `protein_encoder_config`) and never runs without."""
    config = model.config
    for name in sorted(params):
        if not name.endswith("_input_ids") or name in kw or name.startswith(("decoder_", "qformer_")):
            continue
        stem = name[: -len("_input_ids")]
        own = getattr(config, f"{stem}_encoder_config", None) or getattr(config, f"{stem}_config", None)
        vocab = getattr(own, "vocab_size", None)
        if not isinstance(vocab, int) or vocab < 4:
            continue
        kw[name] = torch.randint(min(3, vocab - 1), vocab, (batch, seq), generator=g)
        if f"{stem}_attention_mask" in params:
            kw[f"{stem}_attention_mask"] = torch.ones_like(kw[name])


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
VIDEO_TOKENS = ("video_token_id", "video_token_index")


def _add_video(model, kw: dict, g) -> None:
    """Video-LLaVA encodes videos with a tower of their own (`video_tower`), which images never
    reach: a video of VIDEO_FRAMES frames shaped as the batch's image, (batch, frames, C, H, W),
    with one `video_token_id` per feature `get_video_features` returns. Only for a getter that
    needs the frames alone and an image of whole frames: Qwen-VL style videos come as patches
    with a `video_grid_thw`, which this does not synthesize. When the video cannot be counted it
    is left out, and the rest of the batch is as it was."""
    config = model.config
    token = next((getattr(config, n) for n in VIDEO_TOKENS if isinstance(getattr(config, n, None), int)), None)
    getter = next((getattr(o, "get_video_features", None) for o in (getattr(model, "model", None), model)
                   if o is not None and callable(getattr(o, "get_video_features", None))), None)
    image = kw["pixel_values"]
    if token is None or getter is None or image.dim() != 4 or "image_grid_thw" in kw \
            or _required_of(getter) != {"pixel_values_videos"} or "video_grid_thw" in _params_of(getter):
        return
    video = torch.randn(image.shape[0], VIDEO_FRAMES, *image.shape[1:], generator=g)
    try:
        with counting(model):
            out = getter(pixel_values_videos=video)
        feats = getattr(out, "pooler_output", None)
        feats = first_tensor(out) if feats is None else feats
        rows = feats.reshape(-1, feats.shape[-1]).shape[0] // image.shape[0]
    except Exception:  # noqa: BLE001  a video layout of its own: the batch stays without video
        return
    if 0 < rows <= 4096:
        kw["pixel_values_videos"] = video
        _place(model, kw, token, rows)


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
    only video (InstructBLIP-Video), or ("image", None). Of the outer and the inner model's
    getters, the one that requires the most inputs, the outer on a tie: an outer getter that
    passes them on through (*args, **kwargs) (MiniCPM-V) or **kwargs (VideoLLaMA 3's
    `image_merge_sizes`) hides what the inner one cannot run without."""
    for kind in ("image", "video"):
        found = [getattr(owner, f"get_{kind}_features", None) for owner in (model, getattr(model, "model", None))
                 if owner is not None]
        found = [getter for getter in found if callable(getter)]
        if found:
            return kind, max(found, key=lambda getter: len(_required_of(getter)))
    return "image", None


def _getter_requires(model, name: str) -> bool:
    """Whether the image getter cannot run without `name`: the inner model's getter says so where
    the outer one passes it on as optional (Granite Docling's `pixel_attention_mask`)."""
    return any(name in _required_of(getattr(owner, "get_image_features", None))
               for owner in (model, getattr(model, "model", None))
               if owner is not None and callable(getattr(owner, "get_image_features", None)))


BESIDE_THE_IMAGE = ("_input_ids", "_attention_mask", "_grid_thw", "_grid_hw", "_sizes", "_shapes", "_pixel_values",
                    "_token_pooling", "_grids")


def _accepted(fn, kw: dict, first: str) -> dict:
    """`first` plus the other inputs of the batch that `fn` names (InstructBLIP's image features
    need its qformer_input_ids; MiniCPM-V its `target_sizes`, LFM2-VL its `spatial_shapes`,
    DeepSeek-VL hybrid its `high_res_pixel_values`)."""
    import inspect

    try:
        names = set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        names = set()
    return {first: kw[first], **{k: v for k, v in kw.items()
                                 if k in names and k != first
                                 and k.endswith(BESIDE_THE_IMAGE)
                                 and not k.startswith("decoder_")}}


def to_device(x, device):
    if torch.is_tensor(x):
        return x.to(device)
    if isinstance(x, tuple):
        return tuple(to_device(v, device) for v in x)
    if isinstance(x, list):
        return [to_device(v, device) for v in x]
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    return x
