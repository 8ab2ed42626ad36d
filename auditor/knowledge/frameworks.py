"""How training frameworks default and override dropout: the loader of the framework profiles.

The facts are data, each with where it was verified: `data/frameworks.json` (hand-checked
profiles: recognition, LoRA selection, which trainer runs preference training, defaults) and
`data/trl.json` (generated from the pinned trl by `python -m auditor.generate.trl`).
A framework without a profile is unknown, and nothing that needs it is claimed (#18): DRP500
needs evidence of a full fine-tune, DRP501 evidence that the trainer zeroes dropout, DRP702
evidence that it does not.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache, lru_cache

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@cache
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
    """The trainer as the plan and messages name it: "TRL's DPOTrainer", "TRL's DPOTrainer via
    axolotl", "OpenRLHF's DPO trainer", or the stated name with its framework."""
    if not trainer:
        return "not stated"
    if "$" in trainer or "{" in trainer:
        return f"not stated ({trainer} is resolved at run time)"
    if driver is not None and getattr(driver.fields.get("trainer"), "key_path", ()) == ("<file name>",):
        return f"{trainer.upper()} (from the file name)"
    name = framework_of(driver) if driver is not None else ""
    prof = profile(name)
    pref = prof.get("preference", {})
    if pref.get("runs") == "trl" and trainer in trl_trainers() and trainer in PREFERENCE_TRAINERS | {"gold", "gkd"}:
        via = "" if name in ("trl", "python") else f" via {prof.get('display', name)}"
        return f"TRL's {trl_trainers()[trainer]['class']}{via}"
    if pref.get("runs") == "own":
        return pref["name"].replace("{T}", trainer.upper())
    return f"{trainer.upper()} ({prof.get('display', name)})" if prof else trainer.upper()


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


def trainer_keeps_dropout(framework: str, trainer: str | None) -> str | None:
    """The trainer's name when the framework's profile says it does NOT disable dropout
    (evidence, not a guess): a framework's own preference trainer. None when unknown or when it
    disables."""
    if not trainer or trainer not in PREFERENCE_TRAINERS:
        return None
    pref = profile(framework).get("preference", {})
    if pref.get("runs") == "own" and pref["disables_dropout"].get(trainer) is False:
        return pref["name"].replace("{T}", trainer.upper())
    return None


# ------------------------------------------------------------------------------ launch lines

def known_programs() -> frozenset:
    """Program names that profiles recognise (swift, trl, llamafactory-cli...)."""
    return frozenset(p for prof in profiles().values() for p in prof.get("programs", ()))


_SYNONYMS = {"rm": "reward", "reward_model": "reward", "simpo": "dpo", "ipo": "dpo"}


def _trainer_word(value) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    word = value.strip().lower()
    return _SYNONYMS.get(word, word)


def _module_of(launch) -> str:
    """`openrlhf/cli/train_dpo.py` and `-m openrlhf.cli.train_dpo` name the same module."""
    name = launch.program
    if name.endswith(".py"):
        name = name[:-3].replace("/", ".").replace("\\", ".")
    return name.lstrip(".")


def recognise_launch(launch) -> dict | None:
    """{field: (value, span or None)} for a launch a profile recognises, else None. Only what the
    profile or the line states is returned: the trainer, the framework, and the fine-tune method
    (from the profile's selector flags, or its documented default)."""
    program = os.path.basename(launch.program)
    module = _module_of(launch)
    for name, prof in profiles().items():
        trainer = None
        if program in prof.get("programs", ()):
            sub = launch.subcommand
            if prof.get("subcommand_trainer"):
                trainer = _trainer_word(sub)
            elif sub in prof.get("subcommands", {}):
                trainer = prof["subcommands"][sub] or prof.get("trainer_default", {}).get(sub)
            elif "subcommands" in prof:
                return None  # `swift infer`, `swift export`, `swift deploy`: not a training run
        else:
            trainer = next((t for mod, t in prof.get("modules", {}).items()
                            if module == mod or module.endswith("." + mod)), None)
            if trainer is None:
                continue
        facts = {"framework": (name, None)}
        flag = prof.get("trainer_flag")
        if flag and flag in launch.flags and isinstance(launch.flags[flag].value, str):
            facts["trainer"] = (_trainer_word(launch.flags[flag].value), launch.flags[flag].span)
        elif prof.get("trainer_override") and prof["trainer_override"] in launch.overrides:
            arg = launch.overrides[prof["trainer_override"]]
            facts["trainer"] = (_trainer_word(arg.value), arg.span)
        elif trainer:
            facts["trainer"] = (trainer, None)
        finetune = _finetune(prof, launch)
        if finetune is not None:
            facts["finetune"] = finetune
        return facts
    return None


def _finetune(prof: dict, launch):
    lora = prof.get("lora")
    if not lora:
        return None
    for flag in lora.get("select_flags", ()):
        arg = launch.flags.get(flag)
        if arg is not None and isinstance(arg.value, str) and not arg.value.startswith("$"):
            return arg.value.lower(), arg.span
    for flag, wanted in lora.get("flags", {}).items():
        arg = launch.flags.get(flag)
        if arg is not None:
            on = arg.value is True or str(arg.value).lower() == wanted
            return ("lora" if on else "full"), arg.span
    ranks = lora.get("rank_flags", ())
    for flag in ranks:
        arg = launch.flags.get(flag) or launch.overrides.get(flag)
        if arg is not None:
            try:
                return ("lora" if int(str(arg.value)) > 0 else "full"), arg.span
            except ValueError:
                return None  # a template: decided at run time
    if ranks and not prof.get("hydra"):
        return "full", None  # the rank flag defaults to 0: no LoRA layers are built
    if "default" in lora:
        return lora["default"], None
    if lora.get("flags"):
        return "full", None
    return None


def lora_selectors() -> tuple:
    """(switch keys, method keys) that say LoRA or full in a recipe."""
    doc = _load("frameworks.json")["lora_selectors"]
    return tuple(doc["switches"]), tuple(doc["methods"])


def nemo_peft_section(driver, setting) -> tuple | None:
    """For a setting under NeMo's `model.peft.<section>`: (active?, scheme, selected sections).
    None when the setting is not in a PEFT section or the scheme is unknown (nothing claimed)."""
    if driver is None or driver.dialect != "nemo":
        return None
    path = tuple(k for k in setting.key_path if not isinstance(k, int))
    if len(path) < 4 or path[:2] != ("model", "peft"):
        return None
    sections = profile("nemo")["peft_sections"]
    every = {s for group in sections.values() for s in group}
    if path[2] not in every:
        return None
    scheme = str(driver.get("peft_scheme") or "").lower()
    if scheme not in sections:
        return None
    return path[2] in sections[scheme], scheme, tuple(sections[scheme])
