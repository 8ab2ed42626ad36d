"""The structure-preserving builder (issue #19): what scaling keeps, one-line refusals, and a
deterministic sample of 20 model types, one or more per family the issue names, that must
complete a probe of their default config. The full sweep is `bench/probe_sweep.py` (by hand)."""

import json
import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from click.testing import CliRunner
from transformers import CONFIG_MAPPING

import tests.probe_helpers  # noqa: F401  (one thread)
from auditor.probe.command import probe
from auditor.probe.session import CannotProbe, ProbeRequest, execute
from auditor.probe.shrink import scale_config_dict


def scaled(model_type: str) -> dict:
    return scale_config_dict(CONFIG_MAPPING[model_type]().to_dict())


# ------------------------------------------------------------------ what scaling keeps (no model)

def test_hybrid_keeps_a_layer_of_every_kind():
    d = scaled("qwen3_next")
    assert set(d["layer_types"]) == {"linear_attention", "full_attention"}
    assert len(d["layer_types"]) == d["num_hidden_layers"] <= 12
    jamba = scaled("jamba")  # attention on layer 4 of every 8: layer 4 must exist
    assert jamba["num_hidden_layers"] > jamba["attn_layer_offset"]
    assert set(scaled("gemma3_text")["layer_types"]) == {"sliding_attention", "full_attention"}
    recurrent = scaled("recurrent_gemma")
    assert recurrent["num_hidden_layers"] >= len(recurrent["block_types"])


def test_mla_rope_dims_stay_consistent():
    for model_type in ("deepseek_v3", "longcat_flash", "youtu"):
        d = scaled(model_type)
        assert d["qk_head_dim"] == d["qk_rope_head_dim"] + d["qk_nope_head_dim"], model_type
        assert d["qk_rope_head_dim"] % 2 == 0 and d["kv_lora_rank"] < 1024


def test_head_and_mamba_dims_agree_with_the_width():
    codegen = scaled("codegen")
    assert codegen["rotary_dim"] <= codegen["n_embd"] // codegen["n_head"]
    bamba = scaled("bamba")
    assert bamba["mamba_n_heads"] * bamba["mamba_d_head"] == bamba["mamba_expand"] * bamba["hidden_size"]
    llama = scaled("llama")
    assert llama["hidden_size"] == 64 and llama["num_attention_heads"] == 4
    assert llama["num_attention_heads"] % llama["num_key_value_heads"] == 0


def test_moe_keeps_two_or_more_experts_and_top_k_in_range():
    for model_type in ("mixtral", "qwen3_moe", "deepseek_v3", "deepseek_v2"):
        d = scaled(model_type)
        experts = next(d[k] for k in ("num_local_experts", "num_experts", "n_routed_experts") if k in d)
        assert 2 <= experts <= 4
        assert 1 <= d["num_experts_per_tok"] <= experts


def test_sub_configs_agree_and_placeholders_fit_the_vocabulary():
    pali = scaled("paligemma")
    assert pali["vision_config"]["projection_dim"] == pali["text_config"]["hidden_size"]
    llava = scaled("llava")
    assert llava["image_token_index"] < llava["text_config"]["vocab_size"]
    assert llava["vision_config"]["image_size"] == 4 * llava["vision_config"]["patch_size"]
    assert scaled("whisper")["max_source_positions"] == 32
    assert scaled("llama")["use_cache"] is False


def test_per_layer_vocabulary_is_scaled_and_kv_shared_layers_keep_every_kind():
    """Gemma 3n/4 timed out: a 262144-entry embedding per layer was left at full size."""
    for model_type in ("gemma3n_text", "gemma4_text"):
        d = scaled(model_type)
        assert d["vocab_size_per_layer_input"] <= 512 and d["hidden_size_per_layer_input"] <= 16
    ffn = scaled("gemma3n_text")["intermediate_size"]  # one FFN width per layer, each scaled
    assert isinstance(ffn, list) and max(ffn) == 8 * 64  # 16384 for width 2048, as scaled as the width
    d = scaled("gemma3n_text")  # the KV-sharing tail is shorter than the model, and both have every kind
    shared, layers = d["num_kv_shared_layers"], d["num_hidden_layers"]
    assert 0 < shared < layers
    assert set(d["layer_types"][: layers - shared]) == set(d["layer_types"][layers - shared:]) \
        == {"sliding_attention", "full_attention"}
    CONFIG_MAPPING["gemma3n_text"](**{k: v for k, v in d.items() if k != "model_type"})


def test_sizes_validated_against_a_hidden_size_scale_with_it():
    """dots3: adapter_in_dim must equal the vision width, adapter_out_dim the text width."""
    d = scaled("dots3_note")
    vision, audio, text = d["vision_config"], d["audio_config"], d["text_config"]
    assert vision["adapter_in_dim"] == vision["hidden_size"]
    assert vision["adapter_out_dim"] == audio["adapter_out_dim"] == text["hidden_size"]
    assert audio["adapter_input_size"] == audio["hidden_size"]
    CONFIG_MAPPING["dots3_note"](**{k: v for k, v in d.items() if k != "model_type"})
    codec = scaled("kyutai_speech_to_text")["codec_config"]  # depthwise groups = channels
    assert codec["upsample_groups"] == codec["hidden_size"] < 512
    # what is not a width keeps its value even when it happens to equal one
    cfg = {"model_type": "x", "hidden_size": 1024, "image_size": 1024, "max_window_size": 1024}
    out = scale_config_dict(cfg)
    assert out["hidden_size"] == 64 and out["max_window_size"] == 1024


def test_a_sub_config_without_a_width_does_not_pin_the_tree_at_full_size():
    """granite_speech: its encoder config names no hidden_size, which made the whole tree's
    width divisor 1 and left the 4096-wide text model at full size (483M parameters)."""
    d = scaled("granite_speech")
    assert d["text_config"]["hidden_size"] <= 512 and d["projector_config"]["hidden_size"] < 768
    assert scale_config_dict({"model_type": "x", "sub": {"model_type": "y", "hidden_dim": 32}})["sub"] == \
        {"model_type": "y", "hidden_dim": 32, "use_cache": False}


def test_validated_mamba_width_and_layer_split_are_kept():
    """falcon_h1: mamba_d_ssm must equal mamba_n_heads x mamba_d_head (it was left at 1024);
    dory: n_input + n_recurrent + n_output layers must equal the layer count, and its config.json
    counts attention and MLP blocks as two layers each (every count even)."""
    falcon = scaled("falcon_h1")
    assert falcon["mamba_d_ssm"] == falcon["mamba_n_heads"] * falcon["mamba_d_head"] < 1024
    CONFIG_MAPPING["falcon_h1"](**{k: v for k, v in falcon.items() if k != "model_type"})
    dory = scaled("dory")
    parts = [dory[k] for k in ("n_input_layers", "n_recurrent_layers", "n_output_layers")]
    assert sum(parts) == dory["num_hidden_layers"] < 72 and min(parts) >= 2
    assert all(p % 2 == 0 for p in parts) and "full_attention" in dory["layer_types"]
    built = CONFIG_MAPPING["dory"](**{k: v for k, v in dory.items() if k != "model_type"})
    assert set(built.layer_types) == {"sliding_attention", "full_attention"}
    odd = scale_config_dict({"model_type": "x", "num_hidden_layers": 30, "n_a_layers": 3, "n_b_layers": 27})
    assert odd["n_a_layers"] + odd["n_b_layers"] == odd["num_hidden_layers"] and odd["n_a_layers"] >= 1


def test_mamba2_groups_divide_the_scaled_ssm_heads():
    """mamba2: n_groups 8 was kept while num_heads became 4 (repeat_interleave by 0)."""
    for model_type, heads_key, dim_key, groups_key in (("mamba2", "num_heads", "head_dim", "n_groups"),
                                                       ("nemotron_h", "mamba_num_heads", "mamba_head_dim", "n_groups"),
                                                       ("bamba", "mamba_n_heads", "mamba_d_head", "mamba_n_groups")):
        d = scaled(model_type)
        assert d[heads_key] % d[groups_key] == 0 and d[heads_key] < 128, model_type
        expand = d.get("expand") or d.get("mamba_expand") or 2
        assert d[heads_key] * d[dim_key] == expand * d["hidden_size"], model_type


def test_every_vocabulary_is_scaled_and_unsynthesizable_labels_are_left_out():
    """marian: decoder_vocab_size (58101) was left beside a 512 vocab_size (view(-1, 512) failed);
    musicgen wants labels (batch, seq, codebooks) and GIT labels for the text after the image:
    such heads are driven without labels, and the probe's description says so."""
    import torch

    from auditor.probe.batch import hf_batch
    from auditor.probe.build import build_hf

    marian = scaled("marian")
    assert marian["decoder_vocab_size"] == marian["vocab_size"] == 512
    model, arch = build_hf({"model_type": "musicgen", "architectures": ["MusicgenForCausalLM"]}, None,
                           full_size=False, seed=0, device="cpu", dtype=torch.float32)
    assert model._probe_no_labels and "labels" not in hf_batch(model, arch, 0, "cpu")
    llama, arch = build_hf({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}, None,
                           full_size=False, seed=0, device="cpu", dtype=torch.float32)
    assert not llama._probe_no_labels and "labels" in hf_batch(llama, arch, 0, "cpu")


def test_unset_head_dim_and_kv_heads_are_derived_as_the_config_classes_do():
    """hunyuan_v1_dense / ministral defaults hold head_dim None, nemotron num_key_value_heads None:
    their models could not be built (TypeError) until filled as LlamaConfig fills them."""
    for model_type in ("hunyuan_v1_dense", "ministral"):
        d = scaled(model_type)
        assert d["head_dim"] == d["hidden_size"] // d["num_attention_heads"], model_type
    nemotron = scaled("nemotron")
    assert nemotron["num_key_value_heads"] == nemotron["num_attention_heads"]
    out = scale_config_dict({"model_type": "x", "hidden_size": 64, "num_attention_heads": 4})
    assert "head_dim" not in out and "num_key_value_heads" not in out  # absent keys stay absent


