"""Which framework reads a YAML/JSON file, decided from its keys.

File names are free-form in every framework, so the decision rests on keys each one
requires or uniquely spells (axolotl's `base_model`, LLaMA-Factory's `stage`/`finetuning_type`,
torchtune's `_component_`, gpt-neox's hyphenated or `*_parallel_size` keys, NeMo's
`trainer` + `model` + `exp_manager`, litgpt's `checkpoint_dir`). Order matters: the most
specific marker wins. Anything else with dropout keys is a `generic` recipe.

Imports inside functions (`knowledge.frameworks`) are deferred for start-up time: a run that
never takes that path never pays for them.
"""

from __future__ import annotations

import os
import re

from auditor.core.lazy_regex import LazyRegex
from auditor.core.model import Field
from auditor.sources import nodes

# Dialects whose files are read by PyYAML (YAML 1.1): `5e-2` is a string to them.
PYYAML_DIALECTS = frozenset({"axolotl", "llamafactory", "trl", "hf-trainer-args", "gpt-neox", "litgpt", "generic"})

# How each dialect is named in messages.
DISPLAY_NAMES = {
    "axolotl": "axolotl", "llamafactory": "LLaMA-Factory", "torchtune": "torchtune", "trl": "TRL",
    "hf-trainer-args": "HfArgumentParser", "gpt-neox": "gpt-neox", "nemo": "NeMo", "litgpt": "litgpt",
    "generic": "PyYAML", "peft-adapter": "PEFT", "hf-config": "Transformers", "fairseq": "fairseq",
}

# Trainer names as recipes spell them, mapped to one vocabulary.
_TRAINERS = {
    "dpo": "dpo", "ipo": "dpo", "simpo": "dpo", "kto": "kto", "orpo": "orpo", "cpo": "cpo",
    "bco": "bco", "rm": "reward", "reward": "reward", "reward_model": "reward", "grpo": "grpo",
    "rloo": "rloo", "ppo": "ppo", "sft": "sft", "pt": "pt", "online_dpo": "online_dpo",
}
_TRAINER_IN_NAME = LazyRegex(r"(?:^|[^a-z])(dpo|kto|orpo|cpo|bco|grpo|rloo|ppo|simpo|ipo|rm|reward|sft)(?:[^a-z]|$)")

TOKENIZER_FILES = frozenset({"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                             "vocab.json", "added_tokens.json", "preprocessor_config.json",
                             "generation_config.json", "trainer_state.json"})


def detect(path: str, top: dict, has_component: bool) -> tuple:
    """(kind, dialect), or (None, None) for files that are not training configuration."""
    kind, dialect, _why, _rivals = explain(path, top, has_component)
    return kind, dialect


def explain(path: str, top: dict, has_component: bool) -> tuple:
    """(kind, dialect, why, rivals): why names the keys that decided; rivals are other recipe
    dialects whose markers fit the file as well (#13.3: say so, and keep only what they agree on)."""
    name = os.path.basename(path).lower()
    keys = set(top)
    if name in TOKENIZER_FILES or ("added_tokens" in keys and "model" in keys):
        return None, None, "", ()
    if "peft_type" in keys:
        return "peft-adapter", "peft-adapter", "peft_type", ()
    is_json = name.endswith(".json")
    if is_json and (len(keys) > _DATA_KEYS or _all_integers(top)):
        return None, None, "", ()  # a vocabulary or lookup table (GPT-2's encoder.json), not a config
    fits = _recipe_dialects(keys, has_component, _has_peft_scheme(top))
    if fits:
        (dialect, why), rivals = fits[0], tuple(d for d, _ in fits[1:] if d != fits[0][0])
        return "recipe", dialect, why, rivals
    if is_json and (("model_type" in keys or "architectures" in keys)
                    or (name == "config.json" and ("num_hidden_layers" in keys or "hidden_size" in keys))):
        if name == "config.json" or "architectures" in keys or _transformers_type(top.get("model_type")):
            return "hf-config", "hf-config", "model_type/architectures", ()
        # a tool's own preset naming its own model_type (OneTrainer's "FLUX_DEV_1"): not a Transformers config
    return "recipe", "generic", "no framework's distinctive keys", ()


_DATA_KEYS = 2000  # more top-level keys than any config has: a vocabulary or a table


def _all_integers(top: dict) -> bool:
    """token -> id: every value an integer, as in a vocabulary file."""
    return len(top) > 2 and all(nodes.is_scalar(v) and isinstance(nodes.scalar_value(v, json_mode=True), int)
                                and not isinstance(nodes.scalar_value(v, json_mode=True), bool) for _, v in top.values())


