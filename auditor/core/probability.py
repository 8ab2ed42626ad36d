"""Read a written value as a dropout probability, or say precisely why it is not one.

YAML is the trap here: PyYAML (what axolotl, LLaMA-Factory and HfArgumentParser use) follows
YAML 1.1, where `5e-2` is a string, while YAML 1.2 parsers and JSON read a float
(LLaMA-Factory#4014, trl#1450). We keep both readings so rules can tell them apart.
"""

from __future__ import annotations

import math

from auditor.core.lazy_regex import LazyRegex

# PyYAML's YAML 1.1 float resolver: a dot is required, and an exponent needs a sign.
_YAML11_FLOAT = LazyRegex(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
    r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_YAML11_INT = LazyRegex(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$")
_NUMBER = LazyRegex(r"^[-+]?(?:\d[\d_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_TEMPLATE = LazyRegex(r"\$\{[^}]*\}|\{\{.*?\}\}|^\$[A-Za-z_][A-Za-z0-9_]*$|%\([^)]*\)s|^\?\?\?$")


def number_from_text(text: str):
    """A float for text that any reader would take as a number, else None."""
    t = text.strip()
    if not _NUMBER.match(t):
        return None
    try:
        value = float(t.replace("_", ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def is_template(text: str) -> bool:
    return bool(_TEMPLATE.search(text))


def yaml11_reads_as_string(plain_text: str) -> bool:
    """True for a plain scalar that YAML 1.2 reads as a number but PyYAML reads as a string."""
    t = plain_text.strip()
    return number_from_text(t) is not None and not (_YAML11_FLOAT.match(t) or _YAML11_INT.match(t))


def classify(value, *, quoted: bool, plain_text: str | None = None):
    """Return (p, reason): p is a float when the value is a number, else reason names why not.

    Reasons: null, bool, string (a quoted or non-numeric string), numeric-string (a string
    that holds a number), yaml11-string (plain `5e-2`: a number to JSON and YAML 1.2 readers,
    a string to PyYAML), template (`${VAR}`, `{{ x }}`: resolved at run time), not-finite, other.
    The YAML reader adds `structure` for a list, mapping, alias or python tag, with the
    Setting's value describing it (nodes.describe_entry), since those never reach classify.
    """
    if value is None:
        return None, "null"
    if isinstance(value, bool):
        return None, "bool"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return None, "not-finite"
        return float(value), None
    if isinstance(value, str):
        if is_template(value):
            return None, "template"
        number = number_from_text(value)
        if number is None:
            return None, "string"
        if not quoted and plain_text is not None and yaml11_reads_as_string(plain_text):
            return number, "yaml11-string"
        return None, "numeric-string"
    return None, "other"
