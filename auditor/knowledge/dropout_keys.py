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


# The last word of a key names what its value is (#25): `stochastic_depth_start_layer` is a
# layer index (NeMo's Conformer), `dropout_schedule` a schedule, `layerdrop_count` a count, whatever
# the words before them say. Such a key is a setting, unless a schema declares it a rate after all
# (Transformers' LasrConfig.dropout_positions is a float rate).
SETTING_HEADS = frozenset({
    "index", "idx", "indices", "count", "num", "number", "position", "positions", "pos", "mode", "type", "kind",
    "schedule", "scheduler", "start", "end", "begin", "stop", "layer", "layers", "step", "steps", "epoch",
    "epochs", "iter", "iters", "iteration", "iterations", "seed", "method", "impl", "implementation", "strategy",
    "policy", "style", "version", "name", "names", "path", "dir", "file", "fn", "func", "function", "size", "dim",
    "dims", "len", "length", "enabled", "enable", "flag", "warmup", "interval", "freq", "frequency", "every",
    "after", "before", "until", "shape", "axis", "axes", "module", "modules", "target", "targets", "list",
})


def head_noun(key: str) -> str:
    return canonical(key).rsplit("_", 1)[-1]


@lru_cache(maxsize=4096)
def named_like_rate(key: str) -> bool:
    """The key's name has a rate-shaped token and it is no known switch: a rate unless its head
    noun says otherwise (is_rate_key)."""
    name = canonical(key)
    if name in NOT_RATES or name.endswith(_SETTING_SUFFIXES) or "drop_last" in name:
        return False
    return bool(_RATE.search(name))


@lru_cache(maxsize=4096)
def is_rate_key(key: str) -> bool:
    if not named_like_rate(key):
        return False
    return head_noun(key) not in SETTING_HEADS or is_known_rate(key)


def setting_reason(key: str, value) -> str | None:
    """Why a key named like a rate holds a setting instead, or None when it is a rate. Asked by
    the readers for what they would otherwise read as a rate, so `plan` can list it (#25): a
    setting noun at the end of the name, or an integer where no schema declares a rate (a layer
    index of 1 is no "drop everything", and 4 is no 4%)."""
    if named_like_rate(key) and head_noun(key) in SETTING_HEADS and not is_known_rate(key):
        return f"its last word '{head_noun(key)}' names a setting, not a rate"
    if (isinstance(value, int) and not isinstance(value, bool) and not _rate_head(head_noun(key))
            and not is_known_rate(key)):
        return "an integer on a key that neither a schema nor its last word declares a rate"
    if isinstance(value, int) and not isinstance(value, bool) and value == -1 and not is_known_rate(key):
        # mmpose's pose_anything `support_order_dropout=-1`: the code's own "off" default (#31)
        return "-1, the usual 'off' sentinel, on a key no schema declares a rate"
    return None


def is_established_rate(key: str) -> bool:
    """A rate by a schema or by its own last word (`attn_pdrop`, `text_dropout_rate`): the keys
    whose values a fix may rewrite (#25). `dropout_att` is read as a rate, but nothing
    establishes what number it should hold."""
    return _rate_head(head_noun(key)) or is_known_rate(key)


def _rate_head(head: str) -> bool:
    """A last word that names a rate (`text_embedding_dropout_rate`, `attn_pdrop`): the key is a
    rate whatever number it holds, so `dropout_rate: 1` is still the bug it looks like."""
    return head in ("dropout", "rate", "prob", "p", "probability", "droppath") or head.endswith(("pdrop", "layerdrop"))


_WORD = LazyRegex(r"[A-Za-z][A-Za-z_-]*")


@lru_cache(maxsize=1)
def _known_rates() -> frozenset:
    """Keys the knowledge names as rates: the strict list, every architecture's dropout keys and
    every PEFT method's dropout fields. Loaded only when a word value needs judging."""
    from auditor.knowledge import architectures, peft_methods

    return STRICT_RATES | architectures.known_dropout_names() | peft_methods.all_dropout_fields()


def is_known_rate(key: str) -> bool:
    """Declared a rate by a schema the tool knows (Transformers config classes, PEFT, the strict
    list); the architecture data is loaded only when a key outside the strict list asks."""
    name = canonical(key)
    return name in STRICT_RATES or name in _known_rates()


def is_setting_word(key: str, value) -> bool:
    """A dropout-named key holding a word (`dropout_position: pre`, `attn_dropout_impl: fused`) is
    a setting, not a rate (#18): only the knowledge can say that such a key is a rate after all,
    and then the word is an error (DRP102)."""
    return isinstance(value, str) and bool(_WORD.fullmatch(value.strip())) and not is_known_rate(key)


def is_keep_probability(key: str) -> bool:
    """TensorFlow-style keep probabilities mean the opposite of a drop rate (pitfalls #50)."""
    name = canonical(key)
    return "keep_prob" in name or "keep_rate" in name