def test_text_only_class_of_a_composite_type_gets_the_text_config():
    """emu3, llama4, qwen3_5 in the causal-LM mapping: Emu3ForCausalLM and the like were given the
    composite config (AttributeError: no pad_token_id / vocab_size); they take its text config."""
    import transformers

    from auditor.probe.build import _config_for_class

    for model_type, arch in (("qwen3_5", "Qwen3_5ForCausalLM"), ("emu3", "Emu3ForCausalLM"),
                             ("llama4", "Llama4ForCausalLM")):
        cls = getattr(transformers, arch)
        composite = CONFIG_MAPPING[model_type]()
        assert not isinstance(composite, cls.config_class)
        assert isinstance(_config_for_class(cls, composite), cls.config_class), model_type
    llama = CONFIG_MAPPING["llama"]()
    assert _config_for_class(transformers.LlamaForCausalLM, llama) is llama
    llava = CONFIG_MAPPING["llava"]()  # a composite class keeps its composite config
    assert _config_for_class(transformers.LlavaForConditionalGeneration, llava) is llava


def small_config(model_type: str, keep_head_dim: bool = False) -> dict:
    """The dict the probe's builder hands to the config class (scaled, then completed)."""
    from auditor.probe.build import _fill_rope_sections

    cls = CONFIG_MAPPING[model_type]
    d = scale_config_dict(cls().to_dict(), keep_head_dim=keep_head_dim)
    _fill_rope_sections(d, cls)
    return d


def rotary_half(d: dict) -> int:
    head = d.get("head_dim") or d["hidden_size"] // d["num_attention_heads"]
    factor = d["rope_parameters"].get("partial_rotary_factor") or 1.0
    return int(head * factor) // 2


def test_mrope_sections_missing_from_the_config_are_filled_to_fit_the_head():
    """glm4v, glm46v, glm4v_moe (the modeling default [8, 12, 12]) and hunyuan_vl (None) could not
    run: the sections must add up to half the scaled rotary dims."""
    for model_type in ("glm4v", "glm46v", "glm4v_moe", "hunyuan_vl"):
        for keep in (False, True):
            text = small_config(model_type, keep)["text_config"]
            sections = text["rope_parameters"]["mrope_section"]
            assert len(sections) == 3 and min(sections) >= 1, model_type
            assert sum(sections) == rotary_half(text), (model_type, keep)
    qwen = small_config("qwen2_vl")["text_config"]  # written sections are scaled, never replaced
    assert sum(qwen["rope_parameters"]["mrope_section"]) == rotary_half(qwen)
    written = {"model_type": "qwen2_vl_text", "hidden_size": 1024, "num_attention_heads": 8,
               "rope_parameters": {"rope_type": "default", "mrope_section": [16, 24, 24]}}
    from auditor.probe.shrink import fill_rope_sections
    fill_rope_sections(written)
    assert written["rope_parameters"]["mrope_section"] == [16, 24, 24]
    llama = small_config("llama")  # a config class without multimodal RoPE gets no sections
    assert "mrope_section" not in (llama.get("rope_parameters") or {})


def test_ernie_vl_sections_keep_height_and_width_equal_in_its_order():
    """Ernie 4.5 VL orders its sections (height, width, time) and stacks height with width, so the
    filled [6, 5, 5] failed ("stack expects each tensor to be equal size ... [4, 32, 6] ... [4, 32, 5]")."""
    for keep in (False, True):
        text = small_config("ernie4_5_vl_moe", keep)["text_config"]
        height, width, time = text["rope_parameters"]["mrope_section"]
        assert height == width and height + width + time == rotary_half(text)
    qwen = small_config("glm4v")["text_config"]["rope_parameters"]["mrope_section"]  # (time, height, width)
    assert qwen[1] == qwen[2]
    model, batch = built("ernie4_5_vl_moe", "Ernie4_5_VLMoeForConditionalGeneration")
    assert trains(model, batch)


def test_glm4v_moe_builds_and_runs_a_forward():
    import torch

    from auditor.probe.build import build_hf

    model, arch = build_hf({"model_type": "glm4v_moe", "architectures": ["Glm4vMoeForConditionalGeneration"]},
                           None, full_size=False, seed=0, device="cpu", dtype=torch.float32)
    assert arch == "Glm4vMoeForConditionalGeneration"
    assert sum(p.numel() for p in model.parameters()) < 20_000_000  # tiny next to 106B


def test_layers_whose_weights_are_tied_across_the_stack_keep_two():
    """Zamba ties every hybrid layer's shared transformer to the first one's and raises when a
    scaled stack keeps a single hybrid layer; the scaled stack keeps two, and the model builds."""
    import torch

    from auditor.probe.build import build_hf

    config = CONFIG_MAPPING["zamba"]().to_dict()
    config["model_type"] = "zamba"
    small = scale_config_dict(config)
    assert small["layers_block_type"].count("hybrid") == 2
    model, arch = build_hf({"model_type": "zamba", "architectures": ["ZambaForCausalLM"]},
                           None, full_size=False, seed=0, device="cpu", dtype=torch.float32)
    assert arch == "ZambaForCausalLM"


def test_hash_embedding_tables_are_scaled_like_a_vocabulary():
    """BLT's hash embeddings had 500,002 rows per byte-group size (387M parameters scaled down,
    a timeout); its ids are taken modulo the table size, so the table is capped like a vocabulary."""
    config = CONFIG_MAPPING["blt"]().to_dict()
    config["model_type"] = "blt"
    small = scale_config_dict(config)
    from auditor.probe.shrink import VOCAB

    assert config["encoder_hash_byte_group_vocab"] == 500_002
    assert small["encoder_hash_byte_group_vocab"] <= VOCAB


def test_language_adapters_get_language_ids():
    """X-MOD routes each row through one language adapter and raises without a language: the
    batch names one for every row, as its forward's `lang_ids` takes them."""
    import torch

    from auditor.probe.batch import hf_batch, loss_of
    from auditor.probe.build import build_hf

    model, arch = build_hf({"model_type": "xmod", "architectures": ["XmodForCausalLM"]},
                           None, full_size=False, seed=0, device="cpu", dtype=torch.float32)
    batch = hf_batch(model, arch, 0, "cpu")
    assert batch["lang_ids"].shape == (batch["input_ids"].shape[0],)
    assert torch.isfinite(loss_of(model(**batch)))


def test_blip_family_gets_text_qformer_ids_and_placeholders_for_its_image():
    """blip-2 / instructblip / instructblipvideo: pixel_values is their main input, but the forward
    also requires input_ids (and qformer_input_ids), and finds the image by a placeholder id their
    defaults leave None; the video model takes (batch, 4 frames, C, H, W)."""
    import torch

    from auditor.probe.batch import hf_batch, loss_of
    from auditor.probe.build import build_hf

    assert small_config("blip-2")["image_token_index"] < small_config("blip-2")["text_config"]["vocab_size"]
    for model_type, arch, frames in (("instructblip", "InstructBlipForConditionalGeneration", None),
                                     ("instructblipvideo", "InstructBlipVideoForConditionalGeneration", 4)):
        model, arch = build_hf({"model_type": model_type, "architectures": [arch]}, None, full_size=False,
                               seed=0, device="cpu", dtype=torch.float32)
        batch = hf_batch(model, arch, 0, "cpu")
        assert {"pixel_values", "input_ids", "qformer_input_ids", "labels"} <= set(batch), model_type
        assert batch["qformer_input_ids"].max() < model.config.qformer_config.vocab_size
        token = model.config.image_token_id if frames is None else model.config.video_token_id
        placeholders = (batch["input_ids"] == token).sum(dim=1)
        assert (placeholders == model.config.num_query_tokens * (frames or 1)).all(), model_type
        assert batch["pixel_values"].dim() == (5 if frames else 4)
        model.train()
        assert torch.isfinite(loss_of(model(**batch)))


def test_audio_features_follow_the_encoder_config():
    """canary / cohere_asr keep num_mel_bins (128) in encoder_config and their conformer takes
    (batch, frames, bins); the fallback of 80 features failed (mat1 32x2560 and 4096x64)."""
    import torch

    from auditor.probe.batch import _features

    canary = CONFIG_MAPPING["canary"]()
    assert _features(canary, 2, torch.Generator().manual_seed(0)).shape == (2, 64, 128)
    from auditor.probe.batch import hf_batch
    from auditor.probe.build import build_hf

    model, arch = build_hf({"model_type": "speech-encoder-decoder", "architectures": ["SpeechEncoderDecoderModel"]},
                           None, full_size=False, seed=0, device="cpu", dtype=torch.float32)
    assert model.main_input_name == "inputs"  # its encoder's input: wav2vec2's input_values
    assert {"input_values", "decoder_input_ids"} <= set(hf_batch(model, arch, 0, "cpu"))
    whisper = CONFIG_MAPPING["whisper"](max_source_positions=32)  # top level: (batch, bins, 2 x positions)
    assert _features(whisper, 2, torch.Generator().manual_seed(0)).shape == (2, 80, 64)


def test_vision_encoder_decoder_pixels_follow_the_encoder_image_size():
    """vision-encoder-decoder: the image size sits in the (scaled) encoder config; 224 x 224
    pixels were given to a 64 x 64 encoder."""
    import torch

    from auditor.probe.batch import hf_batch
    from auditor.probe.build import build_hf

    model, arch = build_hf({"model_type": "vision-encoder-decoder", "architectures": ["VisionEncoderDecoderModel"]},
                           None, full_size=False, seed=0, device="cpu", dtype=torch.float32)
    size = model.config.encoder.image_size
    assert hf_batch(model, arch, 0, "cpu")["pixel_values"].shape[-2:] == (size, size) and size < 224


def built(model_type: str, arch: str):
    """A scaled model of the type's default config and the probe's batch for it."""
    import torch

    from auditor.probe.batch import hf_batch
    from auditor.probe.build import build_hf

    model, arch = build_hf({"model_type": model_type, "architectures": [arch]}, None, full_size=False,
                           seed=0, device="cpu", dtype=torch.float32)
    return model, hf_batch(model, arch, 0, "cpu")


def trains(model, batch) -> bool:
    import torch

    from auditor.probe.batch import loss_of

    model.train()
    return bool(torch.isfinite(loss_of(model(**batch))))


