"""Framework profiles, launch lines, dialect evidence and the plan (#18, #13.3, #13.6, #15.6)."""

from __future__ import annotations

import json

from auditor.knowledge import dropout_keys, frameworks
from auditor.sources import shell, structured
from tests.conftest import audit, write_files


def _codes(findings):
    return sorted((f.code, f.span.line) for f in findings if f.severity in ("warning", "error"))


# ------------------------------------------------------------------------- key classification

def test_every_known_setting_says_where_it_was_found():
    doc = json.loads(open(dropout_keys._SETTINGS_FILE, encoding="utf-8").read())
    assert doc["settings"] and all(entry["where"] for entry in doc["settings"].values())
    assert dropout_keys.NOT_RATES == frozenset(doc["settings"])
    assert not dropout_keys.is_rate_key("dropout_position")
    assert not dropout_keys.is_rate_key("hidden_dropout_add")     # a fused-kernel suffix from the data


def test_word_values_are_settings_unless_the_knowledge_names_a_rate():
    assert dropout_keys.is_setting_word("attn_dropout_impl", "fused")
    assert not dropout_keys.is_setting_word("lora_dropout", "pre")       # PEFT knows it as a rate
    assert not dropout_keys.is_setting_word("attention_dropout", "none")  # architectures know it
    assert not dropout_keys.is_setting_word("my_dropout", "0.1")


def test_megatron_lora_position_is_not_reported(tmp_path):
    """Regression (#18): verl's megatron LoRA block reported DRP102 at `dropout_position: pre`."""
    write_files(tmp_path, [("ppo_megatron_trainer.yaml",
                            "actor:\n  lora:\n    rank: 0\n    dropout: 0.0\n    dropout_position: pre\n")])
    assert _codes(audit([str(tmp_path)])) == []


# ------------------------------------------------------------------------- launch lines

def test_launch_structure_of_wrapped_programs():
    text = ("#!/bin/bash\nCUDA_VISIBLE_DEVICES=0 deepspeed --include localhost:0 --module openrlhf.cli.train_dpo \\\n"
            "   --ds.lora.rank 16 --ds.lora.dropout 0.1 --flash_attn  # --dropout 0.9\n"
            "python3 -m verl.trainer.main config=examples/config.yaml +worker.actor.model.lora.rank=64 "
            "algorithm.adv_estimator=grpo\n"
            "swift rlhf --rlhf_type kto --tuner_type=full\n")
    first, second, third = shell.launches(text)
    assert (first.program, first.launcher) == ("openrlhf.cli.train_dpo", ("deepspeed", "-m"))
    assert first.flags["ds.lora.rank"].value == "16" and first.flags["flash_attn"].value is True
    assert "dropout" not in first.flags      # the comment is not read
    span = first.flags["ds.lora.dropout"].span
    assert (span.line, text[span.start:span.end]) == (3, "0.1")
    assert second.script.value == "examples/config.yaml"
    assert second.overrides["worker.actor.model.lora.rank"].value == "64"
    assert third.subcommand == "rlhf" and text[third.flags["tuner_type"].span.start:third.flags["tuner_type"].span.end] == "full"
    facts = frameworks.recognise_launch(third)
    assert facts["framework"][0] == "ms-swift" and facts["trainer"][0] == "kto" and facts["finetune"][0] == "full"


def test_hydra_override_dropout_is_a_setting_with_its_span():
    text = "python3 -m verl.trainer.main worker.actor.model.lora.rank=8 worker.actor.model.lora.dropout=0.05\n"
    src = shell.read("run.sh", text)
    (s,) = src.settings
    assert (s.role, s.p, text[s.value_span.start:s.value_span.end]) == ("lora", 0.05, "0.05")
    assert text[s.key_span.start:s.key_span.end] == "worker.actor.model.lora.dropout"
    assert src.get("framework") == "verl" and src.get("finetune") == "lora"


def test_unknown_frameworks_claim_nothing(tmp_path):
    """DRP500 needs evidence of a full fine-tune, DRP501/DRP705 evidence about the trainer."""
    write_files(tmp_path, [("train_dpo.sh", "python my_dpo.py --use_lora --lora_dropout 0.1\n"),
                           ("sub/run.sh", "torchrun --nproc_per_node 8 train.py --lora_dropout 0.1 --dropout 0.1\n")])
    assert _codes(audit([str(tmp_path)])) == []


def test_own_dpo_trainer_that_keeps_dropout_is_named(tmp_path):
    write_files(tmp_path, [("train_dpo.sh", "deepspeed --module openrlhf.cli.train_dpo --ds.lora.rank 8 "
                                            "--ds.lora.dropout 0.1\n")])
    (f,) = [f for f in audit([str(tmp_path)]) if f.code == "DRP705"]
    assert "OpenRLHF's DPO trainer" in f.message


def test_launcher_yaml_arguments_are_read_in_place(tmp_path):
    text = ("tasks:\n  - command: ['/bin/sh', '-c']\n    arguments: ['accelerate launch train.py\n"
            "      --use_lora --lora_dropout 0.05']\n")
    src = structured.read("beaker.yaml", text)
    (s,) = src.settings
    assert (s.value_span.line, text[s.value_span.start:s.value_span.end]) == (4, "0.05")
    assert "arguments" in src.get("dialect_why")


