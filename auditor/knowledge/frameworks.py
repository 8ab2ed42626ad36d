"""How training frameworks default and override dropout: the loader of the framework profiles.

The facts are data, each with where it was verified: `data/frameworks.json` (hand-checked
profiles: recognition, LoRA selection, which trainer runs preference training, defaults) and
`data/trl.json` (generated from the pinned trl by `python -m auditor.knowledge.build_trl`).
A framework without a profile is unknown, and nothing that needs it is claimed (#18): DRP500
needs evidence of a full fine-tune, DRP501 evidence that the trainer zeroes dropout, DRP702
evidence that it does not.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@lru_cache(maxsize=None)
def _load(name: str) -> dict:
    with open(os.path.join(_DATA, name), encoding="utf-8") as fh:
        return json.load(fh)


def profiles() -> dict:
    return _load("frameworks.json")["frameworks"]


def profile(name: str | None) -> dict:
    return profiles().get(name or "", {})


def launcher_programs() -> frozenset:
    return frozenset(_load("frameworks.json")["launchers"]["programs"])


def _short(trainer_class: str) -> str:
    """DPOTrainer -> dpo, OnlineDPOTrainer -> online_dpo: the vocabulary recipes use."""
    base = trainer_class[: -len("Trainer")]
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", base).lower()


@lru_cache(maxsize=1)
def trl_trainers() -> dict:
    """short name -> generated facts of that trl trainer class (with its class name)."""
    doc = _load("trl.json")
    return {_short(name): {"class": name, **facts} for name, facts in doc["trainers"].items()
            if not name.startswith("_")}


def trl_version() -> str:
    return _load("trl.json")["trl"]


def _trl_defaults() -> dict:
    return {short: bool(t["config_disable_dropout"]) for short, t in trl_trainers().items()
            if t["calls_disable_dropout"] and t["config_disable_dropout"] is not None}


# TRL `disable_dropout` defaults per trainer, generated from trl's *Config classes (experimental
# trainers included). When True, trl.trainer.utils.disable_dropout_in_model sets `p = 0` on every
# torch.nn.Dropout module, LoRA dropout included when the call comes after the PEFT wrap (it does
# in every trainer of trl 1.16.0: data/trl.json `after_peft_wrap`); functional dropout such as
# Llama's attention_dropout is untouched (facts.md "Trainers"; trl#744, trl#2042, trl#3234).
TRL_DISABLE_DROPOUT_DEFAULT = _trl_defaults()

# Trainers that compare log-probabilities of a policy (and often a reference model), where
# dropout noise corrupts the signal (pitfalls #44, #45). bco and ppo are kept as names recipes
# use, although trl 1.16.0 no longer ships them (frameworks.json "absent_from_trl").
PREFERENCE_TRAINERS = frozenset({"dpo", "kto", "orpo", "cpo", "bco", "reward", "online_dpo", "grpo", "rloo", "ppo",
                                 "tpo", "gmpo", "a2po", "prm"})

# Which dialects hand their preference training to TRL's trainers (so TRL's default applies).
DIALECTS_USING_TRL = frozenset(n for n, p in profiles().items() if p.get("preference", {}).get("runs") == "trl")

# The lora dropout a framework uses when the recipe does not say (what "missing" resolves to).
LORA_DROPOUT_DEFAULT = {n: tuple(p["lora_dropout_default"]) for n, p in profiles().items()
                        if "lora_dropout_default" in p}

# Readers that raise when the dropout field is null (facts.md "PEFT": LoraConfig with None raises
# TypeError at get_peft_model). axolotl falls back to its default instead, and a null
# classifier_dropout in config.json means "use the hidden dropout".
NULL_REJECTED_DIALECTS = frozenset(n for n, p in profiles().items() if p.get("null_rejected"))

# LLaMA-Factory's own preference trainers that disable dropout (see its profile).
LLAMAFACTORY_DISABLES_DROPOUT = frozenset(
    t for t, on in profile("llamafactory")["preference"]["disables_dropout"].items() if on)


def framework_of(driver) -> str:
    """The framework that runs a driver: a launch line names it (`framework` field), else the
    file's dialect."""
    return str(driver.get("framework") or driver.dialect)


def trainer_label(driver, trainer: str) -> str:
    """The trainer as the plan and messages name it: "TRL's DPOTrainer", "OpenRLHF's DPO trainer"."""
    if not trainer:
        return "not stated"
    name = framework_of(driver) if driver is not None else ""
    pref = profile(name).get("preference", {})
    if pref.get("runs") == "trl" and trainer in trl_trainers():
        return f"TRL's {trl_trainers()[trainer]['class']}"
    if pref.get("runs") == "own":
        return pref["name"].replace("{T}", trainer.upper())
    return trainer


def trainer_disables_dropout(driver, trainer: str | None) -> tuple:
    """(disabled?, reason) for a run driven by `driver`: an explicit `disable_dropout` wins over
    the framework's default; an unknown framework or trainer disables nothing we can claim."""
    explicit = driver.get("disable_dropout")
    if explicit is not None:
        return bool(explicit), f"disable_dropout: {str(bool(explicit)).lower()} in the recipe"
    if not trainer:
        return False, ""
    name = framework_of(driver)
    pref = profile(name).get("preference", {})
    if pref.get("runs") == "trl" and trainer in TRL_DISABLE_DROPOUT_DEFAULT:
        on = TRL_DISABLE_DROPOUT_DEFAULT[trainer]
        return on, f"TRL's {trainer.upper()} trainer defaults disable_dropout={on}"
    if pref.get("runs") == "own" and driver.get("format") != "v1" and pref["disables_dropout"].get(trainer):
        who = pref["name"].replace("{T}", trainer.upper())
        return True, f"{who} disables dropout (disable_dropout=True)"
    return False, ""


def trainer_keeps_dropout(driver, trainer: str | None) -> str | None:
    """The trainer's name when its profile says it does NOT disable dropout (evidence, not a
    guess): a framework's own preference trainer. None when unknown or when it disables."""
    if not trainer or trainer not in PREFERENCE_TRAINERS or driver.get("disable_dropout") is not None:
        return None
    pref = profile(framework_of(driver)).get("preference", {})
    if pref.get("runs") == "own" and pref["disables_dropout"].get(trainer) is False:
        return pref["name"].replace("{T}", trainer.upper())
    return None