def test_pix2struct_gets_flattened_patches_with_row_and_column_ids():
    """pix2struct's main input is `flattened_patches` (its processor's output); it raised
    "You have to specify flattened_patches"."""
    model, batch = built("pix2struct", "Pix2StructForConditionalGeneration")
    patches = batch["flattened_patches"]
    vision = model.config.vision_config
    assert patches.shape[-1] == 2 + vision.patch_embed_hidden_size
    rows, cols = patches[..., 0], patches[..., 1]
    assert rows.min() >= 1 and cols.min() >= 1 and max(rows.max(), cols.max()) < vision.seq_len
    assert len({(int(r), int(c)) for r, c in zip(rows[0], cols[0])}) == patches.shape[1]  # one per patch
    assert trains(model, batch)


def test_udop_gets_normalized_token_boxes():
    """UDOP's horizontal and vertical attention biases need a box per token ("Bbox is required for
    horizontal relative position bias"); LayoutLM, which defaults its boxes, gets none."""
    from auditor.probe.batch import _needs_boxes

    model, batch = built("udop", "UdopForConditionalGeneration")
    boxes = batch["bbox"]
    assert boxes.shape == (*batch["input_ids"].shape, 4)
    assert boxes.min() >= 0 and boxes.max() <= 1
    assert (boxes[..., 0] <= boxes[..., 2]).all() and (boxes[..., 1] <= boxes[..., 3]).all()
    assert trains(model, batch)
    assert not _needs_boxes(CONFIG_MAPPING["layoutlmv3"]())


def test_an_encoder_decoders_image_is_kept_without_placeholders():
    """pp_formulanet encodes the image and decodes text: its pixels were dropped for want of image
    placeholders in the text ("You must specify exactly one of encoder_outputs or pixel_values")."""
    model, batch = built("pp_formulanet", "PPFormulaNetForConditionalGeneration")
    assert batch["pixel_values"].shape[-1] == model.config.vision_config.image_size
    assert trains(model, batch)


def test_idefics_gets_one_image_seen_by_every_token():
    """IDEFICS cross-attends to images and cannot run text-only ("Exactly 1 of pixel_values,
    image_encoder_embeddings or perceiver_embeddings has to be not-None")."""
    model, batch = built("idefics", "IdeficsForVisionText2Text")
    assert batch["pixel_values"].shape[:2] == (batch["input_ids"].shape[0], 1)
    assert batch["image_attention_mask"].shape == (*batch["input_ids"].shape, 1)
    assert trains(model, batch)


def test_pi0_gets_state_actions_and_a_camera_image_with_its_placeholders():
    """PI0's main input is a robot `state` ("missing 1 required positional argument: 'state'");
    its loss needs target actions, its VLM prefix an image per camera. Noise and timestep are given,
    so two train-mode forwards of one seed differ by dropout alone."""
    import torch

    model, batch = built("pi0", "PI0ForConditionalGeneration")
    config = model.config
    rows = batch["state"].shape[0]
    assert batch["state"].shape == (rows, config.max_state_dim)
    assert batch["actions"].shape == batch["noise"].shape == (rows, config.chunk_size, config.max_action_dim)
    assert ((batch["timestep"] > 0) & (batch["timestep"] < 1)).all()
    assert batch["pixel_values"].shape[:2] == batch["pixel_attention_mask"].shape == (rows, 1)
    placeholders = (batch["input_ids"] == config.vlm_config.image_token_id).sum(dim=1)
    features = model.model.vlm.get_image_features(batch["pixel_values"].flatten(0, 1)).pooler_output
    assert (placeholders == features.shape[1]).all()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, model(**batch).logits)
    assert trains(model, batch)


def test_kosmos2_marks_its_image_positions_by_mask():
    """Kosmos-2 needs its image (pixel_values is its main input) and has no placeholder id: the
    features replace the positions `image_embeds_position_mask` marks. Without it the image was
    dropped, every scaling layout failed in turn, and the probe timed out (150 s)."""
    import torch

    model, batch = built("kosmos-2", "Kosmos2ForConditionalGeneration")
    mask = batch["image_embeds_position_mask"]
    assert mask.shape == batch["input_ids"].shape and "pixel_values" in batch
    with torch.no_grad():
        features = model.get_image_features(batch["pixel_values"]).pooler_output
    assert (mask.sum(dim=1) == features.shape[1]).all() and mask[:, 0].eq(0).all()
    assert trains(model, batch)


def test_minicpmv_packs_its_images_into_one_row_with_target_sizes():
    """MiniCPM-V's getter requires `target_sizes` (each image's rows and columns of patches) and
    hides it behind the outer model's (*args, **kwargs): the image was left out. Its pixels are
    one packed row of every image's patches; its window merge (`insert_layer_id` 6 of a 2-layer
    tower) must fall inside the scaled tower; MiniCPM-V 4.7 also needs `mm_token_type_ids`."""
    import torch

    assert scaled("minicpmv4_6")["vision_config"]["insert_layer_id"] == 0
    model, batch = built("minicpmv4_7", "MiniCPMV4_7ForConditionalGeneration")
    sizes, pixels = batch["target_sizes"], batch["pixel_values"]
    patch = model.config.vision_config.patch_size
    assert sizes.shape == (4, 2) and pixels.shape[:3] == (1, 3, patch)
    assert pixels.shape[-1] == int((sizes[:, 0] * sizes[:, 1]).sum()) * patch
    ran = []
    model.model.vision_tower.vit_merger.register_forward_hook(lambda *_: ran.append(True))
    tokens = (batch["input_ids"] == model.config.image_token_id).sum(dim=1)
    assert (tokens > 0).all() and tokens.eq(tokens[0]).all()
    assert batch["mm_token_type_ids"].sum() == tokens.sum()
    assert trains(model, batch) and ran
    assert torch.equal(batch["mm_token_type_ids"].bool(), batch["input_ids"] == model.config.image_token_id)