def _transformers_type(entry) -> bool:
    """A model_type value Transformers knows (asked only of a .json not named config.json)."""
    if entry is None or not nodes.is_scalar(entry[1]):
        return False
    from auditor.knowledge import architectures

    return architectures.lookup(str(entry[1].value)) is not None


def _has_peft_scheme(top: dict) -> bool:
    """model.peft.peft_scheme in the file (top maps a key to its (key node, value node))."""
    model = top.get("model")
    if model is None:
        return False
    peft = nodes.top_level(model[1] if isinstance(model, tuple) else model).get("peft")
    return peft is not None and "peft_scheme" in nodes.top_level(peft[1])


def _both(keys: set, first: str, others) -> str | None:
    """`first + other` when the file has `first` and one of `others`."""
    if first not in keys:
        return None
    hit = next((k for k in others if k in keys), None)
    return f"{first} + {hit}" if hit else None


def _recipe_dialects(keys: set, has_component: bool, peft_scheme: bool = False) -> list:
    """Every recipe dialect whose distinctive keys the file has, most specific first, each with
    the keys that matched. A short recipe is enough: axolotl's `base_model` with `rl: dpo`."""
    fits = []
    why = _both(keys, "base_model", ("datasets", "adapter", "sequence_len", "micro_batch_size", "lora_r", "rl"))
    if why:
        fits.append(("axolotl", why))
    why = _both(keys, "stage", ("finetuning_type", "template", "model_name_or_path"))
    if why:
        fits.append(("llamafactory", why))
    why = _both(keys, "model_class", ("peft_config", "train_dataset"))
    if why:
        fits.append(("llamafactory", why + " (v1 format)"))
    if has_component and ("model" in keys or "tokenizer" in keys):
        fits.append(("torchtune", "_component_ + " + ("model" if "model" in keys else "tokenizer")))
    neox = sorted(k for k in keys if k.replace("-", "_") in _NEOX)
    if any("-" in k for k in keys) and neox:
        fits.append(("gpt-neox", f"hyphenated keys + {neox[0]}"))
    elif keys & {"pipe_parallel_size", "model_parallel_size"} and "num_layers" in keys:
        fits.append(("gpt-neox", f"{sorted(keys & {'pipe_parallel_size', 'model_parallel_size'})[0]} + num_layers"))
    if {"trainer", "model"} <= keys and ("exp_manager" in keys or "run" in keys):
        fits.append(("nemo", "trainer + model + " + ("exp_manager" if "exp_manager" in keys else "run")))
    elif peft_scheme:
        # a NeMo PEFT file of its own (model.peft.peft_scheme and its sections, #26): the scheme
        # key is NeMo's (nemo/collections/llm/peft, MegatronGPTSFTModel's cfg.peft.peft_scheme)
        fits.append(("nemo", "model.peft.peft_scheme"))
    if {"task", "model"} <= keys and keys & {"optimization", "criterion", "distributed_training", "common"}:
        # fairseq's Hydra config (fairseq/dataclass/configs.py FairseqConfig: common, task, model,
        # criterion, optimization, distributed_training, ...)
        fits.append(("fairseq", "task + model + " + sorted(keys & {"optimization", "criterion",
                                                                   "distributed_training", "common"})[0]))
    if "checkpoint_dir" in keys:
        fits.append(("litgpt", "checkpoint_dir"))
    elif "out_dir" in keys and "train" in keys and "precision" in keys:
        fits.append(("litgpt", "out_dir + train + precision"))
    if "model_name_or_path" in keys and (keys & _TRL_MARKERS):
        fits.append(("trl", f"model_name_or_path + {sorted(keys & _TRL_MARKERS)[0]}"))
    elif "output_dir" in keys and keys & {"per_device_train_batch_size", "learning_rate", "num_train_epochs"}:
        fits.append(("hf-trainer-args", "output_dir + "
                     + sorted(keys & {"per_device_train_batch_size", "learning_rate", "num_train_epochs"})[0]))
    # the TRL/HfArgumentParser markers are shared by many frameworks: they never rival a framework's own keys
    if len(fits) > 1 and fits[0][0] not in ("trl", "hf-trainer-args"):
        fits = [f for f in fits if f[0] not in ("trl", "hf-trainer-args")]
    return fits


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
    "trl": {"use_peft": [("use_peft",)], "use_lora": [("use_lora",)], "use_qlora": [("use_qlora",)],
            "lora_enable": [("lora_enable",)], "tuner_type": [("tuner_type",)], "train_type": [("train_type",)],
            "train_mode": [("train_mode",)],
            "finetuning_type": [("finetuning_type",)], "base_model": [("model_name_or_path",)],
            "disable_dropout": [("disable_dropout",)], "attn_implementation": [("attn_implementation",)],
            "unsloth": [("use_unsloth",)]},
    "hf-trainer-args": {"base_model": [("model_name_or_path",)], "disable_dropout": [("disable_dropout",)],
                        "use_peft": [("use_peft",)], "use_lora": [("use_lora",)], "use_qlora": [("use_qlora",)],
                        "lora_enable": [("lora_enable",)], "tuner_type": [("tuner_type",)],
                        "train_type": [("train_type",)], "train_mode": [("train_mode",)],
                        "finetuning_type": [("finetuning_type",)],
                        "unsloth": [("use_unsloth",)]},
    # A file no framework claims still says what a framework-independent key says (#26):
    # `use_unsloth` (LLaMA-Factory's and Firefly's ModelArguments field; Firefly's train.py
    # load_unsloth_model passes lora_dropout to FastLanguageModel.get_peft_model), TrainingArguments'
    # DDP fields (added below), `disable_dropout` (only TRL's preference and RL configs have it).
    "generic": {"unsloth": [("use_unsloth",)], "base_model": [("model_name_or_path",)],
                "disable_dropout": [("disable_dropout",)]},
    "torchtune": {"model_component": [("model", "_component_")]},
    "litgpt": {"base_model": [("checkpoint_dir",)]},
    "nemo": {"peft_scheme": [("model", "peft", "peft_scheme")]},
    "fairseq": {"ddp_find_unused_parameters": [("distributed_training", "find_unused_parameters")],
                "ddp_backend": [("distributed_training", "ddp_backend")],
                "base_model": [("checkpoint", "finetune_from_model")]},
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
for _dialect in ("axolotl", "llamafactory", "trl", "hf-trainer-args", "generic"):
    _FIELD_PATHS[_dialect].update(_DDP_FIELDS)

