"""The role a dropout key's name suggests (attention, hidden, lora, ...): the one naming scheme
of the package. Apart from dropout_keys.py, which asks the architecture knowledge whether a
key is a rate, so that architectures.py can use the scheme without importing it back.
"""

from __future__ import annotations

from functools import lru_cache

from auditor.core.lazy_regex import LazyRegex

# Compiled on first use: a run meets few roles, and role_of stops at the first that fits.
_ROLE_PATTERNS = (
    # Classifier-free guidance: the share of training samples whose class label or caption is
    # replaced by the null condition (DiT's and PixArt's class_dropout_prob, kohya's
    # caption_dropout_rate). A data-level probability, 0.1 to 0.5 by design (ControlNet-style
    # training drops half the prompts): the range rules apply, no activation-dropout limit does.
    ("conditioning", LazyRegex(r"class_drop|caption_drop|label_drop|drop_(text|caption|prompt)|"
                               r"cond(ition(ing)?)?_drop|uncond|cfg_drop")),
    ("lora", LazyRegex(r"lora|adapter|(^|_)(module|rank|vera|boft|vblora|randlora|shadow|deft|frod|gralora|hira|miss|psoft|pvera|tinylora|unilora|oft)_dropout|xlora")),
    ("stochastic-depth", LazyRegex(r"drop_?path|stochastic_depth|drop_connect|path_dropout")),
    ("layerdrop", LazyRegex(r"layerdrop|layer_drop")),
    ("rnn", LazyRegex(r"(^|_)(rnn|lstm|gru)(_|$)")),
    ("classifier", LazyRegex(r"classif|(^|_)cls_|summary_|(^|_)head_|pooler|final_dropout|qa_dropout")),
    ("attention", LazyRegex(r"attn|attention|(^|_)att(_|$)")),
    ("embedding", LazyRegex(r"emb|embd|embedding|word_dropout|input_dropout|token_drop")),
    ("activation", LazyRegex(r"activation|ffn|(^|_)ff_|mlp|relu|intermediate|act_dropout")),
    ("hidden", LazyRegex(r"hidden|resid|(^|_)dropout(_p|_prob|_rate)?$|^dropout|^p_dropout|^drop_rate$|^drop_prob$")),
)


def canonical(key: str) -> str:
    return key.strip().lower().replace("-", "_")


@lru_cache(maxsize=4096)
def role_of(key: str) -> str:
    name = canonical(key)
    for role, pattern in _ROLE_PATTERNS:
        if pattern.search(name):
            return role
    return "other"


# A section that holds a classification head: its plain `dropout` is the head's (NeMo's
# classifier_head.fc_dropout, a `head: {dropout: 0.5}` block), judged by the classifier limits.
_HEAD_SECTION = LazyRegex(r"classif|(^|_)cls(_|$)|(^|_)heads?(_|$)|pooler")


def role_in(key: str, sections: tuple) -> str:
    """The role of a key read in its sections: a hidden-looking rate inside a classification
    head's section is the head's (#25)."""
    role = role_of(key)
    if role in ("hidden", "other") and any(isinstance(s, str) and _HEAD_SECTION.search(canonical(s))
                                           for s in sections):
        return "classifier"
    return role
