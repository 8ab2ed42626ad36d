"""Model references in more dialects (#28): llm-foundry, NeMo (LLM, SALM, ASR), fairseq, OpenRLHF,
DeepSpeed-Chat, ms-swift and verl launch flags; trust_remote_code from each kind of file; custom
code and other libraries named in the plan without a DRP310; and a script's model default that
a launch line replaces (the FastChat `facebook/opt-125m` placeholder)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import audit, write_files


def plans(tmp_path, files, models=None):
    """driver basename -> ModelIdentity, through the setup graph (launch lines included)."""
    from auditor.run.engine import Engine, Options
    from auditor.setup import graph, resolve

    paths = write_files(str(tmp_path), files)
    engine = Engine(Options(root=str(tmp_path), models=models or {}))
    found = {}
    for directory, group in resolve.by_directory(paths):
        for setup in graph.setups(engine, directory, engine.load_directory(group)):
            if setup.driver is not None:
                found[os.path.relpath(setup.driver.path, str(tmp_path))] = setup.model
    return found


LLM_FOUNDRY = """variables:
  model_name_or_path: mosaicml/mpt-7b
model:
  name: hf_causal_lm
  pretrained: true
  pretrained_model_name_or_path: mosaicml/mpt-7b
  config_overrides:
    attn_config:
      attn_pdrop: 0.1
max_seq_len: 2048
"""
NEMO_SALM = """name: megatron_audio_gpt_peft
trainer:
  devices: 1
model:
  llm:
    pretrained_model: "meta-llama/Llama-3.2-1B-Instruct"
  speech_encoder:
    pretrained_model: "nvidia/canary-1b"
  peft:
    peft_scheme: lora
    lora_tuning:
      adapter_dropout: 0.05
exp_manager:
  exp_dir: null
"""
NEMO_ASR = """name: Speech_To_Text_Finetuning
init_from_pretrained_model: nvidia/stt_en_fastconformer_transducer_large
trainer:
  devices: 1
model:
  dropout: 0.1
exp_manager:
  exp_dir: null
"""
NEMO_LLM = """trainer:
  devices: 8
model:
  restore_from_path: /models/llama2-7b.nemo
  hidden_dropout: 0.1
exp_manager:
  exp_dir: null
"""
FAIRSEQ = """common:
  fp16: true
checkpoint:
  finetune_from_model: /models/roberta.large/model.pt
model:
  _name: roberta_large
  dropout: 0.1