# Model references that more dialects write (#28), and trust_remote_code (with it, an org known for
# custom code makes a model it cannot place custom code). The paths of each framework:
# llm-foundry scripts/train/yamls (model.pretrained_model_name_or_path), fairseq's CheckpointConfig
# (checkpoint.finetune_from_model, checkpoint.restore_file), NeMo examples/speechlm/conf/salm
# (model.llm.pretrained_model; NeMo 2 SALM files have no exp_manager, so they read as generic too),
# speechlm2 (model.pretrained_llm), megatron_gpt_finetuning_config
# (model.restore_from_path), ASR asr_finetune (init_from_pretrained_model, init_from_nemo_model).
_MODEL_FIELDS = {
    "generic": {"base_model": [("model", "pretrained_model_name_or_path"), ("model", "llm", "pretrained_model"),
                               ("model", "pretrained_llm"), ("checkpoint", "finetune_from_model"),
                               ("checkpoint", "restore_file")]},
    "nemo": {"base_model": [("model", "llm", "pretrained_model"), ("model", "pretrained_llm"),
                            ("model", "restore_from_path"), ("restore_from_path",), ("init_from_pretrained_model",),
                            ("init_from_nemo_model",)]},
}
for _dialect in ("axolotl", "llamafactory", "trl", "hf-trainer-args", "generic"):
    _MODEL_FIELDS.setdefault(_dialect, {})["trust_remote_code"] = [("trust_remote_code",), ("model", "trust_remote_code")]
for _dialect, _paths in _MODEL_FIELDS.items():
    for _name, _candidates in _paths.items():
        _known = _FIELD_PATHS.setdefault(_dialect, {}).setdefault(_name, [])
        _known.extend(c for c in _candidates if c not in _known)


# What the resolver decides from a dialect's fields; with rival dialects only agreed values stay.
_JUDGED = ("finetune", "trainer", "disable_dropout")


def extract_agreed(dialect: str, rivals: tuple, root, text: str, path: str, json_mode: bool) -> dict:
    """The dialect's fields, less the judged ones on which a rival dialect reads the file
    differently (#13.3: where two dialects fit equally, apply only what they agree on)."""
    fields = extract_fields(dialect, root, text, path, json_mode)
    for rival in rivals:
        other = extract_fields(rival, root, text, path, json_mode)
        for name in _JUDGED:
            mine, theirs = fields.get(name), other.get(name)
            if (mine.value if mine else None) != (theirs.value if theirs else None):
                fields.pop(name, None)
    return fields


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


