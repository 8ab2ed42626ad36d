"""The framework gaps of issue #26, each from a small reproduction: a TRL recipe that keeps
dropout on, use_unsloth outside LLaMA-Factory, fairseq's DDP defaults under layer drop, a
NeMo PEFT file of its own, a trainer YAML no framework claims, a LoRA setup known by its keys,
and the functional dropout StarCoder2 applies besides attention."""

from __future__ import annotations

import json
import os
import re

import pytest

from auditor.checks.architecture import FUNCTIONAL_OTHER
from tests.conftest import audit, write_files


def _run(tmp_path, files, select):
    write_files(tmp_path, files)
    return sorted((os.path.basename(f.path), f.code, f.span.line, f.severity)
                  for f in audit([str(tmp_path)], select=select) if f.code in select)


DPO = "model_name_or_path: {model}\ndataset_name: trl-lib/ultrafeedback_binarized\nbeta: 0.1\ndisable_dropout: false\n"


def test_trl_recipe_keeping_dropout_on_a_model_with_dropout(tmp_path):
    assert _run(tmp_path / "y", [("dpo.yaml", DPO.format(model="openai-community/gpt2"))], ("DRP705",)) == [
        ("dpo.yaml", "DRP705", 4, "warning")]
    as_json = json.dumps({"model_name_or_path": "openai-community/gpt2", "beta": 0.1, "disable_dropout": False})
    assert _run(tmp_path / "j", [("recipe.json", as_json)], ("DRP705",)) == [("recipe.json", "DRP705", 1, "warning")]


def test_trl_recipe_keeping_dropout_on_a_model_without_it_or_unknown(tmp_path):
    assert _run(tmp_path / "q", [("dpo.yaml", DPO.format(model="Qwen/Qwen2.5-0.5B"))], ("DRP705",)) == []
    assert _run(tmp_path / "u", [("dpo.yaml", DPO.format(model="acme/atlas-3b"))], ("DRP705",)) == [
        ("dpo.yaml", "DRP705", 4, "info")]
    lora = DPO.format(model="Qwen/Qwen2.5-0.5B") + "use_peft: true\nlora_dropout: 0.05\n"
    assert _run(tmp_path / "l", [("dpo.yaml", lora)], ("DRP705",)) == [("dpo.yaml", "DRP705", 4, "warning")]
    kept = DPO.format(model="openai-community/gpt2").replace("false", "true")
    assert _run(tmp_path / "t", [("dpo.yaml", kept)], ("DRP705",)) == []


def test_use_unsloth_in_a_recipe_no_framework_claims(tmp_path):
    """Firefly's JSON recipes (train_args/sft/qlora/*.json): use_unsloth + lora_dropout 0.05."""
    recipe = {"output_dir": "out", "model_name_or_path": "Qwen/Qwen-7B-Chat", "use_unsloth": True,
              "lora_rank": 64, "lora_dropout": 0.05}
    assert _run(tmp_path / "a", [("qlora.json", json.dumps(recipe))], ("DRP410",)) == [
        ("qlora.json", "DRP410", 1, "info")]
    recipe["use_unsloth"] = False
    assert _run(tmp_path / "b", [("qlora.json", json.dumps(recipe))], ("DRP410",)) == []


FAIRSEQ = """common:
  fp16: true
task:
  _name: translation
model:
  _name: transformer
  encoder_layerdrop: 0.1
optimization:
  max_update: 1000
"""


def test_fairseq_layerdrop_under_its_ddp_defaults(tmp_path):
    """fairseq's DistributedTrainingConfig defaults find_unused_parameters to False with its
    pytorch_ddp backend; legacy_ddp (what its wav2vec/hubert recipes use) is not judged."""
    assert _run(tmp_path / "a", [("cfg.yaml", FAIRSEQ)], ("DRP430",)) == [("cfg.yaml", "DRP430", 7, "warning")]
    for i, section in enumerate(("distributed_training:\n  find_unused_parameters: true\n",
                                 "distributed_training:\n  ddp_backend: legacy_ddp\n")):
        assert _run(tmp_path / f"ok{i}", [("cfg.yaml", FAIRSEQ + section)], ("DRP430",)) == []
    explicit = FAIRSEQ + "distributed_training:\n  ddp_backend: c10d\n  find_unused_parameters: false\n"
    assert _run(tmp_path / "x", [("cfg.yaml", explicit)], ("DRP430",)) == [("cfg.yaml", "DRP430", 7, "warning")]


