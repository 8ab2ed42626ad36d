"""Checks that need a framework's profile (knowledge/frameworks.json): which trainer a run
really uses, and which section of a recipe its framework reads.

Imports inside functions (`sources.shell`) are deferred for start-up time: a run that never
takes that path never pays for them.
"""

from __future__ import annotations

from auditor.checks.base import Hit, check, hit_at
from auditor.knowledge import frameworks
from auditor.setup.resolve import is_lora_like


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
            yield (facts["framework"][0], facts.get("trainer", (None,))[0], facts.get("finetune", (None, None)),
                   explicit, launch.extent)
    else:
        f = driver.fields.get("finetune")
        yield (frameworks.framework_of(driver), driver.get("trainer"), (f.value, f.span) if f else (None, None),
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
    for framework, trainer, (finetune, finetune_span), explicit, (start, end) in _launch_runs(driver):
        if explicit is not None:
            if driver.kind == "recipe":
                yield from _kept_on_purpose(ctx.setup, driver, explicit, finetune)
            continue  # the run says itself whether dropout is disabled
        who = frameworks.trainer_keeps_dropout(framework, trainer)
        if who is None:
            continue
        mine = [s for s in driver.settings if start <= s.value_span.start < end]
        default = frameworks.LORA_DROPOUT_DEFAULT.get(framework)
        if (is_lora_like(str(finetune or "")) and finetune_span is not None and default and default[0]
                and not any(s.role == "lora" for s in mine)):
            yield Hit(driver.path, finetune_span, f"LoRA dropout is not set, so {default[1]}; it stays on under "
                      f"{who}, which never disables dropout: set the LoRA dropout to 0 for "
                      f"{str(trainer).upper()} training", key="lora_dropout")
        for s in mine:
            if not s.p or s.reason is not None:
                continue
            if s.role == "lora" and not is_lora_like(str(finetune or "")):
                continue
            name = s.key_path[-1] if s.origin == "cli" else s.key
            yield hit_at(s, f"{name} = {s.raw} stays on under {who}, which never disables dropout: the policy's "
                            "log-probabilities are noisy against the reference's; set it to 0 for "
                            f"{str(trainer).upper()} training")


def _kept_on_purpose(setup, driver, explicit, finetune):
    """`disable_dropout: false` in a recipe (#26): only TRL's preference and RL configs have
    the field (knowledge/data/trl.json: DPOConfig, GRPOConfig, ...), so the recipe runs one of
    them with dropout on. That matters when something drops: the model's type reads a non-zero
    rate (the identity the setup stage resolved, gpt2: 0.1 everywhere), or LoRA layers are
    built with a non-zero dropout. The code-side twin is DRP702."""
    if explicit.value is not False or explicit.span is None:
        return
    lora = [s for s in driver.settings if s.role == "lora" and s.p and s.reason is None]
    if lora and is_lora_like(str(finetune or "")):
        why, severity = f"{lora[0].key} = {lora[0].raw} (line {lora[0].value_span.line})", ""
    else:
        model = setup.model
        from auditor.knowledge import architectures

        settings = model.config.settings if model is not None and model.config is not None else ()
        drops = architectures.has_dropout(model.model_type, settings) if model is not None and model.model_type else None
        if drops is False:
            return
        if drops:
            why, severity = f"{model.model_type} ({model.ref}) has dropout", ""
        else:
            why, severity = "the model's dropout is not known here", "info"
    yield Hit(driver.path, explicit.span,
              f"disable_dropout: false keeps dropout on in TRL preference/RL training ({why}): the policy's "
              "log-probabilities become noisy against the reference's; leave disable_dropout at true",
              key="disable_dropout", severity=severity)


@check("unselected-peft-section", scope="setup")
def unselected_peft_section(ctx, rule):
    """NeMo builds only the PEFT section its `peft_scheme` selects (lora -> lora_tuning, ...):
    a dropout in another section configures nothing (#13.6). When the selected section keeps its
    own dropout at 0, the value was probably meant for it, and the message says so."""
    driver = ctx.setup.driver
    if driver is None or driver.dialect != "nemo":
        return
    for s in driver.settings:
        state = frameworks.nemo_peft_section(driver, s)
        if state is None or state[0] or not s.p:
            continue
        _, scheme, selected = state
        where = " and ".join(f"model.peft.{name}" for name in selected) or "no PEFT section"
        message = f"{s.dotted} = {s.raw} has no effect: peft_scheme: {scheme} builds {where} only"
        twin = next((o for o in driver.settings if o.p == 0 and o.key == s.key
                     and frameworks.nemo_peft_section(driver, o) and frameworks.nemo_peft_section(driver, o)[0]), None)
        if twin is not None:
            message += (f"; {twin.dotted} (line {twin.value_span.line}) is {twin.raw}, so the value was probably "
                        "meant for it")
        yield hit_at(s, message)