# Values of a model key that name no model: fairseq's restore_file default resumes the run
# (CheckpointConfig.restore_file = "checkpoint_last.pt"), Hydra's ??? is a value still missing.
_NAMES_NO_MODEL = frozenset({"checkpoint_last.pt", "???"})


def extract_fields(dialect: str, root, text: str, path: str, json_mode: bool) -> dict:
    fields = {}
    for name, candidates in _FIELD_PATHS.get(dialect, {}).items():
        for key_path in candidates:
            found = _lookup(root, key_path)
            if found is None:
                continue
            key_node, value_node = found
            value = nodes.to_python(value_node, json_mode=json_mode)
            if value is None or value == "" or (name == "base_model" and isinstance(value, str) and value in _NAMES_NO_MODEL):
                continue
            fields[name] = Field(value, nodes.span_of(key_node, text), key_path)
            break
    if dialect == "generic" and nodes.is_mapping(root):
        key_node = next((k for k, _v in root.value if nodes.is_scalar(k) and _PEFT_KEY.match(str(k.value))), None)
        if key_node is not None:
            fields["peft_key"] = Field(str(key_node.value), nodes.span_of(key_node, text), (str(key_node.value),))
    _derive(dialect, fields, path)
    return fields


# Top-level keys only a PEFT adapter has (lora_dropout, lora_r, lora_alpha, lora_target_modules...):
# whatever else a file holds, one of them makes it a LoRA setup (#26).
_PEFT_KEY = LazyRegex(r"(lora|qlora|dora|adalora|loha|lokr)_(dropout|r|rank|alpha|target|target_modules|modules)$")


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
    elif dialect in ("trl", "hf-trainer-args"):
        # Without a selector nothing is claimed: TRL's use_peft defaults to False, but the keys that
        # mark a TRL recipe are shared by every HfArgumentParser framework (#18: an unknown
        # framework is not a full fine-tune).
        finetune, _ = _selected(f)
    elif dialect == "torchtune" and "model_component" in f:
        finetune = "lora" if "lora" in str(f["model_component"].value).lower() else "full"
    elif dialect == "nemo" and "peft_scheme" in f:
        finetune = str(f["peft_scheme"].value).lower()
    elif dialect == "peft-adapter":
        finetune = str(f["peft_type"].value).lower() if "peft_type" in f else None
    elif dialect == "generic" and "peft_key" in f:
        finetune = "lora"
    if finetune:
        anchor = next((f[k] for k in ("adapter", "finetuning_type", "peft_name", "use_peft", "use_lora", "use_qlora",
                                       "lora_enable", "tuner_type", "train_type", "model_component",
                                       "peft_scheme", "peft_type", "peft_key") if k in f), None)
        fields["finetune"] = Field(finetune, anchor.span if anchor else None)
    trainer = None
    if "trainer" in f and isinstance(f["trainer"].value, str):
        trainer = _TRAINERS.get(f["trainer"].value.lower(), f["trainer"].value.lower())
    elif dialect in ("trl", "llamafactory", "torchtune", "hf-trainer-args", "gpt-neox", "nemo", "litgpt"):
        trainer = trainer_from_path(path)
    if trainer:
        # a trainer read from the file name is marked so, and never attributed to a framework
        fields["trainer"] = (Field(trainer, f["trainer"].span) if "trainer" in f
                             else Field(trainer, None, ("<file name>",)))


def _selected(f: dict) -> tuple:
    """(lora|full|method, key) from the first LoRA selector the recipe sets (frameworks.json
    "lora_selectors"): `use_lora: true`, `use_qlora: true`, `tuner_type: full`... A framework's
    own switch counts as much as TRL's use_peft (#18.2)."""
    from auditor.knowledge import frameworks

    switches, methods = frameworks.lora_selectors()
    on = [k for k in switches if k in f and f[k].value is True]
    if on:
        return "lora", on[0]
    for key in methods:
        if key in f and isinstance(f[key].value, str):
            return f[key].value.lower(), key
    off = [k for k in switches if k in f and f[k].value is False]
    if off:
        return "full", off[0]
    return None, None


def trainer_from_path(path: str) -> str | None:
    """Recipes are commonly named after their trainer (dpo/config_qlora.yaml, 8B_lora_dpo.yaml)."""
    parts = re.split(r"[/\\]", path.lower())[-3:]
    for part in reversed(parts):
        m = _TRAINER_IN_NAME.search(os.path.splitext(part)[0])
        if m:
            return _TRAINERS.get(m.group(1), m.group(1))
    return None