# ------------------------------------------------------------------------- dialects

def test_framework_lora_switches_are_lora_evidence():
    for key in ("use_lora", "use_qlora", "lora_enable"):
        src = structured.read("sft.yaml", f"model_name_or_path: m\ndataset_name: d\n{key}: true\nlora_dropout: 0.1\n")
        assert src.dialect == "trl" and src.get("finetune") == "lora", key
    src = structured.read("sft.yaml", "model_name_or_path: m\ndataset_name: d\ntuner_type: full\nlora_dropout: 0.1\n")
    assert src.get("finetune") == "full"


def test_minimal_axolotl_preference_recipe():
    src = structured.read("recipe.yaml", "base_model: m\nrl: kto\n")
    assert (src.dialect, src.get("finetune"), src.get("trainer")) == ("axolotl", "full", "kto")
    assert src.get("dialect_why") == "base_model + rl"


def test_two_dialects_that_fit_keep_only_what_they_agree_on():
    text = "base_model: m\ndatasets: []\nstage: dpo\nfinetuning_type: lora\nlora_dropout: 0.1\n"
    src = structured.read("recipe.yaml", text)
    assert src.dialect == "axolotl" and src.get("dialect_rivals") == ("llamafactory",)
    assert src.get("finetune") is None      # axolotl: full (no adapter); LLaMA-Factory: lora
    assert src.get("trainer") is None       # axolotl: none; LLaMA-Factory: dpo


# ------------------------------------------------------------------------- the plan

def test_plan_is_quiet_and_says_not_stated(tmp_path, run_cli):
    write_files(tmp_path, [("a/configurator.py", "import sys\nx = 1\n"),
                           ("b/train.py", "from peft import LoraConfig\ncfg = LoraConfig(r=8, lora_dropout=0.1)\n"),
                           ("c/recipe.yaml", "base_model: m\nrl: dpo\n"),
                           ("c/config.json", '{"model_type": "llama", "attention_dropout": 0.1}')])
    code, out = run_cli("plan", "--format", "json", str(tmp_path))
    plans = {p["driver"].split("/")[-1]: p for p in json.loads(out)}
    assert "configurator.py" not in plans
    assert plans["train.py"]["finetune"] == "lora" and plans["train.py"]["trainer"] == "not stated"
    assert plans["recipe.yaml"]["trainer"] == "TRL's DPOTrainer via axolotl"
    assert (plans["recipe.yaml"]["dialect"], plans["recipe.yaml"]["dialect_why"]) == ("axolotl", "base_model + rl")
    code, out = run_cli("plan", str(tmp_path / "c"))
    assert "read as axolotl (base_model + rl)" in " ".join(out.split())


def test_nemo_plan_shows_only_the_selected_peft_section(tmp_path, run_cli):
    write_files(tmp_path, [("squad.yaml", "trainer: {}\nexp_manager: {}\nmodel:\n  peft:\n    peft_scheme: lora\n"
                                          "    lora_tuning:\n      adapter_dropout: 0.05\n"
                                          "    adapter_tuning:\n      adapter_dropout: 0.1\n")])
    code, out = run_cli("plan", "--format", "json", str(tmp_path))
    (plan,) = json.loads(out)
    assert [e["site"] for e in plan["entries"]] == ["model.peft.lora_tuning.adapter_dropout"]
    assert [f.code for f in audit([str(tmp_path)])] == ["DRP503"]


def test_plan_without_a_stated_method_says_so(tmp_path, run_cli):
    write_files(tmp_path, [("run.sh", "python finetune.py --hidden_dropout 0.1\n")])
    code, out = run_cli("plan", "--format", "json", str(tmp_path))
    (plan,) = json.loads(out)
    assert (plan["finetune"], plan["trainer"]) == ("not stated", "not stated")


def test_bare_flag_does_not_swallow_the_next_flag():
    """Regression: `--use_lora --lora_dropout 0.05` read `--lora_dropout` as --use_lora's value."""
    src = shell.read("run.sh", "python t.py --use_lora --lora_dropout 0.05\n")
    assert [(s.key, s.p) for s in src.settings] == [("lora_dropout", 0.05)]


def test_non_training_subcommands_are_not_runs():
    """Regression: `swift deploy --adapters ...` was read as a LoRA training run (tuner_type's default)."""
    (launch,) = shell.launches("swift deploy --adapters swift/test_lora --port 8000\n")
    assert frameworks.recognise_launch(launch) is None
    assert shell.read("deploy.sh", "swift export --adapters out/lora --merge_lora true\n") is None


def test_hf_argument_recipe_without_a_selector_states_no_method():
    """The TRL markers (model_name_or_path + dataset_name...) are shared by many frameworks."""
    src = structured.read("sft.yaml", "model_name_or_path: m\ndataset_name: d\nlora_r: 16\nlora_dropout: 0.1\n")
    assert src.dialect == "trl" and src.get("finetune") is None
    src = structured.read("sft.yaml", "model_name_or_path: m\ndataset_name: d\nuse_peft: false\nlora_dropout: 0.1\n")
    assert src.get("finetune") == "full"
