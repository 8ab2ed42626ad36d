"""Which configuration keys are dropout rates, and what role each one plays.

A name test alone is wrong in both directions: `drop_last` and `bias_dropout_add_fusion`
contain "drop" but are switches, while `attn_pdrop` or `layerdrop` do not say "dropout".
So a key is a rate when its canonical name (lowercase, `-` read as `_`, as gpt-neox does)
has a rate-shaped token and is not on the list of known switches.

Imports inside functions (`knowledge.architectures`, `knowledge.peft_methods`) are deferred for
start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache

from auditor.core.lazy_regex import LazyRegex
from auditor.knowledge.key_roles import canonical, role_of  # noqa: F401 - part of this module's face

_SETTINGS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "dropout_settings.json")


def _load_settings() -> tuple:
    with open(_SETTINGS_FILE, encoding="utf-8") as fh:
        doc = json.load(fh)
    return frozenset(doc["settings"]), tuple(doc["suffixes"])


# Names that look like dropout but are switches or positions, with where each was found:
# knowledge/data/dropout_settings.json (one list; the architecture generator reads it too).
NOT_RATES, _SETTING_SUFFIXES = _load_settings()

# Keys whose value must be a probability whatever it looks like: a boolean there is a bug
# (PEFT treats lora_dropout=True as 1.0 and zeroes the whole LoRA branch), not a switch.
STRICT_RATES = frozenset({
    "lora_dropout", "hidden_dropout_prob", "attention_probs_dropout_prob", "attention_dropout",
    "hidden_dropout", "classifier_dropout", "dropout", "dropout_rate", "activation_dropout",
    "attn_pdrop", "resid_pdrop", "embd_pdrop", "module_dropout", "rank_dropout",
    "adapter_dropout", "ffn_dropout", "layerdrop", "drop_path_rate",
})

_RATE = re.compile(
    r"(^|_)("
    r"dropout(_p|_prob|_rate)?|[a-z]*pdrop|[a-z]*layerdrop|layer_drop(_prob|_rate)?"
    r"|drop_path(_rate|_prob)?|droppath(_rate)?|drop_rate|drop_prob|stochastic_depth(_rate|_prob)?"
    r"|keep_prob|keep_rate"
    r")(_|$)"
)


@lru_cache(maxsize=4096)
def is_rate_key(key: str) -> bool:
    name = canonical(key)
    if name in NOT_RATES or name.endswith(_SETTING_SUFFIXES) or "drop_last" in name:
        return False
    return bool(_RATE.search(name))


_WORD = LazyRegex(r"[A-Za-z][A-Za-z_-]*")


@lru_cache(maxsize=1)
def _known_rates() -> frozenset:
    """Keys the knowledge names as rates: the strict list, every architecture's dropout keys and
    every PEFT method's dropout fields. Loaded only when a word value needs judging."""
    from auditor.knowledge import architectures, peft_methods

    return STRICT_RATES | architectures.known_dropout_names() | peft_methods.all_dropout_fields()


def is_known_rate(key: str) -> bool:
    return canonical(key) in _known_rates()


def is_setting_word(key: str, value) -> bool:
    """A dropout-named key holding a word (`dropout_position: pre`, `attn_dropout_impl: fused`) is
    a setting, not a rate (#18): only the knowledge can say that such a key is a rate after all,
    and then the word is an error (DRP102)."""
    return isinstance(value, str) and bool(_WORD.fullmatch(value.strip())) and not is_known_rate(key)


def is_keep_probability(key: str) -> bool:
    """TensorFlow-style keep probabilities mean the opposite of a drop rate (pitfalls #50)."""
    name = canonical(key)
    return "keep_prob" in name or "keep_rate" in name
