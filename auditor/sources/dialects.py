"""Which framework reads a YAML/JSON file, decided from its keys.

File names are free-form in every framework, so the decision rests on keys each one
requires or uniquely spells (axolotl's `base_model`, LLaMA-Factory's `stage`/`finetuning_type`,
torchtune's `_component_`, gpt-neox's hyphenated or `*_parallel_size` keys, NeMo's
`trainer` + `model` + `exp_manager`, litgpt's `checkpoint_dir`). Order matters: the most
specific marker wins. Anything else with dropout keys is a `generic` recipe.
"""

from __future__ import annotations

import os
import re

from auditor.model import Field
from auditor.sources import nodes

# Dialects whose files are read by PyYAML (YAML 1.1): `5e-2` is a string to them.
PYYAML_DIALECTS = frozenset({"axolotl", "llamafactory", "trl", "hf-trainer-args", "gpt-neox", "litgpt", "generic"})

# How each dialect is named in messages.
DISPLAY_NAMES = {
    "axolotl": "axolotl", "llamafactory": "LLaMA-Factory", "torchtune": "torchtune", "trl": "TRL",
    "hf-trainer-args": "HfArgumentParser", "gpt-neox": "gpt-neox", "nemo": "NeMo", "litgpt": "litgpt",
    "generic": "PyYAML", "peft-adapter": "PEFT", "hf-config": "Transformers",
}

# Trainer names as recipes spell them, mapped to one vocabulary.
_TRAINERS = {
    "dpo": "dpo", "ipo": "dpo", "simpo": "dpo", "kto": "kto", "orpo": "orpo", "cpo": "cpo",
    "bco": "bco", "rm": "reward", "reward": "reward", "reward_model": "reward", "grpo": "grpo",
    "rloo": "rloo", "ppo": "ppo", "sft": "sft", "pt": "pt", "online_dpo": "online_dpo",
}
_TRAINER_IN_NAME = re.compile(r"(?:^|[^a-z])(dpo|kto|orpo|cpo|bco|grpo|rloo|ppo|simpo|ipo|rm|reward|sft)(?:[^a-z]|$)")

TOKENIZER_FILES = frozenset({"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                             "vocab.json", "added_tokens.json", "preprocessor_config.json",
                             "generation_config.json", "trainer_state.json"})


def detect(path: str, top: dict, has_component: bool) -> tuple:
    """(kind, dialect), or (None, None) for files that are not training configuration."""
    name = os.path.basename(path).lower()
    keys = set(top)
    if name in TOKENIZER_FILES or ("added_tokens" in keys and "model" in keys):
        return None, None
    if "peft_type" in keys:
        return "peft-adapter", "peft-adapter"
    is_json = name.endswith(".json")
    recipe = _recipe_dialect(keys, has_component)
    if recipe:
        return "recipe", recipe
    if is_json and (("model_type" in keys or "architectures" in keys)
                    or (name == "config.json" and ("num_hidden_layers" in keys or "hidden_size" in keys))):
        return "hf-config", "hf-config"
    return "recipe", "generic"


def _recipe_dialect(keys: set, has_component: bool) -> str | None:
    if "base_model" in keys and ("datasets" in keys or "adapter" in keys or "sequence_len" in keys
                                 or "micro_batch_size" in keys or "lora_r" in keys):
        return "axolotl"
    if "stage" in keys and ("finetuning_type" in keys or "template" in keys or "model_name_or_path" in keys):
        return "llamafactory"
    if "model_class" in keys and ("peft_config" in keys or "train_dataset" in keys):
        return "llamafactory"  # LLaMA-Factory v1 format
    if has_component and ("model" in keys or "tokenizer" in keys):
        return "torchtune"
    if any("-" in k for k in keys) and any(k.replace("-", "_") in _NEOX for k in keys):
        return "gpt-neox"
    if keys & {"pipe_parallel_size", "model_parallel_size"} and "num_layers" in keys:
        return "gpt-neox"
    if {"trainer", "model"} <= keys and ("exp_manager" in keys or "run" in keys):
        return "nemo"
    if "checkpoint_dir" in keys or ("out_dir" in keys and "train" in keys and "precision" in keys):
        return "litgpt"
    if "model_name_or_path" in keys and (keys & _TRL_MARKERS):
        return "trl"
    if "output_dir" in keys and keys & {"per_device_train_batch_size", "learning_rate", "num_train_epochs"}:
        return "hf-trainer-args"
    return None


_NEOX = frozenset({"num_layers", "hidden_size", "num_attention_heads", "seq_length", "pipe_parallel_size",
                   "model_parallel_size", "hidden_dropout", "attention_dropout", "train_micro_batch_size_per_gpu"})
_TRL_MARKERS = frozenset({"use_peft", "lora_r", "beta", "dataset_mixer", "dataset_mixture", "dataset_name",
                          "max_prompt_length", "num_generations", "loss_type", "disable_dropout",
                          "dataset_splits", "chat_template", "torch_dtype", "dtype"})

