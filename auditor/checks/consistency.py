"""Two places that disagree about one dropout (the `inconsistent` category).

Imports inside functions (`knowledge.architectures`) are deferred for start-up time: a run that
never takes that path never pays for them.
"""

from auditor.checks.base import check, hit_at

# Spellings that mean the same setting whatever the architecture (transformers#7593).
GENERIC_ALIASES = {"classif_dropout": "classifier_dropout"}


def _same(a, b) -> bool:
    if a.p is not None and b.p is not None:
        return abs(a.p - b.p) < 1e-12
    return a.raw.strip() == b.raw.strip()


def _architecture_aliases(src) -> dict:
    """attribute_map aliases of a config.json's model type (led: attention_probs_dropout_prob
    -> attention_dropout); when both are written, Transformers keeps the alias's value."""
    model_type = src.get("model_type") if src.kind == "hf-config" else None
    if not isinstance(model_type, str):
        return {}
    from auditor.knowledge import architectures

    info = architectures.lookup(model_type)
    return dict(info.aliases) if info is not None else {}


@check("twin-keys")
def twin_keys(ctx, rule):
    """`hidden-dropout` and `hidden_dropout` in one mapping are one setting to gpt-neox (it maps
    `-` to `_`), and alias pairs are one setting to Transformers; different values mean one of
    them is silently ignored."""
    top_aliases = {**GENERIC_ALIASES, **_architecture_aliases(ctx.source)}
    by_parent = {}
    for s in ctx.source.settings:
        aliases = top_aliases if len(s.key_path) == 1 else GENERIC_ALIASES
        by_parent.setdefault((s.key_path[:-1], aliases.get(s.canonical, s.canonical)), []).append(s)
    for group in by_parent.values():
        first = group[0]
        for other in group[1:]:
            if other.key != first.key and not _same(first, other):
                yield hit_at(other, f"{other.key} = {other.raw} and {first.key} = {first.raw} "
                                    f"(line {first.key_span.line}) name the same setting with different values")


@check("adapter-mismatch", scope="setup")
def adapter_mismatch(ctx, rule):
    """The recipe says one lora_dropout, the adapter_config.json saved beside it another: the
    saved adapter came from a different run than the recipe describes."""
    driver = ctx.setup.driver
    if driver is None:
        return
    wanted = [s for s in driver.settings if s.role == "lora" and s.is_set and s.p is not None]
    for adapter in ctx.setup.of_kind("peft-adapter"):
        saved = {s.canonical: s for s in adapter.settings if s.p is not None}
        for s in wanted:
            name = s.canonical.split(".")[-1]
            other = saved.get(name) or (saved.get("lora_dropout") if "lora" in name or "adapter" in name else None)
            if other is not None and not _same(s, other):
                yield hit_at(s, f"{s.key} = {s.raw} here, but {adapter.path}:{other.value_span.line} "
                                f"was saved with {other.key} = {other.raw}")
