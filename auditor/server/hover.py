"""What a hover says: the effective dropout of the site under the cursor, from `plan`.

Over a dropout key or value, each setup the file is part of gives the value the run will
train with, where that value came from and the chain of reasons (framework default, trainer
override, an architecture that never reads the key); over a flagged span, the same for the
settings inside it (the `lora_dropout=` of a flagged `LoraConfig(...)` call), and the rules
that flagged it. Positions are offsets in the text the readers read (for a notebook, its
joined code cells).
"""

from __future__ import annotations

from auditor.setup import resolve


def _covers(span, offset: int) -> bool:
    return span is not None and span.start <= offset <= span.end and span.end > 0


def _within(span, start: int, end: int) -> bool:
    return span is not None and start <= span.start and span.end <= end


def _value(p) -> str:
    return "-" if p is None else f"{p:g}"


def _outcome(entry) -> str:
    if entry.effective is not None:
        return f"trains with **{_value(entry.effective)}**"
    said = " ".join(entry.chain)
    if "invalid" in said:
        return "**invalid**"
    if "no effect" in said:
        return "**no effect**"
    return "**no rate the run can use**"


def _entry(entry) -> str:
    s = entry.configured
    written = f"`{s.raw}`" if s.raw else "nothing"
    lines = [f"**{s.dotted}** = {written} as written: {_outcome(entry)}", "",
             f"from `{entry.source}`" if entry.source else ""]
    lines.extend(["", *(f"- {step}" for step in entry.chain)])
    return "\n".join(line for line in lines if line is not None)


def _setup(plan) -> str:
    setup = plan.setup
    d = resolve.describe(plan)
    title = setup.driver.path if setup.driver is not None else setup.root
    model = setup.model
    named = "" if model is None else f" · model {model.ref}: {model.model_type or 'unknown'}"
    launched = "" if setup.launch is None else f" · launched by {setup.launch.path}:{setup.launch.span.line}"
    return f"_setup `{title}` · fine-tune {d['finetune']} · trainer {d['trainer']}{named}{launched}_"


def describe(plans: list, same_file, offset: int, flagged: list) -> str | None:
    """Markdown for the cursor at `offset`, or None when it is on nothing the tool knows.
    same_file(path) says whether a setting's path is this document; flagged: (start, end,
    finding, rule) of the findings under the cursor, offsets as `offset`."""
    sections, seen = [], set()
    for plan in plans:
        hits = [e for e in plan.entries if e.configured is not None and same_file(e.configured.path)
                and (_covers(e.configured.key_span, offset) or _covers(e.configured.value_span, offset))]
        if not hits:
            hits = [e for e in plan.entries if e.configured is not None and same_file(e.configured.path)
                    and any(_within(e.configured.value_span, start, end) for start, end, _, _ in flagged)]
        if not hits:
            continue
        text = "\n\n".join(_entry(e) for e in hits)
        if text in seen:
            continue
        seen.add(text)
        sections.append(text + "\n\n" + _setup(plan))
    for _, _, finding, rule in flagged:
        summary = f": {rule.summary}" if rule is not None else ""
        sections.append(f"**{finding.code}** {finding.name}{summary}")
    return "\n\n---\n\n".join(sections) if sections else None
