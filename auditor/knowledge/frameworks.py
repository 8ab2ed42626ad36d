"""How training frameworks default and override dropout, each fact with its reference.

Hand-written, because these facts live in framework code paths (a trainer's __init__, a
recipe schema) rather than in anything a generator could enumerate; every entry names where
it was verified so a reader can re-check it when a framework moves.
"""

from __future__ import annotations

# TRL `disable_dropout` defaults per trainer (trl 1.16.0: trainer/*_config.py and
# experimental/*/..._config.py). When True, trl.trainer.utils.disable_dropout_in_model sets
# `p = 0` on every torch.nn.Dropout module (LoRA dropout included); functional dropout such as
# Llama's attention_dropout is untouched (facts.md "Trainers"; trl#744, trl#2042, trl#3234).
TRL_DISABLE_DROPOUT_DEFAULT = {
    "dpo": True, "kto": True, "reward": True, "orpo": True, "cpo": True, "online_dpo": True,
    "grpo": False, "rloo": False,
}

# Trainers that compare log-probabilities of a policy (and often a reference model), where
# dropout noise corrupts the signal (pitfalls #44, #45).
PREFERENCE_TRAINERS = frozenset({"dpo", "kto", "orpo", "cpo", "bco", "reward", "online_dpo", "grpo", "rloo", "ppo"})

# Which dialects hand their preference training to TRL's trainers (so TRL's default applies).
# axolotl: core/trainers/dpo/args.py subclasses trl.DPOConfig and the DPO strategy's
# set_training_args_kwargs never sets disable_dropout, so TRL's default stands for `rl: dpo`.
DIALECTS_USING_TRL = frozenset({"axolotl", "trl", "python", "shell"})

# The lora dropout a framework uses when the recipe does not say (what "missing" resolves to).
LORA_DROPOUT_DEFAULT = {
    "axolotl": (0.0, "axolotl resolves an absent or empty lora_dropout to 0.0 (utils/schemas/peft.py)"),
    "llamafactory": (0.0, "LLaMA-Factory FinetuningArguments.lora_dropout defaults to 0.0"),
    "trl": (0.05, "TRL ModelConfig.lora_dropout defaults to 0.05 (trl/trainer/model_config.py)"),
    "torchtune": (0.0, "torchtune LoRA builders default lora_dropout to 0.0 (PR #1492)"),
    "litgpt": (0.05, "litgpt finetune/lora.py defaults lora_dropout to 0.05"),
    "peft-adapter": (0.0, "PEFT LoraConfig.lora_dropout defaults to 0.0"),
    "nemo": (0.0, "NeMo adapter_dropout defaults to 0.0"),
}

# Values readers reject with an exception when the dropout field is null (facts.md "PEFT":
# LoraConfig with None raises TypeError at get_peft_model). Recipes read by axolotl fall back
# to the default instead, and a null classifier_dropout in config.json means "use the hidden
# dropout", so null is only an error where it reaches PEFT unchanged.
NULL_REJECTED_DIALECTS = frozenset({"peft-adapter", "trl", "hf-trainer-args"})


# LLaMA-Factory's own preference trainers (src/llamafactory/train/dpo/trainer.py and kto/)
# take `disable_dropout: bool = True` and call trl's disable_dropout_in_model on the policy and
# reference models; the v1 trainers (`model_class` recipes) do not at the corpus snapshot
# (LlamaFactory PR #10779, open).
LLAMAFACTORY_DISABLES_DROPOUT = frozenset({"dpo", "kto"})


def trainer_disables_dropout(driver, trainer: str | None) -> tuple:
    """(disabled?, reason) for a run driven by `driver`: an explicit `disable_dropout` wins over
    the framework's default."""
    explicit = driver.get("disable_dropout")
    if explicit is not None:
        return bool(explicit), f"disable_dropout: {str(bool(explicit)).lower()} in the recipe"
    if not trainer:
        return False, ""
    if driver.dialect in DIALECTS_USING_TRL and trainer in TRL_DISABLE_DROPOUT_DEFAULT:
        on = TRL_DISABLE_DROPOUT_DEFAULT[trainer]
        return on, f"TRL's {trainer.upper()} trainer defaults disable_dropout={on}"
    if driver.dialect == "llamafactory" and driver.get("format") != "v1" and trainer in LLAMAFACTORY_DISABLES_DROPOUT:
        return True, f"LLaMA-Factory's {trainer.upper()} trainer disables dropout (disable_dropout=True)"
    return False, ""