"""


@pytest.mark.parametrize("name,text,ref,model_type,source", [
    ("foundry.yaml", LLM_FOUNDRY, "mosaicml/mpt-7b", "mpt", "name-table"),
    ("salm.yaml", NEMO_SALM, "meta-llama/Llama-3.2-1B-Instruct", "llama", "name-table"),
    ("asr.yaml", NEMO_ASR, "nvidia/stt_en_fastconformer_transducer_large", None, "non-transformers"),
    ("llm.yaml", NEMO_LLM, "/models/llama2-7b.nemo", None, "non-transformers"),
    ("fairseq.yaml", FAIRSEQ, "/models/roberta.large/model.pt", None, "non-transformers"),
    ("fairseq.sh", "fairseq-train data-bin --restore-file /ckpt/model.pt --dropout 0.1\n",
     "/ckpt/model.pt", None, "non-transformers"),
    ("rlhf.sh", "deepspeed --module openrlhf.cli.train_dpo --model.model_name_or_path OpenRLHF/Llama-3-8b-sft-mixture "
                "--ds.lora.rank 16 --ds.lora.dropout 0.05\n", "OpenRLHF/Llama-3-8b-sft-mixture", "llama", "family-token"),
    ("rlhf_old.sh", "deepspeed --module openrlhf.cli.train_sft --pretrain meta-llama/Meta-Llama-3-8B "
                    "--ds.lora.rank 16 --ds.lora.dropout 0.05\n", "meta-llama/Meta-Llama-3-8B", "llama", "name-table"),
    ("step3.sh", "deepspeed main.py --actor_model_name_or_path AdamG012/chat-opt-1.3b-sft-deepspeed "
                 "--critic_model_name_or_path AdamG012/chat-opt-350m-reward-deepspeed --actor_dropout 0.0\n",
     "AdamG012/chat-opt-1.3b-sft-deepspeed", "opt", "family-token"),
    ("swift.sh", "swift sft --model Qwen/QwQ-32B --tuner_type lora --lora_dropout 0.05\n", "Qwen/QwQ-32B", "qwen2",
     "name-table"),
    ("verl.sh", "python3 -m verl.trainer.main_ppo actor_rollout_ref.model.path=Qwen/Qwen2.5-3B-Instruct "
                "actor_rollout_ref.model.lora_rank=16 actor_rollout_ref.actor.dropout=0.1\n",
     "Qwen/Qwen2.5-3B-Instruct", "qwen2", "name-table"),
])
def test_model_keys_of_more_dialects(tmp_path, name, text, ref, model_type, source):
    model = plans(tmp_path, [(name, text)])[name]
    assert (model.ref, model.model_type, model.source) == (ref, model_type, source), model.detail


def test_a_loader_key_names_the_library_that_loads_it(tmp_path):
    assert "NeMo" in plans(tmp_path, [("asr.yaml", NEMO_ASR)])["asr.yaml"].detail
    assert "fairseq" in plans(tmp_path, [("fairseq.yaml", FAIRSEQ)])["fairseq.yaml"].detail


@pytest.mark.parametrize("name,text", [
    ("recipe.yaml", "base_model: THUDM/glm-4-9b-chat\ntrust_remote_code: true\nadapter: lora\nlora_dropout: 0.1\n"),
    ("train.py", "from transformers import AutoModelForCausalLM\nfrom peft import LoraConfig\n"
                 "m = AutoModelForCausalLM.from_pretrained('THUDM/glm-4-9b-chat', trust_remote_code=True)\n"
                 "cfg = LoraConfig(lora_dropout=0.1)\n"),
    ("run.sh", "python train.py --model_name_or_path THUDM/glm-4-9b-chat --trust_remote_code --lora_dropout 0.1\n"),
])
def test_trust_remote_code_makes_a_custom_code_org_custom_code(tmp_path, name, text):
    model = plans(tmp_path, [(name, text)])[name]
    assert (model.model_type, model.source) == (None, "custom-code") and "trust_remote_code" in model.detail
    assert [f for f in audit([str(tmp_path / name)]) if f.code == "DRP310"] == []


def test_without_trust_remote_code_the_same_id_stays_unknown(tmp_path):
    files = [("recipe.yaml", "base_model: THUDM/glm-4-9b-chat\ntrust_remote_code: false\nadapter: lora\n"
                             "lora_dropout: 0.1\n")]
    assert plans(tmp_path, files)["recipe.yaml"].source == "unknown"
    assert [f.code for f in audit([str(tmp_path / "recipe.yaml")]) if f.code == "DRP310"] == ["DRP310"]


@pytest.mark.parametrize("ref,source", [
    ("runwayml/stable-diffusion-v1-5", "non-transformers"),
    ("timm/vit_base_patch16_224.augreg2_in21k_ft_in1k", "non-transformers"),
    ("THUDM/chatglm3-6b", "custom-code"),
    ("internlm/internlm2_5-7b-chat", "custom-code"),
])
def test_custom_code_and_other_libraries_are_named_and_get_no_drp310(tmp_path, ref, source):
    files = [("recipe.yaml", f"base_model: {ref}\nadapter: lora\nlora_dropout: 0.1\n")]
    model = plans(tmp_path, files)["recipe.yaml"]
    assert (model.model_type, model.source) == (None, source) and model.detail
    assert [f for f in audit([str(tmp_path / "recipe.yaml")]) if f.code == "DRP310"] == []


def test_a_fine_tune_that_names_its_base_gets_the_base_type_and_its_rules(tmp_path):
    files = [("recipe.yaml", "base_model: allenai/Llama-3.1-Tulu-3-8B-SFT\nrl: dpo\nadapter: lora\nlora_dropout: 0.1\n"
                             "overrides_of_model_config:\n  hidden_dropout_prob: 0.1\n")]
    model = plans(tmp_path, files)["recipe.yaml"]
    assert (model.model_type, model.source) == ("llama", "family-token") and "'Llama-3.1'" in model.detail
    assert "DRP510" in {f.code for f in audit([str(tmp_path / "recipe.yaml")])}  # llama reads no hidden_dropout_prob


FLANT5 = '''from dataclasses import dataclass, field
from typing import Optional
import transformers


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(default="facebook/opt-125m")


def train():
    parser = transformers.HfArgumentParser((ModelArguments, transformers.TrainingArguments))
    model_args, training_args = parser.parse_args_into_dataclasses()
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(model_args.model_name_or_path, dropout_rate=0.1)
'''
SCRIPT = "fastchat/train/train_flant5.py"


def test_a_launch_line_replaces_the_scripts_model_default(tmp_path):
    # FastChat: scripts/*.sh launch fastchat/train/*.py, whose dataclass default is facebook/opt-125m
    found = plans(tmp_path, [(SCRIPT, FLANT5), ("scripts/train_t5.sh",
                  "torchrun --nproc_per_node=4 fastchat/train/train_flant5.py \\\n"
                  "    --model_name_or_path google/flan-t5-xl \\\n    --output_dir ./out\n")])
    model = found[SCRIPT]
    assert (model.ref, model.model_type) == ("google/flan-t5-xl", "t5")
    assert "scripts/train_t5.sh:2" in model.detail and "facebook/opt-125m" in model.detail


def test_without_a_launch_line_the_default_is_what_runs(tmp_path):
    model = plans(tmp_path, [(SCRIPT, FLANT5)])[SCRIPT]
    assert (model.ref, model.model_type) == ("facebook/opt-125m", "opt")


@pytest.mark.parametrize("second,model_type", [
    ("--model_name_or_path=baichuan-inc/Baichuan2-7B-Base", None),    # two models: left to each launch
    ("--model_name_or_path $MODEL", None),                             # set at run time
    ("--model_name_or_path google/flan-t5-large", "t5"),               # two models of one type
])
def test_launch_lines_that_differ(tmp_path, second, model_type):
    found = plans(tmp_path, [(SCRIPT, FLANT5),
                             ("scripts/a.sh", "python fastchat/train/train_flant5.py --model_name_or_path google/flan-t5-xl\n"),
                             ("scripts/b.sh", f"python fastchat/train/train_flant5.py {second}\n")])
    model = found[SCRIPT]
    assert (model.model_type, model.source) == (model_type, "launch-lines")
    assert "facebook/opt-125m" in model.detail and "scripts/b.sh:1" in model.detail
    assert [f for f in audit([str(tmp_path / SCRIPT)]) if f.code == "DRP310"] == []


def test_a_literal_in_the_script_is_not_a_default(tmp_path):
    body = FLANT5.replace("from_pretrained(model_args.model_name_or_path", "from_pretrained('google/flan-t5-base'")
    found = plans(tmp_path, [(SCRIPT, body), ("scripts/a.sh",
                  "python fastchat/train/train_flant5.py --model_name_or_path google/flan-t5-xl\n")])
    assert found[SCRIPT].ref == "google/flan-t5-base"   # the script loads its literal whatever the flag says


def test_an_argparse_default_yields_to_the_launch_line_too(tmp_path):
    script = ("import argparse\nfrom transformers import AutoModelForCausalLM\n"
              "p = argparse.ArgumentParser()\np.add_argument('--model_name_or_path', default='facebook/opt-125m')\n"
              "p.add_argument('--dropout', type=float, default=0.1)\nargs = p.parse_args()\n"
              "m = AutoModelForCausalLM.from_pretrained(args.model_name_or_path)\n")
    found = plans(tmp_path, [("train.py", script),
                             ("run.sh", "deepspeed train.py --model_name_or_path=baichuan-inc/Baichuan2-7B-Base\n")])
    assert (found["train.py"].ref, found["train.py"].source) == ("baichuan-inc/Baichuan2-7B-Base", "custom-code")


def test_the_plan_text_says_which_token_decided(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    write_files(str(tmp_path), [("recipe.yaml", "base_model: allenai/Llama-3.1-Tulu-3-8B-SFT\nadapter: lora\n"
                                                "lora_dropout: 0.05\n")])
    out = subprocess.run([sys.executable, "-m", "auditor", "plan", "recipe.yaml"], capture_output=True, text=True,
                         cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 0, out.stderr
    assert "model allenai/Llama-3.1-Tulu-3-8B-SFT: family token 'Llama-3.1'" in out.stdout