def test_lfm2_vl_counts_its_image_tokens_with_its_spatial_shapes():
    """LFM2-VL's getter requires the NaFlex `spatial_shapes` the batch already had; the count
    was asked without them and the image left out."""
    model, batch = built("lfm2_vl", "Lfm2VlForConditionalGeneration")
    factor = model.config.downsample_factor
    per_image = int((batch["spatial_shapes"][0] // factor).prod())
    assert (batch["input_ids"] == model.config.image_token_id).sum(dim=1).eq(per_image).all()
    assert trains(model, batch)


def test_video_llama_3_gets_each_images_merge_size():
    """VideoLLaMA 3's inner getter requires `image_merge_sizes` (its processor writes 1 per image;
    no config holds it), which the outer getter passes on through **kwargs: the count asked the
    outer one without them and the image was left out."""
    model, batch = built("video_llama_3", "VideoLlama3ForConditionalGeneration")
    grid, merges = batch["image_grid_thw"], batch["image_merge_sizes"]
    assert merges.tolist() == [1] * grid.shape[0]
    per_image = int(grid[0].prod()) // int(merges[0]) ** 2
    assert (batch["input_ids"] == model.config.image_token_id).sum(dim=1).eq(per_image).all()
    assert trains(model, batch)


def test_nemotron_h_omni_gets_flat_patches_with_a_row_and_column_grid():
    """NemotronH Omni's getter requires `image_grid_hw`, each image's (rows, columns) of the
    flattened patches it takes (Qwen-VL's patches without the temporal column)."""
    model, batch = built("nemotron_h_omni", "NemotronH_Omni_Reasoning_V3")
    grid, pixels = batch["image_grid_hw"], batch["pixel_values"]
    assert grid.shape == (4, 2) and pixels.shape[0] == int(grid.prod(-1).sum())
    assert pixels.shape[1] == model.config.vision_config.patch_dim
    assert (batch["input_ids"] == model.config.image_token_id).sum() > 0
    assert trains(model, batch)


def test_deepseek_vl_hybrid_gets_its_high_resolution_view_and_a_global_layer():
    """DeepSeek-VL hybrid's image features need `high_res_pixel_values` for its
    `high_res_vision_config` (a SAM tower), which reads the state after its first global layer:
    `global_attn_indexes` [2, 5, 8, 11] of a 2-layer tower ran past the hidden states."""
    high = scaled("deepseek_vl_hybrid")["high_res_vision_config"]
    assert high["global_attn_indexes"] and max(high["global_attn_indexes"]) < high["num_hidden_layers"]
    model, batch = built("deepseek_vl_hybrid", "DeepseekVLHybridForConditionalGeneration")
    size = model.config.high_res_vision_config.image_size
    assert batch["high_res_pixel_values"].shape == (4, 3, size, size) and "pixel_values" in batch
    assert (batch["input_ids"] == model.config.image_token_id).sum() > 0
    assert trains(model, batch)


def test_dots3_note_gets_the_waveform_samples_of_its_audio_chunks():
    """Dots3 Note's audio getter requires `chunk_sample_lengths`, the waveform samples each row of
    mel features stands for (hop_length per frame): without them the audio was left out."""
    model, batch = built("dots3_note", "Dots3NoteForConditionalGeneration")
    audio = model.config.audio_config
    features, lengths = batch["input_features"], batch["chunk_sample_lengths"]
    assert lengths.tolist() == [features.shape[-1] * audio.hop_length] * features.shape[0]
    per_row = -(-int(lengths[0]) // audio.samples_per_token)
    assert (batch["input_ids"] == model.config.audio_token_id).sum(dim=1).eq(per_row).all()
    assert trains(model, batch)


def test_molmo2_pools_its_crops_into_image_tokens():
    """Molmo2's getter requires `image_token_pooling` (the patches each image token pools) and
    `image_grids` (whose sizes split the tokens per image); its tower adds a position table of
    one row per patch, which shrinks with the image, and its placeholder `image_patch_id` must
    fit the scaled vocabulary. Its default cannot place an image at full size (adapter_config's
    text_hidden_size 3584, text width 4096): said as the config's fact, while the scaled model
    gives both one width, so the tower and the adapter run; as they do where the widths agree."""
    import torch

    from auditor.probe.batch import hf_batch
    from auditor.probe.build import build_hf, width_mismatch

    default = scaled("molmo2")
    assert default["vision_config"]["num_position_embeddings"] == (56 // 14) ** 2
    assert default["image_patch_id"] < default["text_config"]["vocab_size"]
    model, batch = built("molmo2", "Molmo2ForConditionalGeneration")
    assert not model._probe_image_dropped and "image_token_pooling" in batch
    said = width_mismatch({"model_type": "molmo2"})
    assert "adapter_config.text_hidden_size = 3584" in said and "at full size either" in said
    model, arch = build_hf({"model_type": "molmo2", "architectures": ["Molmo2ForConditionalGeneration"],
                            "adapter_config": {"text_hidden_size": 4096}}, None, full_size=False, seed=0,
                           device="cpu", dtype=torch.float32)
    batch = hf_batch(model, arch, 0, "cpu")
    pooling, grids = batch["image_token_pooling"], batch["image_grids"]
    tokens = (batch["input_ids"] == model.config.image_token_id).sum(dim=1)
    assert tokens.tolist() == (grids[:, 0] * grids[:, 1] + grids[:, 2] * grids[:, 3]).tolist()
    assert pooling.shape[0] == tokens.sum() and int(pooling.max()) < batch["pixel_values"].shape[:2].numel()
    ran = []
    for module in (model.model.vision_tower, model.model.multi_modal_projector):
        module.register_forward_hook(lambda *_: ran.append(True))
    assert trains(model, batch) and len(ran) == 2


def test_a_forward_that_cannot_build_its_output_object_runs_its_tuple_path():
    """Llama 4's image-text class reads `image_outputs` from its language model's output, which
    has none ("'MoeCausalLMOutputWithPast' object has no attribute 'image_outputs'"): the probe runs
    the forward's tuple path, same computation, loss first."""
    import torch

    model, batch = built("llama4", "Llama4ForConditionalGeneration")
    assert model._probe_tuple_output and model.config.return_dict is False
    model.train()
    out = model(**batch)
    assert isinstance(out, tuple) and out[0].dim() == 0 and torch.isfinite(out[0])


def test_a_transformers_tuple_gives_its_leading_loss_and_compares_its_logits():
    import torch

    from auditor.probe.batch import first_tensor, loss_of

    loss, logits = torch.tensor(2.5), torch.randn(2, 3, 5)
    assert loss_of((loss, logits)) is loss and first_tensor((loss, logits)) is logits
    assert first_tensor((logits,)) is logits and torch.equal(loss_of((logits,)), logits.pow(2).mean())


def test_kyutai_ids_carry_a_text_token_and_one_code_per_codebook():
    """Kyutai speech-to-text embeds (batch, seq, 1 + codebooks) ids ("The size of tensor a (32)
    must match the size of tensor b (33)"); its labels stay the text column."""
    model, batch = built("kyutai_speech_to_text", "KyutaiSpeechToTextForConditionalGeneration")
    config = model.config
    ids = batch["input_ids"]
    assert ids.shape[-1] == 1 + config.num_codebooks and batch["labels"].shape == ids.shape[:2]
    assert (batch["labels"] == ids[..., 0]).all()
    codes = ids[..., 1:]
    assert codes.max() < config.codebook_vocab_size and not (codes == config.audio_pad_token_id).any()
    assert trains(model, batch)


def test_voxtral_realtime_gets_one_audio_embedding_per_token():
    """Voxtral Realtime adds audio embeddings to the text's position by position and raised
    without audio ("You must specify exactly one of input_features or encoder_inputs_embeds")."""
    import torch

    model, batch = built("voxtral_realtime", "VoxtralRealtimeForConditionalGeneration")
    with torch.no_grad():
        audio = model.get_audio_features(input_features=batch["input_features"]).pooler_output
    assert audio.shape[:2] == batch["input_ids"].shape
    assert trains(model, batch)


def test_dia_gets_byte_ids_and_audio_codes_per_channel():
    """Dia's encoder takes bytes (vocabulary 256; the decoder's 1028 went out of range: "index out
    of range in self"), its decoder (batch, length, channels) codes, its loss one row per channel."""
    model, batch = built("dia", "DiaForConditionalGeneration")
    config = model.config
    channels = config.decoder_config.num_channels
    assert batch["input_ids"].max() < config.encoder_config.vocab_size
    rows, length, width = batch["decoder_input_ids"].shape
    assert width == channels and batch["labels"].shape == (rows * channels, length)
    assert (batch["labels"][1] == batch["decoder_input_ids"][0, :, 1]).all()  # row b * channels + c
    assert trains(model, batch)


def test_gemma4_assistant_gets_its_backbones_states():
    """The Gemma 4 assistant drafts from its backbone's embeddings and keys/values ("inputs_embeds
    and shared_kv_states cannot be None"); each attention kind's states fit its own layers."""
    model, batch = built("gemma4_unified_assistant", "Gemma4UnifiedAssistantForCausalLM")
    text = model.config.get_text_config()
    assert batch["inputs_embeds"].shape[-1] == 2 * model.config.backbone_hidden_size
    assert set(batch["shared_kv_states"]) == set(text.layer_types)
    for layer, kind in zip(text.per_layer_config, text.layer_types):
        keys, values = batch["shared_kv_states"][kind]
        assert keys.shape == values.shape
        assert keys.shape[1] == layer.num_key_value_heads and keys.shape[-1] == layer.head_dim
    assert trains(model, batch)


def test_feature_layer_indices_survive_the_layer_cut():
    """Molmo2's adapter takes vision layers [24, 18] of 25; scaled to 2 layers its own validator
    rejected them. Indices beyond the scaled stack keep their distance from the last layer,
    clamped into it; indices the stack still holds are kept; the config class accepts the result."""
    small = scaled_with_type("molmo2")
    layers = small["vision_config"]["num_hidden_layers"]
    assert small["adapter_config"]["vision_feature_layer"] == [layers - 1, 0]
    CONFIG_MAPPING["molmo2"].from_dict({k: v for k, v in small.items() if k != "model_type"})  # validates
    vip = scaled_with_type("vipllava")  # [-2, -5, -8, -11, 6] of 24 layers
    assert all(-vip["vision_config"]["num_hidden_layers"] <= i < vip["vision_config"]["num_hidden_layers"]
               for i in vip["vision_feature_layer"])
    assert len(vip["vision_feature_layer"]) == 5
    assert scaled_with_type("llava")["vision_feature_layer"] == -2  # in range: kept


def test_molmo2_trains_with_its_modality_ids():
    """Molmo2's forward requires `mm_token_type_ids` in training (0 text, 1 image, as its processor
    writes them); the probe's steps raised without them once its feature layers fit the tower.
    Its default's image runs in the scaled model (see test_molmo2_pools_its_crops_into_image_tokens):
    the ids mark its placeholders."""
    import torch

    from auditor.probe.batch import hf_batch, loss_of

    model, arch = build_default("molmo2", "Molmo2ForConditionalGeneration")
    batch = hf_batch(model, arch, 0, "cpu")
    types = batch["mm_token_type_ids"]
    assert types.shape == batch["input_ids"].shape
    assert (types == (batch["input_ids"] == model.config.image_token_id)).all() and types.any()
    from types import SimpleNamespace

    import transformers.models.qwen2_vl.modeling_qwen2_vl as qwen2_vl  # takes them, does not require them

    from auditor.probe.batch import _modality_types, _required_in_training
    assert _required_in_training(model) == {"mm_token_type_ids"}
    assert _required_in_training(qwen2_vl.Qwen2VLForConditionalGeneration.__new__(
        qwen2_vl.Qwen2VLForConditionalGeneration)) == set()
    ids = torch.tensor([[5, 7, 7, 9]])
    with_image = _modality_types(SimpleNamespace(image_token_id=7), {"input_ids": ids, "pixel_values": 0})
    assert with_image.tolist() == [[0, 1, 1, 0]]
    model.train()
    assert torch.isfinite(loss_of(model(**batch)))


def test_codebook_token_ranges_are_laid_out_again_in_the_scaled_vocabulary():
    """Apertus 1.5 keeps its image and audio codebooks as token ranges of the text vocabulary, which
    its config validates; scaling the vocabulary to 512 left the ranges at 131,272 .. 266,440.
    The ranges keep their order and adjacency, sized to the scaled codebooks, inside the vocabulary."""
    small = scaled_with_type("apertus1p5")
    image, audio = small["vision_config"]["codebook_size"], small["audio_config"]["codebook_size"]
    assert image < 131072 and audio < 4096
    assert small["image_token_offset"] + image == small["audio_token_offset"]
    assert small["audio_token_offset"] + audio <= small["text_config"]["vocab_size"] < 1024
    assert max(small["image_token_id"], small["audio_token_id"]) < small["image_token_offset"]  # text part
    CONFIG_MAPPING["apertus1p5"].from_dict({k: v for k, v in small.items() if k != "model_type"})  # validates
    # its VQ image tokenizer's conv channels are widths too (184M parameters of 216M were left there)
    vision = small["vision_config"]
    assert vision["base_channels"] == vision["latent_channels"] == vision["embed_dim"] < 256
    emu3 = scaled_with_type("emu3")["vq_config"]  # GroupNorm(32 groups) in its encoder: never below 32
    assert emu3["base_channels"] == 32 and emu3["latent_channels"] == 4


def scaled_with_type(model_type: str) -> dict:
    config = CONFIG_MAPPING[model_type]().to_dict()
    config["model_type"] = model_type
    return scale_config_dict(config)


def build_default(model_type: str, arch: str):
    import torch

    from auditor.probe.build import build_hf

    return build_hf({"model_type": model_type, "architectures": [arch]}, None, full_size=False, seed=0,
                    device="cpu", dtype=torch.float32)


def test_keys_a_default_leaves_out_are_completed_as_transformers_documents_them():
    """dbrx (its attention reads `attn_config.rope_theta`, which the default lacks, and clamps
    with `clip_qkv` None), the Qwen omni thinkers (`vision_start_token_id`, declared only by their
    talker configs) and step3p7 (a sliding mask built with no window while no layer slides) could
    not build or run their own default config. Each completion is named in the probe's report."""
    model, _ = build_default("dbrx", "DbrxForCausalLM")
    assert model.config.attn_config.rope_theta == model.config.rope_parameters["rope_theta"]
    assert model.config.attn_config.clip_qkv == float("inf")
    assert any(line.startswith("attn_config.rope_theta = ") for line in model._probe_completed)
    model, _ = build_default("qwen2_5_omni_thinker", "Qwen2_5OmniThinkerForConditionalGeneration")
    assert model._probe_completed == [
        "vision_start_token_id = 151652 (the default Qwen2_5OmniTalkerConfig declares)"]
    model, _ = build_default("step3p7", "Step3p7ForConditionalGeneration")
    text = model.config.text_config
    assert "sliding_attention" not in text.layer_types and text.sliding_window == text.max_position_embeddings
    model, _ = build_default("moonshine_streaming", "MoonshineStreamingForConditionalGeneration")
    assert model.config.num_key_value_heads == model.config.num_attention_heads
    model, _ = build_default("llama", "LlamaForCausalLM")  # a config that runs is never completed
    assert model._probe_completed == []


def test_completion_never_changes_a_written_key_nor_invents_a_used_window():
    from transformers import DbrxConfig, Step3p7Config

    from auditor.probe import complete

    written = DbrxConfig(attn_config={"clip_qkv": 8, "rope_theta": 5e5})
    full = written.to_dict()
    assert complete.complete(full, written, {("DbrxAttentionConfig", "clip_qkv"),
                                             ("DbrxAttentionConfig", "rope_theta")}) == []
    assert full["attn_config"]["clip_qkv"] == 8
    sliding = Step3p7Config(text_config={"layer_types": ["sliding_attention", "full_attention"],
                                         "num_hidden_layers": 2})
    full = sliding.to_dict()
    assert complete.complete(full, sliding, {("Step3p7TextConfig", "sliding_window")}) == []
    assert full["text_config"]["sliding_window"] is None
    # another sub-model's default is taken for a token id only, never for a size
    attn = written.attn_config
    assert complete.value_for(attn, "hidden_size", [written, attn]) is None  # DbrxFFNConfig declares 6144


# ------------------------------------------------------------------ refusals: one line, exit 2

def write_config(tmp_path, model_type, **extra):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": model_type, **extra}, indent=1))
    return str(path)


def test_sub_config_is_refused_in_one_line_naming_its_parent(tmp_path):
    path = write_config(tmp_path, "blip_2_vision_model")
    with pytest.raises(CannotProbe) as caught:
        execute(ProbeRequest(path=path, steps=1, device="cpu", light=True))
    message = str(caught.value)
    assert message.startswith("cannot probe blip_2_vision_model: ") and "blip-2" in message
    assert "\n" not in message and len(message) < 300
    res = CliRunner().invoke(probe, [path, "--json", "--steps", "1"], catch_exceptions=False)
    assert res.exit_code == 2
    [finding] = json.loads(res.output)["findings"] if res.output.strip().startswith("{") \
        else json.loads(res.output)
    assert finding["code"] == "DRP811" and finding["line"] == 2
    assert "Traceback" not in res.output


def test_a_default_that_leaves_a_needed_key_unset_is_refused_naming_the_key(tmp_path):
    """lfm2_moe's default has layer_types None, granite4_vision's deepstack_layer_map None: their
    models cannot be built from the default (TypeError on None). The refusal names the key the
    failing line read, found in the traceback, not "'NoneType' object is not subscriptable"."""
    path = write_config(tmp_path, "lfm2_moe", architectures=["Lfm2MoeForCausalLM"])
    with pytest.raises(CannotProbe) as caught:
        execute(ProbeRequest(path=path, steps=1, device="cpu", light=True))
    message = str(caught.value)
    assert message.startswith("cannot probe lfm2_moe: its config leaves layer_types unset (None)")
    assert "write layer_types in config.json" in message and "\n" not in message
    import torch

    from auditor.probe.build import build_hf, unset_key

    with pytest.raises(TypeError) as built:  # read through self.num_experts = config.num_local_experts
        build_hf({"model_type": "dots1", "architectures": ["Dots1ForCausalLM"]}, None, full_size=False, seed=0,
                 device="cpu", dtype=torch.float32)
    assert unset_key(built.value).startswith("its config leaves n_routed_experts unset (None)")
    from transformers import CohereCompassTextConfig, CohereCompassTextModel

    with pytest.raises(KeyError) as built:  # rope_parameters {} indexed by layer type
        CohereCompassTextModel(CohereCompassTextConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                                                       intermediate_size=16, num_attention_heads=2))
    assert unset_key(built.value).startswith("its config leaves rope_parameters empty")
    # the probe completes it as Transformers documents RoPE parameters left out, and builds
    model, _ = build_hf({"model_type": "cohere_compass_text", "architectures": ["CohereCompassForCausalLM"]}, None,
                        full_size=False, seed=0, device="cpu", dtype=torch.float32)
    assert model._probe_completed == ["rope_parameters = {'full_attention': {'rope_type': 'default', 'rope_theta': "
                                      "10000.0}} (per layer type, the RoPE Transformers documents for parameters "
                                      "left out: rope_type 'default' and the config's default_theta)"]
    from transformers import ChameleonConfig, ChameleonModel

    with pytest.raises(AttributeError) as built:  # vocabulary_map None, read as vocab_map.get(...)
        ChameleonModel(ChameleonConfig(vocab_size=64, hidden_size=16))
    assert unset_key(built.value).startswith("its config leaves vocabulary_map unset (None)")
    assert unset_key(TypeError("'NoneType' object is not subscriptable")) is None  # no traceback, no claim
    assert unset_key(ValueError("x")) is None


@pytest.mark.parametrize("model_type, arch", [("chameleon", "ChameleonForConditionalGeneration"),
                                             ("emu3", "Emu3ForConditionalGeneration")])
def test_a_vq_vocabulary_map_the_default_leaves_out_gets_a_stand_in_in_the_scaled_vocabulary(tmp_path, model_type,
                                                                                             arch):
    """Chameleon's and Emu3's defaults carry no vocabulary_map (a tokenizer's map of VQ codes to
    BPE ids), so Transformers cannot build them. The probe writes a stand-in over the scaled
    vocabulary's last ids, names it in the report, and the fine-tune's loss stays finite: no text
    id of the batch is an image code, whose logits Chameleon sets to the dtype's minimum."""
    path = write_config(tmp_path, model_type, architectures=[arch])
    result = execute(ProbeRequest(path=path, steps=1, device="cpu", light=True))
    assert "vocabulary_map = a stand-in of 64 VQ codes" in result.meta["model"]
    assert not [f for f in result.findings if f.code == "DRP806"], [f.message for f in result.findings]
    assert result.losses and all(math.isfinite(v) for v in result.losses)


def test_a_default_that_fails_at_full_size_too_is_refused_with_the_full_size_numbers(tmp_path):
    """aya_vision's default vision tower (width 1152, 14 heads) cannot be built at full size; the
    refusal quoted the scaled numbers (72 and 7), which blamed the scaler. A module that fails only
    once scaled keeps the scaled failure."""
    path = write_config(tmp_path, "aya_vision", architectures=["AyaVisionForConditionalGeneration"])
    with pytest.raises(CannotProbe) as caught:
        execute(ProbeRequest(path=path, steps=1, device="cpu", light=True))
    message = str(caught.value)
    assert "cannot build its own model at full size either" in message
    assert "`embed_dim`: 1152 and `num_heads`: 14" in message and "\n" not in message
    from transformers import SiglipVisionConfig
    from transformers.models.siglip.modeling_siglip import SiglipAttention

    from auditor.probe.fullsize import same_failure

    with pytest.raises(ValueError) as scaled_only:
        SiglipAttention(SiglipVisionConfig(hidden_size=72, num_attention_heads=7))
    assert same_failure(scaled_only.value, SiglipVisionConfig(hidden_size=1152, num_attention_heads=16)) is None
    assert same_failure(scaled_only.value, SiglipVisionConfig(hidden_size=1152, num_attention_heads=14))


def test_missing_package_and_failed_validation_are_refused_in_one_line():
    """gemma3n / fast_vlm need PIL (not in the test extras): one line naming the package, not
    Transformers' install paragraph. gemma4_assistant's default fails its own validator."""
    from auditor.probe.build import missing_package, refusal

    pil = ImportError("\nTimmWrapperModel requires the PIL library but it was not found in your environment. "
                      "You can install it with pip:\n`pip install pillow`.\n")
    assert missing_package("Gemma3nForConditionalGeneration", pil) == \
        "Gemma3nForConditionalGeneration needs the PIL package, which is not installed here"
    assert "\n" not in missing_package("X", ImportError("no module\nfoo"))
    assert missing_package("InklingForConditionalGeneration", ModuleNotFoundError("No module named 'scipy'")) == \
        "InklingForConditionalGeneration needs the scipy package, which is not installed here"
    with pytest.raises(Exception) as caught:
        CONFIG_MAPPING["gemma4_assistant"]()
    assert refusal("gemma4_assistant", caught.value) == \
        "config validation failed: hidden_size_per_layer_input must be 0, got 256"


def test_error_inside_a_forward_is_a_finding_not_a_traceback(tmp_path, monkeypatch):
    """Errors raised by Transformers during the probe's forwards are caught at its boundary."""
    from auditor.probe import runner

    def broken(*args, **kwargs):
        raise IndexError("index out of range in self")

    monkeypatch.setattr(runner, "finetune", broken)
    path = write_config(tmp_path, "llama")
    res = CliRunner().invoke(probe, [path, "--format", "concise", "--steps", "1"], catch_exceptions=False)
    assert res.exit_code == 2
    assert "DRP811" in res.output and "cannot probe llama: IndexError: index out of range" in res.output
    assert "Traceback" not in res.output


# ------------------------------------------------------------------ a sample of 20 types

# One or more per family of issue #19: classic decoders and encoders, hybrid / linear attention,
# Mamba hybrids, partial rotary, MLA, MoE, vision-language, speech, encoder-decoders.
SAMPLE = [
    ("llama", "LlamaForCausalLM"), ("gpt2", "GPT2LMHeadModel"), ("qwen3_next", "Qwen3NextForCausalLM"),
    ("jamba", "JambaForCausalLM"), ("recurrent_gemma", "RecurrentGemmaForCausalLM"),
    ("lfm2", "Lfm2ForCausalLM"), ("gemma3_text", "Gemma3ForCausalLM"), ("bamba", "BambaForCausalLM"),
    ("codegen", "CodeGenForCausalLM"), ("deepseek_v3", "DeepseekV3ForCausalLM"),
    ("youtu", "YoutuForCausalLM"), ("mixtral", "MixtralForCausalLM"), ("qwen3_moe", "Qwen3MoeForCausalLM"),
    ("llava", "LlavaForConditionalGeneration"), ("paligemma", "PaliGemmaForConditionalGeneration"),
    ("idefics3", "Idefics3ForConditionalGeneration"), ("whisper", "WhisperForConditionalGeneration"),
    ("t5", "T5ForConditionalGeneration"), ("bart", "BartForConditionalGeneration"),
    ("big_bird", "BigBirdForCausalLM"),
]


def test_sample_covers_twenty_types():
    assert len(SAMPLE) == len({t for t, _ in SAMPLE}) == 20


@pytest.mark.parametrize("model_type,arch", SAMPLE, ids=[t for t, _ in SAMPLE])
def test_default_config_completes_a_probe(tmp_path, model_type, arch):
    path = write_config(tmp_path, model_type, architectures=[arch])
    result = execute(ProbeRequest(path=path, steps=1, device="cpu", light=True))
    assert result.meta["model"].startswith(arch)
    assert result.losses and all(loss == loss for loss in result.losses)  # finite, not NaN
    assert "DRP811" not in {f.code for f in result.findings}


def test_a_depth_named_only_by_its_layer_type_list_is_cut():
    """Nemotron-H (nested in NeMo Speech-LM) gives its depth only as the length of
    `layers_block_type`; the list was never cut, so the scaled model kept 52 layers (714M
    parameters). It is cut to the shortest prefix holding every kind, like a counted stack."""
    pattern = ["mamba", "moe", "mamba", "attention"] * 13
    small = scale_config_dict({"model_type": "x", "hidden_size": 256, "layers_block_type": pattern})
    assert small["layers_block_type"] == pattern[:4]
    from_default = scaled_with_type("nemo_speechlm")["text_config"]["layers_block_type"]
    before = CONFIG_MAPPING["nemo_speechlm"]().to_dict()["text_config"]["layers_block_type"]
    assert len(from_default) < len(before) and set(from_default) == set(before)
    assert CONFIG_MAPPING["nemotron_h"](layers_block_type=from_default).num_hidden_layers == len(from_default)


# ------------------------------------------------------------------ vision scaling (issue #32)

def test_vision_stacks_named_depth_or_layers_are_cut():
    """Qwen-VL / GLM vision towers count their blocks in `depth`, Kosmos-2's text model in
    `layers`: 24 types kept more than 12 layers, and Kosmos-2 took 137 s."""
    assert scaled_with_type("glm4v")["vision_config"]["depth"] == 2
    assert scaled_with_type("qwen2_vl")["vision_config"]["depth"] == 2
    assert scaled_with_type("kosmos-2")["text_config"]["layers"] == 2
    qwen25 = scaled_with_type("qwen2_5_vl")["vision_config"]  # full-attention blocks [7, 15, 23, 31]: one kept
    assert qwen25["depth"] <= 12 and qwen25["fullatt_block_indexes"] == [7] and qwen25["depth"] > 7


def test_image_size_stays_at_least_twice_the_total_stride():
    """ConvNeXt's image was cut to 16 px (4 patches of 4), which its four stages (stride 32)
    cannot take; stage depths are cut to one block each."""
    from auditor.probe.shrink import total_stride

    convnext = scaled_with_type("convnext")
    assert total_stride(convnext) == 32 and convnext["image_size"] == 64 and convnext["depths"] == [1, 1, 1, 1]
    assert scaled_with_type("swin")["image_size"] == 64
    assert scaled_with_type("vit")["image_size"] == 64  # 4 x 4 patches of 16, as before
    assert scaled_with_type("hiera")["image_size"] == [224, 224]  # a pair patch and no stride known: kept


def test_efficientnet_coefficients_and_image_are_scaled():
    """EfficientNet kept image 600 and its x2.0 width, x3.1 depth: over 7 minutes, 17.8 GB."""
    small = scaled_with_type("efficientnet")
    assert small["image_size"] == 64 and small["width_coefficient"] <= 0.25 and small["depth_coefficient"] <= 0.1
    model, arch = build_default("efficientnet", "EfficientNetForImageClassification")
    assert sum(p.numel() for p in model.parameters()) < 2_000_000


def test_qwen_vl_style_towers_get_patches_and_a_grid_and_run():
    """GLM-4V's vision tower never ran: its processor-made patches and `image_grid_thw` were not
    synthesised, so the image was left out (and `vision_config.attention_dropout` got a false
    DRP804)."""
    import torch

    model, batch = built("glm4v", "Glm4vForConditionalGeneration")
    vision = model.config.vision_config
    merge, patch = vision.spatial_merge_size, vision.patch_size
    grid = batch["image_grid_thw"]
    assert grid.shape == (batch["input_ids"].shape[0], 3) and (grid[:, 1:] % merge == 0).all()
    assert batch["pixel_values"].shape == (int(grid.prod(-1).sum()),
                                           vision.in_channels * vision.temporal_patch_size * patch * patch)
    tokens = (batch["input_ids"] == model.config.image_token_id).sum(dim=1)
    assert (tokens == grid.prod(-1) // merge**2).all()
    assert (batch["mm_token_type_ids"] == (batch["input_ids"] == model.config.image_token_id)).all()
    assert not model._probe_image_dropped
    calls = []
    hook = model.model.visual.register_forward_hook(lambda *a: calls.append(1))
    model.train()
    assert torch.isfinite(model(**batch).loss) and calls
    hook.remove()


def test_qwen2_vl_vision_heads_keep_their_rotary_halves_and_a_failed_image_says_why():
    """Qwen2-VL's 80-wide vision heads were cut to 10, which its row/column rotary halves cannot
    split: the image was dropped. Now heads are fewer instead (per-head size divisible by 4), and
    the vision tower runs on a consistent config (the merger's output = the text width). The
    default config itself pairs a 3584-wide merger with an 8192-wide text model: the scaled model
    gives both one width, so the tower runs, and the report names both widths. Mistral 3's Pixtral
    tower gets each image's size and runs."""
    import torch

    from auditor.probe.batch import hf_batch
    from auditor.probe.build import build_hf, width_mismatch

    d = scale_config_dict(CONFIG_MAPPING["qwen2_vl"]().to_dict())
    vision = d["vision_config"]
    assert (vision["embed_dim"] // vision["num_heads"]) % 4 == 0
    consistent = CONFIG_MAPPING["qwen2_vl"]().to_dict()
    consistent["text_config"]["hidden_size"] = consistent["vision_config"]["hidden_size"]
    consistent["architectures"] = ["Qwen2VLForConditionalGeneration"]
    model, arch = build_hf(consistent, None, full_size=False, seed=0, device="cpu", dtype=torch.float32)
    batch = hf_batch(model, arch, 0, "cpu")
    calls = []
    model.model.visual.register_forward_hook(lambda *a: calls.append(1))
    model.train()
    assert torch.isfinite(model(**batch).loss) and calls and not model._probe_image_dropped
    # Transformers' own default pairs a 3584-wide merger with an 8192-wide text model: the scaled
    # model gives both one width, so the tower runs, and the disagreement is said as the config's
    default_config = {"model_type": "qwen2_vl", "architectures": ["Qwen2VLForConditionalGeneration"]}
    default, _ = build_hf(default_config, None, full_size=False, seed=0, device="cpu", dtype=torch.float32)
    assert not default._probe_text_only and not default._probe_image_dropped
    said = width_mismatch(default_config)
    assert "vision_config.hidden_size = 3584" in said and "text_config.hidden_size = 8192" in said \
        and "no image can enter the text model, at full size either" in said
    assert width_mismatch(consistent) == ""
    mistral, arch = build_hf({"model_type": "mistral3", "architectures": ["Mistral3ForConditionalGeneration"]}, None,
                             full_size=False, seed=0, device="cpu", dtype=torch.float32)
    batch = hf_batch(mistral, arch, 0, "cpu")
    assert batch["image_sizes"].tolist() == [list(batch["pixel_values"].shape[-2:])] * batch["pixel_values"].shape[0]
    assert not mistral._probe_text_only and not mistral._probe_image_dropped
    llava, arch = build_hf({"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"]}, None,
                           full_size=False, seed=0, device="cpu", dtype=torch.float32)
    assert "image_sizes" not in hf_batch(llava, arch, 0, "cpu")  # a CLIP tower given sizes fails (no patch_size)
    assert not llava._probe_text_only and not llava._probe_image_dropped


def test_backbone_stage_names_and_swin_windows_follow_the_cut():
    """BEiT / DINOv2 saved defaults ask for 'stage12' of a 2-layer stack; Swin's 7 x 7 windows
    do not fit the scaled image's 2 x 2 last stage (the size of tensor a (16) must match (49))."""
    beit = scaled_with_type("beit")
    assert beit["stage_names"] == ["stem", "stage1", "stage2"] and beit["out_features"] == ["stage2"]
    assert beit["out_indices"] == [2]
    CONFIG_MAPPING["beit"](**{k: v for k, v in beit.items() if k != "model_type"})
    swin = scaled_with_type("swin")
    assert swin["window_size"] == 2 and swin["image_size"] == 64
    model, batch = built("swin", "SwinForImageClassification")
    assert trains(model, batch)


def test_naflex_images_are_patches_with_their_shapes():
    """SigLIP 2 takes (batch, patches, C x P x P) with a patch mask and spatial_shapes."""
    model, batch = built("siglip2", "Siglip2ForImageClassification")
    vision = model.config.vision_config
    assert batch["pixel_values"].shape == (4, 16, vision.num_channels * vision.patch_size ** 2)
    assert batch["spatial_shapes"].tolist() == [[4, 4]] * 4 and batch["pixel_attention_mask"].all()
    assert trains(model, batch)


def test_audio_llms_get_features_and_one_placeholder_per_audio_embedding():
    """Audio-LLMs never ran their audio tower (granite_speech, qwen2_audio, voxtral, glmasr, ...):
    the features are shaped for the audio config, counted through get_audio_features, and that
    many audio tokens are written into the text."""
    import torch

    from auditor.probe.batch import counting

    model, batch = built("glmasr", "GlmAsrForConditionalGeneration")
    assert not model._probe_audio_dropped
    with counting(model):
        features = model.get_audio_features(batch["input_features"], batch["input_features_mask"]).pooler_output
    placeholders = (batch["input_ids"] == model.config.audio_token_id).sum()
    assert placeholders == features.reshape(-1, features.shape[-1]).shape[0]
    calls = []
    hook = model.model.audio_tower.register_forward_hook(lambda *a: calls.append(1))
    assert trains(model, batch) and calls
    hook.remove()
    voxtral = scaled_with_type("voxtral")  # its default leaves the audio placeholder None
    assert isinstance(voxtral["audio_token_id"], int) and voxtral["audio_token_id"] < voxtral["text_config"]["vocab_size"]
    del torch


def test_a_protein_tower_gets_its_own_ids():
    """Evolla's protein encoder reads protein_input_ids in its own vocabulary and never ran."""
    model, batch = built("evolla", "EvollaForProteinText2Text")
    ids = batch["protein_input_ids"]
    assert ids.max() < model.config.protein_encoder_config.vocab_size and batch["protein_attention_mask"].all()
    assert trains(model, batch)


@pytest.mark.parametrize("model_type,arch,key", [
    ("evolla", "EvollaForProteinText2Text", "protein_encoder_config.hidden_dropout_prob"),
    ("granite_speech", "GraniteSpeechForConditionalGeneration", "encoder_config.dropout"),
    ("glm4v", "Glm4vForConditionalGeneration", "vision_config.attention_dropout"),
])
def test_keys_read_by_parts_the_batch_now_runs_or_not_are_never_drp804(tmp_path, model_type, arch, key):
    """The false DRP804s of issue #32, on configs saved by Transformers: each key is read in the
    modeling code. Evolla's protein tower and GLM-4V's vision tower now run, so their keys are
    live; Granite Speech's default cannot run its encoder (its projector expects 1408 features,
    its encoder makes 1024, at full size too), so its keys are "not exercised", with the reason."""
    config = CONFIG_MAPPING[model_type]()
    config.architectures = [arch]
    if model_type == "glm4v":
        config.vision_config.attention_dropout = 0.1
    config.save_pretrained(tmp_path)
    result = execute(ProbeRequest(path=str(tmp_path / "config.json"), steps=1, device="cpu", light=True))
    assert "DRP804" not in {f.code for f in result.findings}
    [verdict] = [k for k in result.keys if k["key"] == key]
    if model_type == "granite_speech":
        assert verdict["verdict"] == "not exercised" and "never ran" in verdict["note"]
        idle = {p["part"]: p for p in result.parts}
        assert not idle["encoder"]["ran"] and "could not be counted" in idle["encoder"]["why"]
    else:
        assert verdict["verdict"] == "live"
        assert all(p["ran"] for p in result.parts if p["built"]), result.parts


def test_any_resolution_pinpoints_and_pooled_image_tokens_follow_the_scaled_image():
    """LLaVA-NeXT's image_grid_pinpoints are pixel resolutions (multiples of the image size) and
    Gemma 3 pools its patch grid to mm_tokens_per_image: both must follow the scaled image, or
    the image is left out (llava_next) or the pooling kernel is 0 (gemma3)."""
    small = scaled_with_type("llava_next")
    size = small["vision_config"]["image_size"]
    assert all(v % size == 0 and v < 336 for pin in small["image_grid_pinpoints"] for v in pin)
    gemma = scaled_with_type("gemma3")
    side = gemma["vision_config"]["image_size"] // gemma["vision_config"]["patch_size"]
    tokens_side = int(gemma["mm_tokens_per_image"] ** 0.5)
    assert tokens_side ** 2 == gemma["mm_tokens_per_image"] and side % tokens_side == 0 and side // tokens_side >= 2
    model, batch = built("llava_next", "LlavaNextForConditionalGeneration")
    assert batch["pixel_values"].dim() == 5 and batch["image_sizes"].tolist() == [[size, size]] * 4
    assert not model._probe_image_dropped and trains(model, batch)


def test_idefics_style_images_come_one_per_row():
    model, batch = built("idefics3", "Idefics3ForConditionalGeneration")
    assert batch["pixel_values"].shape[:2] == (4, 1) and not model._probe_image_dropped
    assert (batch["input_ids"] == model.config.image_token_id).any() and trains(model, batch)


def test_narrow_leaf_sub_configs_no_longer_pin_the_tree_at_full_width():
    """VibeVoice's 64- and 128-wide audio tokenizer configs pinned the tree's width factor at 1:
    its 4096-wide text model stayed at full size (2,028M parameters, timeouts); and its codec's
    conv channels double from `num_filters` over six stages (up to 2,048)."""
    small = scaled_with_type("vibevoice")
    assert small["text_config"]["hidden_size"] <= 128 and small["diffusion_head_config"]["hidden_size"] <= 128
    assert small["audio_config"]["hidden_size"] == 64 == small["diffusion_head_config"]["latent_size"]
    assert small["audio_config"]["num_filters"] == 8 and small["audio_config"]["depths"] == [1] * 7
    model, _ = build_default("vibevoice", "VibeVoiceForConditionalGeneration")
    assert sum(p.numel() for p in model.parameters()) < 50_000_000


def test_cvt_stages_keep_the_blocks_its_drop_path_schedule_indexes():
    """CvT reads stage i's drop-path schedule at index i (modeling_cvt.py `drop_path_rates[self.stage]`):
    cut to one block per stage, its third stage raised IndexError and the type was refused."""
    assert scaled("cvt")["depth"] == [1, 2, 3]
    assert scaled("swin")["depths"] == [1, 1, 1, 1]  # other stage lists still keep one block


def test_audio_spectrogram_transformer_gets_a_filterbank():
    """AST's input_values are (batch, max_length frames, num_mel_bins), not a waveform: a 2-D
    waveform made its patch embedding fail (Dimension out of range) and the type was refused."""
    model, batch = built("audio-spectrogram-transformer", "ASTForAudioClassification")
    assert batch["input_values"].shape[1:] == (model.config.max_length, model.config.num_mel_bins)


def test_perceiver_is_scaled_and_its_image_classifier_gets_pixels_by_name():
    """Perceiver's image classifier was refused (conv2d got None: its main input is `inputs`,
    so no pixels were made), and its 26 self-attention layers, 256 latents of 1,280 features
    timed out the masked-LM probe at 180 s."""
    import torch

    small = scaled_with_type("perceiver")
    assert small["num_self_attends_per_block"] == 2 and small["num_latents"] <= 32 and small["d_latents"] < 1280
    model, batch = built("perceiver", "PerceiverForImageClassificationLearned")
    assert batch["pixel_values"].dim() == 4 and "inputs" not in batch
    model.train()
    assert torch.isfinite(model(**batch).loss)


def test_a_token_index_read_with_a_getattr_default_is_completed_inside_the_vocabulary():
    """ShieldGemma 2 picks two logits by `getattr(config, "yes_token_index", 10_784)`, which no
    config holds: index 10784 was out of bounds for the scaled 512-token vocabulary (refused)."""
    import torch

    model, batch = built("shieldgemma2", "ShieldGemma2ForImageClassification")
    said = " ".join(model._probe_completed)
    assert "yes_token_index = 10784" in said and "no_token_index = 3771" in said and "modeling_shieldgemma2" in said
    vocab = model.config.text_config.vocab_size
    assert 0 <= model.yes_token_index < vocab and 0 <= model.no_token_index < vocab
    assert model.yes_token_index != model.no_token_index
    model.train()
    assert torch.isfinite(model(**batch).logits).all()


def test_reformer_axial_positions_fit_the_scaled_width_and_the_batch():
    """Reformer's axial factors (64, 192) must add up to the hidden size and its axial shape
    (64, 64) multiply to the sequence in training: the masked-LM default was refused."""
    import torch

    small = scaled_with_type("reformer")
    assert sum(small["axial_pos_embds_dim"]) == small["hidden_size"]
    assert small["axial_pos_shape"] == [4, 8] and small["max_position_embeddings"] == 32
    model, batch = built("reformer", "ReformerForMaskedLM")
    model.train()
    assert torch.isfinite(model(**batch).loss)


def test_muse_glimmer_merged_width_scales_and_its_temporal_patch_is_read():
    """MuSE Glimmer's projector takes the vision width x merge size squared (`out_hidden_size`
    6144 = 1536 x 2 x 2), which stayed at full size beside a 96-wide tower; and its temporal patch
    is `patch_temporal` (588-wide patches for a 1176-wide embedding). Its image never ran."""
    small = scaled_with_type("muse_glimmer")
    vision = small["vision_config"]
    assert small["out_hidden_size"] == vision["hidden_size"] * vision["merge_size"] ** 2
    model, batch = built("muse_glimmer", "MuseGlimmerForConditionalGeneration")
    assert batch["pixel_values"].shape[-1] == 2 * 3 * vision["patch_size"] ** 2 and not model._probe_image_dropped
    assert (batch["input_ids"] == model.config.image_token_id).any() and trains(model, batch)


def test_a_waveform_is_whole_audio_tokens_where_the_encoder_asks():
    """MuSE Spark's audio encoder takes a multiple of `samples_per_token` (1920) samples only."""
    from types import SimpleNamespace

    from auditor.probe.batch import _waveform_length

    assert _waveform_length(SimpleNamespace(samples_per_token=1920)) == 5760
    assert _waveform_length(SimpleNamespace()) == 4000


def test_inkling2_gets_one_row_of_pixels_per_image_token():
    """Inkling 2's tower takes (image tokens, patch x merge, patch x merge, channels) and counts
    `image_grid_thw` in image tokens; the Qwen-VL patch layout failed in its reshape ("shape
    '[-1, 2, 20, 2, 20, 1200]' is invalid"). The layout its getter runs on is chosen."""
    model, batch = built("inkling2_loop", "Inkling2LoopForConditionalGeneration")
    vision = model.config.vision_config
    side = vision.patch_size * vision.spatial_merge_size
    assert batch["pixel_values"].shape[1:] == (side, side, vision.num_channels) and not model._probe_image_dropped
    assert (batch["input_ids"] == model.config.image_token_id).sum() == batch["image_grid_thw"].prod(-1).sum()
    assert trains(model, batch)


def test_kimi_and_paddleocr_get_their_patches_as_small_images():
    """Kimi K2.5's and PaddleOCR-VL's patch embeddings are convolutions over (patches, channels,
    patch, patch): flattened Qwen-VL patches failed ("Expected 3D or 4D input to conv2d, got
    [16, 588]"; "not enough values to unpack"). Kimi's merge kernel is `merge_kernel_size`."""
    model, batch = built("kimi_k25", "Kimi_K25ForConditionalGeneration")
    patch = model.config.vision_config.patch_size
    assert batch["pixel_values"].shape[1:] == (3, patch, patch) and not model._probe_image_dropped
    assert (batch["input_ids"] == model.config.image_token_id).any() and trains(model, batch)
    model, batch = built("paddleocr_vl", "PaddleOCRVLForConditionalGeneration")
    assert batch["pixel_values"].dim() == 4 and not model._probe_image_dropped and trains(model, batch)


def test_granite_docling_gets_its_required_tile_mask():
    """Granite Docling's inner image getter requires a (batch, tiles) `pixel_attention_mask` of
    real tiles (its outer getter passes it on as optional): without it, "'NoneType' object has
    no attribute 'sum'" and the image was left out."""
    model, batch = built("granite_docling", "GraniteDoclingForConditionalGeneration")
    assert batch["pixel_attention_mask"].shape == batch["pixel_values"].shape[:2] and batch["pixel_attention_mask"].all()
    assert not model._probe_image_dropped and trains(model, batch)


def test_aria_patch_counts_follow_the_scaled_image():
    """Aria's projector looks its query count up by patch count (1,225 or 4,900): the scaled
    image's 16 patches raised KeyError. The counts are laid out again from the scaled image."""
    small = scaled("aria")
    vision = small["vision_config"]
    assert small["projector_patch_to_query_dict"] == {(vision["image_size"] // vision["patch_size"]) ** 2: 128, 64: 256}
    model, batch = built("aria", "AriaForConditionalGeneration")
    assert (batch["input_ids"] == model.config.image_token_id).sum(-1).eq(128).all() and trains(model, batch)


def test_unlimited_ocr_sam_neck_ends_at_the_encoder_width():
    """Unlimited OCR's SAM neck (`downsample_channels` [512, 1024]) feeds its 1024-wide encoder as
    patch embeddings; left at full size beside a 128-wide encoder, its image never ran."""
    small = scaled("unlimited_ocr")["vision_config"]
    assert small["sam_config"]["downsample_channels"][-1] == small["encoder_config"]["hidden_size"]
    model, batch = built("unlimited_ocr", "UnlimitedOcrForConditionalGeneration")
    assert not model._probe_image_dropped and (batch["input_ids"] == model.config.image_token_id).any()
    assert trains(model, batch)


def test_video_llava_feeds_its_video_tower_a_video():
    """Video-LLaVA's `video_tower` reads only `pixel_values_videos` (images go to its image tower):
    the batch had none and the part never ran. Frames shaped as the image, one video placeholder
    per feature its `get_video_features` returns."""
    model, batch = built("video_llava", "VideoLlavaForConditionalGeneration")
    video = batch["pixel_values_videos"]
    assert video.shape[:2] == (4, 4) and video.shape[2:] == batch["pixel_values"].shape[1:]
    placed = (batch["input_ids"] == model.config.video_token_index).sum(dim=1)
    assert placed.min() > 0 and (placed == placed[0]).all()
    calls = []
    model.model.video_tower.register_forward_hook(lambda *a: calls.append(1))
    assert trains(model, batch) and calls


def test_kosmos2_5_reads_its_image_as_flattened_patches():
    """Kosmos-2.5's vision model reads Pix2Struct-style `flattened_patches` beside its text (its
    main input is input_ids): the batch had none and the vision part never ran. Its 2048 latent
    queries (one image position each) are capped, as they cost time only."""
    import torch

    model, batch = built("kosmos-2.5", "Kosmos2_5ForConditionalGeneration")
    assert model.config.latent_query_num <= 64
    patches, mask = batch["flattened_patches"], batch["image_embeds_position_mask"]
    assert patches.shape[-1] == 2 + model.config.vision_config.patch_embed_hidden_size
    with torch.no_grad():
        features = model.get_image_features(patches).pooler_output
    assert (mask.sum(dim=1) == features.shape[1]).all() and mask.shape == batch["input_ids"].shape
    assert trains(model, batch)


def test_windowed_audio_encoder_keeps_a_position_per_window_row():
    """Qwen2.5-Omni's audio encoder adds its position table to every window of 2 x n_window
    frames (n_window rows after its stride-2 conv): max_source_positions scaled to 32 under
    n_window = 100 failed every audio layout, and the audio tower never ran."""
    d = scaled("qwen2_5_omni_thinker")["audio_config"]
    assert d["max_source_positions"] >= d["n_window"]
    assert scaled("whisper")["max_source_positions"] == 32  # no window: scaled as before
    model, batch = built("qwen2_5_omni_thinker", "Qwen2_5OmniThinkerForConditionalGeneration")
    assert batch["input_features"].shape[1] == model.config.audio_config.num_mel_bins
    assert (batch["input_ids"] == model.config.audio_token_id).sum() > 0 and not model._probe_audio_dropped
    assert trains(model, batch)


def test_apertus_tokenizes_a_small_image_and_counts_audio_codes_per_clip():
    """Apertus 1.5 tokenizes images and audio into codes, returned one tensor per clip: a row's
    audio placeholders were counted as all clips' codes over the batch (tokens: 4, features: 28),
    every layout with media failed, and its 224-pixel images cost 25 s per encoding (160 s text
    only). Now an image of twice its downsampling factor (a 2 x 2 grid of codes), and the audio
    placeholders of one clip per row."""
    import torch

    model, batch = built("apertus1p5", "Apertus1p5ForConditionalGeneration")
    factor = model.config.vision_config.spatial_scale_factor
    assert batch["pixel_values"].shape[-2:] == (2 * factor, 2 * factor)
    with torch.no_grad():
        clips = model.model.get_audio_features(batch["input_values"], batch["padding_mask"]).pooler_output
    audio = (batch["input_ids"] == model.config.audio_token_id).sum(dim=1)
    assert (audio == clips[0].shape[0]).all() and (batch["input_ids"] == model.config.image_token_id).any()
    assert trains(model, batch)


def test_ovis2_default_says_its_image_width_and_a_consistent_config_runs_its_image():
    """Ovis 2 embeds its image features at its top-level hidden_size, 1536 in its default beside a
    4096-wide text model: "tokens: 64, features: 64" failed every layout with the image, and the
    report said only that. It now says the config's two widths, and the scaled model gives both
    one width, so the default's image runs, as it does where the widths are equal."""
    import torch

    from auditor.probe.batch import hf_batch
    from auditor.probe.build import build_hf, width_mismatch

    error = "ValueError: Image features and image tokens do not match, tokens: 64, features: 64"
    why = width_mismatch({"model_type": "ovis2"}, error)
    assert "hidden_size = 1536" in why and "text_config.hidden_size = 4096" in why and "at full size" in why
    assert width_mismatch({"model_type": "ovis2"}, error.replace("tokens: 64", "tokens: 60")) == ""
    assert why == width_mismatch({"model_type": "ovis2"})  # said before a probe too (the report's line)
    for config in ({"hidden_size": 4096}, {}):
        model, arch = build_hf({"model_type": "ovis2", "architectures": ["Ovis2ForConditionalGeneration"], **config},
                               None, full_size=False, seed=0, device="cpu", dtype=torch.float32)
        batch = hf_batch(model, arch, 0, "cpu")
        assert "pixel_values" in batch and (batch["input_ids"] == model.config.image_token_id).any()
        assert trains(model, batch) and not model._probe_image_dropped


def test_a_part_no_forward_calls_is_said_to_be_unreachable():
    """Janus builds its VQ model only to decode generated image tokens (`decode_image_tokens`):
    no training forward runs it, and the report said only that the batch gave it no input."""
    import transformers.models.janus.modeling_janus as janus
    import transformers.models.video_llava.modeling_video_llava as video_llava

    from auditor.probe.parts import Part, explain_unreached

    model = janus.JanusForConditionalGeneration.__new__(janus.JanusForConditionalGeneration)
    vq, vision = Part("vq", ("vq_config",), "model.vqmodel"), Part("vision", ("vision_config",), "model.vision_model")
    explain_unreached(model, [vq, vision])
    assert "never calls it" in vq.why and "decode_image_tokens" in vq.why and "at full size either" in vq.why
    assert vision.why == ""  # get_image_features, which its forward calls, runs it
    other = video_llava.VideoLlavaForConditionalGeneration.__new__(video_llava.VideoLlavaForConditionalGeneration)
    video = Part("vision", ("vision_config",), "model.video_tower")
    explain_unreached(other, [video])
    assert video.why == ""


def test_the_width_note_is_for_a_model_with_an_image_to_feed():
    """Qwen3.5-MoE's causal-LM class builds the text model only: the default's vision widths are
    no fact about it (its report said them anyway); its image-text class gets the note."""
    from types import SimpleNamespace

    from auditor.probe.runner import width_note

    config = {"model_type": "qwen3_5_moe"}
    text_only = SimpleNamespace(config=SimpleNamespace(vision_config=None))
    with_image = SimpleNamespace(config=SimpleNamespace(vision_config=object()))
    assert width_note(text_only, config) == ""
    note = width_note(with_image, config)
    assert "vision_config.out_hidden_size = 3584" in note and note.endswith("the scaled model gives both one width")