def test_fairseq_recipe_is_not_a_fine_tune_by_construction(tmp_path):
    """fairseq trains from scratch too: the fine-tuning limits need finetune_from_model."""
    high = FAIRSEQ.replace("encoder_layerdrop: 0.1", "dropout: 0.4")
    assert _run(tmp_path / "a", [("cfg.yaml", high)], ("DRP200",)) == []
    tuned = high + "checkpoint:\n  finetune_from_model: /ckpt/base.pt\n"
    assert [f[1] for f in _run(tmp_path / "b", [("cfg.yaml", tuned)], ("DRP200",))] == ["DRP200"]


def test_nemo_peft_file_of_its_own(tmp_path):
    peft = ("model:\n  peft:\n    peft_scheme: lora\n    lora_tuning:\n      adapter_dropout: 0.0\n"
            "    adapter_tuning:\n      adapter_dropout: 0.1\n")
    assert _run(tmp_path, [("peft.yaml", peft)], ("DRP503",)) == [("peft.yaml", "DRP503", 7, "warning")]


def test_trainer_yaml_no_framework_claims_joins_the_layer_drop_config(tmp_path):
    config = json.dumps({"model_type": "wav2vec2", "layerdrop": 0.1})
    assert _run(tmp_path / "a", [("config.json", config), ("train.yaml", "model_name_or_path: ./\n"
                                                                        "ddp_find_unused_parameters: false\n")],
                ("DRP430",)) == [("config.json", "DRP430", 1, "warning")]
    assert _run(tmp_path / "b", [("config.json", config), ("train.yaml", "model_name_or_path: ./\n"
                                                                        "ddp_find_unused_parameters: true\n")],
                ("DRP430",)) == []


def test_a_peft_key_makes_a_lora_setup(tmp_path):
    files = [("lora.yaml", "lora_r: 8\nlora_alpha: 16\nlora_dropout: 0.9\n"),
             ("list.yaml", "lora_dropout: [0.9]\nproject: x\n"),
             ("alias.yaml", "base: &d 0.9\nlora_dropout: *d\nepochs: 3\n"),
             ("tag.yaml", "lora_dropout: !!python/float 0.9\nepochs: 3\n"),
             ("sweep.yaml", "lora_dropout: {values: [0.05, 0.1]}\nmethod: bayes\n"),
             ("other.yaml", "hidden_dropout: 0.9\nproject: x\n")]
    found = _run(tmp_path, files, ("DRP106", "DRP201", "DRP200"))
    assert [(f[0], f[1]) for f in found] == [("alias.yaml", "DRP201"), ("list.yaml", "DRP106"),
                                              ("lora.yaml", "DRP201"), ("tag.yaml", "DRP106")]


def test_drp790_names_every_functional_dropout_of_starcoder2(tmp_path):
    config = json.dumps({"model_type": "starcoder2", "attention_dropout": 0.0, "residual_dropout": 0.1,
                         "embedding_dropout": 0.1})
    write_files(tmp_path, [("config.json", config), ("recipe.yaml", "base_model: ./\nrl: dpo\n")])
    found = [f for f in audit([str(tmp_path)], select=("DRP790",)) if f.code == "DRP790"]
    assert [f.key for f in found] == ["residual_dropout", "embedding_dropout"]
    assert "starcoder2 applies attention dropout, residual_dropout and embedding_dropout functionally" in \
        found[0].message


def test_functional_dropout_table_matches_the_installed_transformers():
    """FUNCTIONAL_OTHER is what each family's modeling file passes to nn.functional.dropout
    from a config attribute (read from the installed source; the static path never imports it)."""
    try:
        import importlib.util
        spec = importlib.util.find_spec("transformers")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("transformers is not installed")
    root = os.path.join(list(spec.submodule_search_locations)[0], "models")
    for model_type, keys in FUNCTIONAL_OTHER.items():
        with open(os.path.join(root, model_type, f"modeling_{model_type}.py"), encoding="utf-8") as fh:
            text = fh.read()
        attrs = dict(re.findall(r"self\.(\w+)\s*=\s*config\.(\w+)", text))
        used = {attrs.get(a, a) for a in re.findall(r"functional\.dropout\(\s*[\w.\[\]]+,\s*p\s*=\s*self\.(\w+)", text)}
        assert set(keys) == used, (model_type, used)
