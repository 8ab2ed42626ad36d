"""Checks that need a framework's profile (knowledge/frameworks.json): which trainer a run
really uses, and which section of a recipe its framework reads."""

from __future__ import annotations

from auditor.checks import check, hit_at
from auditor.knowledge import frameworks
from auditor.resolve import is_lora_like


def _launch_runs(driver):
    """(framework, trainer, finetune, disable_dropout flag, (start, end)) per recognised launch of a
    shell driver, or one run for a recipe (its dialect's profile, the whole file)."""
    if driver.kind == "shell":
        from auditor.sources import shell

        for launch in shell.launches(driver.text):
            facts = frameworks.recognise_launch(launch)
            if not facts:
                continue
            explicit = launch.flags.get("disable_dropout")
            yield (facts["framework"][0], facts.get("trainer", (None,))[0], facts.get("finetune", (None,))[0],
                   explicit, launch.extent)
    else:
        yield (frameworks.framework_of(driver), driver.get("trainer"), driver.get("finetune"),
               driver.fields.get("disable_dropout"), (0, len(driver.text)))


@check("preference-trainer-keeps-dropout", scope="setup")
def preference_trainer_keeps_dropout(ctx, rule):
    """A framework's own DPO/KTO/reward trainer that never disables dropout (per its profile)
    trains with the dropout the run sets: the policy's log-probabilities are noisy against the
    reference's (#18.3). Only a profile's positive statement counts; an unknown trainer is not
    judged. LoRA dropout counts only when LoRA layers are built."""
    driver = ctx.setup.driver
    if driver is None or driver.kind not in ("shell", "recipe"):
        return
    for framework, trainer, finetune, explicit, (start, end) in _launch_runs(driver):
        if explicit is not None:
            continue  # the run says itself whether dropout is disabled
        who = frameworks.trainer_keeps_dropout(framework, trainer)
        if who is None:
            continue
        for s in driver.settings:
            if not (start <= s.value_span.start < end) or not s.p or s.reason is not None:
                continue
            if s.role == "lora" and not is_lora_like(str(finetune or "")):
                continue
            name = s.key_path[-1] if s.origin == "cli" else s.key
            yield hit_at(s, f"{name} = {s.raw} stays on under {who}, which never disables dropout: the policy's "
                            "log-probabilities are noisy against the reference's; set it to 0 for "
                            f"{str(trainer).upper()} training")
