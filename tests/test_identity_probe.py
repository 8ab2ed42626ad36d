"""The probe on a recipe that names its model by hub id: the config comes from the local HF
cache, or from the type's Transformers defaults plus the recipe's overrides; nothing downloaded."""

from __future__ import annotations

import os

import pytest

from auditor.probe.targets import TargetError, resolve_target
from tests.conftest import REPO, write_files

FIXTURES = os.path.join(REPO, "fixtures")


def test_a_hub_id_recipe_builds_from_the_type_defaults():
    target = resolve_target(os.path.join(FIXTURES, "hub-id-axolotl-overrides", "recipe.yaml"))
    assert target.config == {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_dropout_prob": 0.1}
    assert "meta-llama/Llama-3.2-1B" in target.config_origin and "nothing downloaded" in target.config_origin
    assert [(k.dotted, k.span.line, target.which(i, k)) for i, k in enumerate(target.keys)] == [
        ("hidden_dropout_prob", 8, "config"), ("lora_dropout", 6, "adapter")]


def test_a_cached_config_is_used_when_the_cache_has_it(monkeypatch):
    fixture = os.path.join(FIXTURES, "hub-id-hf-cache")
    monkeypatch.setenv("HF_HUB_CACHE", os.path.join(fixture, "hf-cache"))
    target = resolve_target(os.path.join(fixture, "recipe.yaml"))
    assert target.config["model_type"] == "gpt2" and "local Hugging Face cache" in target.config_origin
    assert target.config_path.startswith(os.path.join(fixture, "hf-cache"))


def test_an_unknown_hub_id_is_refused_with_the_reason(tmp_path):
    path = write_files(str(tmp_path), [("recipe.yaml", "base_model: acme/atlas-3b\nadapter: lora\nlora_dropout: 0.1\n")])[0]
    with pytest.raises(TargetError, match="never downloads"):
        resolve_target(path)


def test_the_scaled_down_model_builds_without_the_network():
    torch = pytest.importorskip("torch")
    from auditor.probe.build import build_hf

    target = resolve_target(os.path.join(FIXTURES, "hub-id-axolotl-overrides", "recipe.yaml"))
    model, arch = build_hf(target.config, target.adapter, full_size=False, seed=0, device=torch.device("cpu"),
                           dtype=torch.float32)
    assert "LlamaForCausalLM" in type(model.base_model.model).__name__
    assert sum(p.numel() for p in model.parameters()) < 5_000_000


def test_a_script_loading_a_hub_id_is_probed_like_a_recipe_naming_it():
    """Issue 27: the probe followed a hub id in a recipe but refused it in a Python script."""
    target = resolve_target(os.path.join(FIXTURES, "hub-id-tutorial", "train.py"))
    assert target.config == {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}
    assert "meta-llama/Llama-3.2-1B" in target.config_origin and "nothing downloaded" in target.config_origin


def test_a_script_naming_an_unknown_hub_id_is_refused_with_the_reason(tmp_path):
    path = write_files(str(tmp_path), [("train.py", "from transformers import AutoModelForCausalLM\n"
                                                    "m = AutoModelForCausalLM.from_pretrained('acme/atlas-3b')\n")])[0]
    with pytest.raises(TargetError, match="never downloads"):
        resolve_target(path)
