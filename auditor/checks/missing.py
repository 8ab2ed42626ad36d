"""Regularisation the setup suggests but does not configure (the `missing` category).

Imports inside functions (`core.model`) are deferred for start-up time: a run that never takes
that path never pays for them.
"""

from auditor.checks.base import Hit, check
from auditor.knowledge import frameworks


@check("lora-dropout-missing", scope="setup")
def lora_dropout_missing(ctx, rule):
    """A LoRA recipe that never states lora_dropout silently trains with the framework's
    default (0.0 in most of them). Stating 0.0 is a choice (torchtune, PR #1492) and passes."""
    plan, driver = ctx.plan, ctx.setup.driver
    if driver is None or driver.kind != "recipe" or plan.disabled_by:
        return  # a trainer that zeroes dropout (DPO, KTO...) wants none: nothing is missing
    for entry in plan.entries:
        if entry.site == "lora_dropout" and entry.configured is None:
            _, note = frameworks.LORA_DROPOUT_DEFAULT[frameworks.framework_of(driver)]
            anchor = driver.fields.get("finetune")
            span = anchor.span if anchor is not None and anchor.span is not None else None
            if span is None:
                from auditor.core.model import Span
                span = Span.file_start()
            yield Hit(driver.path, span, f"LoRA fine-tune without an explicit lora_dropout: {note}; "
                                         "set it (0.05-0.1 is common, 0.0 if deliberate)", key="lora_dropout")