# Where each dialect keeps the facts the resolver needs: field -> key paths to try in order.
_FIELD_PATHS = {
    "axolotl": {"adapter": [("adapter",)], "trainer": [("rl",)], "base_model": [("base_model",)],
                "base_model_config": [("base_model_config",)], "revision_of_model": [("revision_of_model",)],
                "model_class_name": [("model_type",)],
                "flex_attention": [("flex_attention",)], "attn_implementation": [("attn_implementation",)],
                "lora_target_parameters": [("lora_target_parameters",)],
                "unsloth": [("unsloth_lora_mlp",), ("unsloth_lora_qkv",), ("unsloth_lora_o",)]},
    "llamafactory": {"finetuning_type": [("finetuning_type",)], "trainer": [("stage",)],
                     "base_model": [("model_name_or_path",), ("model",)], "peft_name": [("peft_config", "name")],
                     "unsloth": [("use_unsloth",)], "attn_implementation": [("flash_attn",)],
                     "model_class": [("model_class",)]},
    "trl": {"use_peft": [("use_peft",)], "base_model": [("model_name_or_path",)],
            "disable_dropout": [("disable_dropout",)], "attn_implementation": [("attn_implementation",)]},
    "hf-trainer-args": {"base_model": [("model_name_or_path",)], "disable_dropout": [("disable_dropout",)]},
    "torchtune": {"model_component": [("model", "_component_")]},
    "litgpt": {"base_model": [("checkpoint_dir",)]},
    "nemo": {"peft_scheme": [("model", "peft", "peft_scheme")]},
    "gpt-neox": {"trainer": [("train_impl",), ("train-impl",)]},
    "hf-config": {"model_type": [("model_type",)], "architectures": [("architectures",)],
                  "attn_implementation": [("attn_implementation",), ("_attn_implementation",)]},
    "peft-adapter": {"peft_type": [("peft_type",)], "base_model": [("base_model_name_or_path",)],
                     "target_modules": [("target_modules",)], "target_parameters": [("target_parameters",)]},
}

# TrainingArguments fields that decide whether DDP looks for unused parameters (the layer-drop +
# DDP rule); the dialects that hand their top level to TrainingArguments keep them there.
_DDP_FIELDS = {"ddp_find_unused_parameters": [("ddp_find_unused_parameters",)],
               "gradient_checkpointing": [("gradient_checkpointing",), ("activation_checkpointing",)]}
for _dialect in ("axolotl", "llamafactory", "trl", "hf-trainer-args"):
    _FIELD_PATHS[_dialect].update(_DDP_FIELDS)


def _lookup(root, key_path: tuple):
    node = root
    key_node = None
    for key in key_path:
        if not nodes.is_mapping(node):
            return None
        match = [(k, v) for k, v in node.value if nodes.is_scalar(k) and str(k.value) == key]
        if not match:
            return None
        key_node, node = match[-1]
    return key_node, node


def extract_fields(dialect: str, root, text: str, path: str, json_mode: bool) -> dict:
    fields = {}
    for name, candidates in _FIELD_PATHS.get(dialect, {}).items():
        for key_path in candidates:
            found = _lookup(root, key_path)
            if found is None:
                continue
            key_node, value_node = found
            value = nodes.to_python(value_node, json_mode=json_mode)
            if value is None or value == "":
                continue
            fields[name] = Field(value, nodes.span_of(key_node, text), key_path)
            break
    _derive(dialect, fields, path)
    return fields


def _derive(dialect: str, fields: dict, path: str) -> None:
    """Normalise each dialect's spelling into `finetune` (lora|full|...) and `trainer`."""
    f = fields
    finetune = None
    if dialect == "axolotl":
        adapter = str(f["adapter"].value).lower() if "adapter" in f else ""
        finetune = "lora" if adapter in ("lora", "qlora") else (adapter or "full")
    elif dialect == "llamafactory":
        if "model_class" in f:
            fields["format"] = Field("v1", f["model_class"].span)
        if "peft_name" in f:
            finetune = str(f["peft_name"].value).lower()
        elif "finetuning_type" in f:
            finetune = str(f["finetuning_type"].value).lower()
        else:
            finetune = "lora"  # LLaMA-Factory's FinetuningArguments default
    elif dialect == "trl":
        finetune = "lora" if f.get("use_peft") and f["use_peft"].value is True else "full"
    elif dialect == "torchtune" and "model_component" in f:
        finetune = "lora" if "lora" in str(f["model_component"].value).lower() else "full"
    elif dialect == "nemo" and "peft_scheme" in f:
        finetune = str(f["peft_scheme"].value).lower()
    elif dialect == "peft-adapter":
        finetune = str(f["peft_type"].value).lower() if "peft_type" in f else None
    if finetune:
        anchor = next((f[k] for k in ("adapter", "finetuning_type", "peft_name", "use_peft", "model_component",
                                       "peft_scheme", "peft_type") if k in f), None)
        fields["finetune"] = Field(finetune, anchor.span if anchor else None)
    trainer = None
    if "trainer" in f and isinstance(f["trainer"].value, str):
        trainer = _TRAINERS.get(f["trainer"].value.lower(), f["trainer"].value.lower())
    elif dialect in ("trl", "llamafactory", "torchtune", "hf-trainer-args", "gpt-neox", "nemo", "litgpt"):
        trainer = trainer_from_path(path)
    if trainer:
        fields["trainer"] = Field(trainer, f["trainer"].span if "trainer" in f else None)


def trainer_from_path(path: str) -> str | None:
    """Recipes are commonly named after their trainer (dpo/config_qlora.yaml, 8B_lora_dpo.yaml)."""
    parts = re.split(r"[/\\]", path.lower())[-3:]
    for part in reversed(parts):
        m = _TRAINER_IN_NAME.search(os.path.splitext(part)[0])
        if m:
            return _TRAINERS.get(m.group(1), m.group(1))
    return None
