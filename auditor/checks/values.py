"""Values that are not usable probabilities (the `invalid` category).

Imports inside functions (`checks.architecture`) are deferred for start-up time: a run that
never takes that path never pays for them.
"""

from auditor.checks.base import check, fmt_p, hit_at, replace_value
from auditor.knowledge.dropout_keys import is_keep_probability
from auditor.sources.dialects import DISPLAY_NAMES, PYYAML_DIALECTS

_WHAT = {
    "numeric-string": "a quoted string, not a number",
    "string": "a string, not a number",
    "bool": "a boolean, not a probability",
    "not-finite": "not a finite number",
    "other": "not a number",
}


def _selected(ctx, rule):
    dialects = rule.params.get("dialects")
    if dialects and ctx.source.dialect not in dialects:
        return []
    roles = rule.params.get("roles")
    return [s for s in ctx.source.settings if not roles or s.role in roles]


@check("out-of-range")
def out_of_range(ctx, rule):
    """p < 0 or p >= 1: torch raises for p outside [0, 1], and p = 1 zeroes every unit."""
    percent_max = float(rule.params.get("percent_max", 100))
    for s in _selected(ctx, rule):
        if s.p is None or is_keep_probability(s.key):
            continue
        if s.p < 0:
            yield hit_at(s, f"{s.key} = {s.raw} is negative; a dropout probability lies in [0, 1)")
        elif s.p == 1:
            yield hit_at(s, f"{s.key} = {s.raw} drops every unit: the layer outputs zeros in training")
        elif s.p > percent_max or (s.p > 1 and s.p != int(s.p)):
            yield hit_at(s, f"{s.key} = {s.raw} is not a probability; it must lie in [0, 1)")


@check("percent")
def percent(ctx, rule):
    """A whole number above 1 and at most 100 reads as a percentage (pitfalls #47: `6`)."""
    percent_max = float(rule.params.get("percent_max", 100))
    for s in _selected(ctx, rule):
        if s.p is not None and 1 < s.p <= percent_max and s.p == int(s.p) and not is_keep_probability(s.key):
            frac = fmt_p(s.p / 100)
            yield hit_at(s, f"{s.key} = {s.raw} looks like a percentage; as a probability write {frac}",
                         replace_value(s, frac, f"write {frac} instead of {s.raw}", "unsafe"))


@check("not-a-number")
def not_a_number(ctx, rule):
    reasons = set(rule.params.get("reasons", list(_WHAT)))
    for s in _selected(ctx, rule):
        if s.reason in reasons:
            fix = None
            if s.reason == "numeric-string":
                number = fmt_p(float(str(s.value).strip()))
                fix = replace_value(s, number, f"unquote to {number}")
            yield hit_at(s, f"{s.key} = {s.raw} is {_WHAT[s.reason]}", fix)


@check("yaml11-string")
def yaml11_string(ctx, rule):
    """`5e-2` is a float to YAML 1.2 and JSON but a string to PyYAML (LLaMA-Factory#4014)."""
    if ctx.source.dialect not in PYYAML_DIALECTS or ctx.source.path.lower().endswith(".json"):
        return
    for s in _selected(ctx, rule):
        if s.reason == "yaml11-string":
            number = fmt_p(s.p)
            yield hit_at(s, f"{s.key}: {s.raw} is read as the string '{s.raw}' by PyYAML, which "
                            f"{DISPLAY_NAMES[ctx.source.dialect]} uses; write {number}",
                         replace_value(s, number, f"write {number}"))


@check("null-rejected")
def null_rejected(ctx, rule):
    """PEFT turns a null lora_dropout into a TypeError; other readers fall back to a default."""
    for s in _selected(ctx, rule):
        if s.reason == "null":
            who = "PEFT" if ctx.source.kind == "peft-adapter" else f"{DISPLAY_NAMES.get(ctx.source.dialect, ctx.source.dialect)} passes it to PEFT, which"
            yield hit_at(s, f"{s.key} is null; {who} raises TypeError when the adapter is built")


@check("template")
def template(ctx, rule):
    for s in _selected(ctx, rule):
        if s.reason == "template":
            yield hit_at(s, f"{s.key} = {s.raw} is resolved at run time and cannot be checked here")


@check("not-a-scalar")
def not_a_scalar(ctx, rule):
    """A list, mapping, alias or python-tagged value where a rate is read (issue #13.4). The
    description comes from the node alone, so an alias to a billion-laughs list is never
    expanded. A config.json list is left alone where the architecture declares a list (CvT's
    per-stage drop_path_rate)."""
    src = ctx.source
    for s in _selected(ctx, rule):
        if s.reason != "structure":
            continue
        if src.kind == "hf-config" and not s.value.startswith(("an alias", "a !")) and not _declared_scalar(src, s):
            continue
        tail = "loading this file fails" if "safe loaders reject" in s.value else "a dropout rate is one number"
        yield hit_at(s, f"{s.key} is {s.value}; {tail}")


def _declared_scalar(src, setting) -> bool:
    """Whether the architecture declares this config.json key, as a number and not a list."""
    try:
        from auditor.checks.architecture import config_entries
    except ImportError:
        return False
    for _model_type, info, settings in config_entries(src):
        if info is not None and any(s is setting for s in settings):
            declared = info.keys.get(info.aliases.get(setting.key, setting.key))
            return declared is not None and not {"list", "tuple", "dict"} & set(declared.types)
    return False
