"""Legal values far outside practice for their role (the `extreme` category)."""

from auditor.checks import check, hit_at
from auditor.dropout_keys import is_keep_probability

_ROLE_NAMES = {"lora": "LoRA", "stochastic-depth": "stochastic-depth (drop path)"}


@check("too-high")
def too_high(ctx, rule):
    """Params: `max` per role (a value strictly above it fires). Values >= 1 are left to the
    range rule, so one mistake gives one finding."""
    limits = rule.params.get("max", {})
    for s in ctx.source.settings:
        limit = limits.get(s.role)
        if limit is None or s.p is None or is_keep_probability(s.key) or s.reason not in (None, "yaml11-string"):
            continue
        if float(limit) < s.p < 1:
            yield hit_at(s, f"{s.key} = {s.raw} is high for {_ROLE_NAMES.get(s.role, s.role)} dropout (above {limit}); "
                            "fine-tunes rarely gain from it and converge slower")
