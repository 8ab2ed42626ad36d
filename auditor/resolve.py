"""Group sources into Setups and resolve each Setup's effective dropout plan.

The plan answers "what dropout will this run actually train with?": a recipe value can be
overridden by the trainer (TRL's disable_dropout), an absent key resolves to the framework's
default, and a saved adapter records what an earlier run used. Most rules are questions about
this plan, and `dropout-audit plan` prints it.
"""

from __future__ import annotations

import os

from auditor.knowledge import frameworks
from auditor.model import DropoutPlan, PlanEntry, Setup

ARTIFACT_KINDS = frozenset({"hf-config", "peft-adapter"})


def group(directory: str, sources: list) -> list:
    """Setups for one directory: one per driver (recipe/script), sharing the artifacts."""
    artifacts = [s for s in sources if s.kind in ARTIFACT_KINDS]
    drivers = [s for s in sources if s.kind not in ARTIFACT_KINDS and s.kind != "unreadable"]
    if not drivers:
        return [Setup(root=directory, driver=None, artifacts=artifacts)] if artifacts else []
    return [Setup(root=directory, driver=d, artifacts=artifacts) for d in drivers]


def directory_of(path: str) -> str:
    return os.path.dirname(path) or "."


def by_directory(paths):
    """(directory, its paths) in path order: a directory is the unit of work, since a Setup
    never spans two (discovery yields each directory's files together)."""
    import itertools

    for directory, group in itertools.groupby(paths, key=directory_of):
        yield directory, list(group)


def finetune_of(setup: Setup) -> str:
    if setup.driver is not None and setup.driver.get("finetune"):
        return str(setup.driver.get("finetune"))
    if setup.of_kind("peft-adapter"):
        return str(setup.of_kind("peft-adapter")[0].get("peft_type", "lora")).lower()
    return "unknown"


def describe(plan: DropoutPlan) -> dict:
    """What the plan says about the run, each "not stated" unless the setup states it (#15.6):
    fine-tune method, trainer (named as its framework runs it), and the dialect with its reason."""
    driver = plan.setup.driver
    out = {"finetune": plan.finetune if plan.finetune != "unknown" else "not stated",
           "trainer": frameworks.trainer_label(driver, plan.trainer) if plan.trainer else "not stated",
           "dialect": "", "dialect_why": ""}
    if driver is not None:
        framework = frameworks.framework_of(driver)
        out["dialect"] = frameworks.profile(framework).get("display", framework)
        rivals = driver.get("dialect_rivals") or ()
        why = driver.get("dialect_why") or ("the launch line" if driver.get("framework") else "")
        if rivals:
            why += "; also fits " + ", ".join(rivals) + " (only what they agree on is used)"
        out["dialect_why"] = why
    return out


def is_lora_like(finetune: str) -> bool:
    return finetune not in ("full", "freeze", "unknown", "none", "")


def resolve(setup: Setup) -> DropoutPlan:
    driver = setup.driver
    finetune = finetune_of(setup)
    trainer = str(driver.get("trainer") or "") if driver else ""
    plan = DropoutPlan(setup=setup, trainer=trainer, finetune=finetune)
    disabled, why_disabled = (False, "")
    if driver is not None:
        disabled, why_disabled = frameworks.trainer_disables_dropout(driver, trainer)
    plan.disabled_by = why_disabled if disabled else ""
    for src in setup.sources:
        for s in src.settings:
            section = frameworks.nemo_peft_section(driver, s) if src is driver else None
            if section is not None and not section[0]:
                continue  # NeMo builds only the section peft_scheme selects (DRP503 reports the rest)
            chain = [f"{s.path}:{s.value_span.line} sets {s.dotted} = {s.raw or 'nothing'}"]
            effective = s.p if s.reason in (None, "yaml11-string") else None
            if (s.role == "lora" and src is driver and not s.is_set
                    and frameworks.framework_of(driver) in frameworks.LORA_DROPOUT_DEFAULT):
                effective, note = frameworks.LORA_DROPOUT_DEFAULT[frameworks.framework_of(driver)]
                chain.append(f"empty value: {note}")
            if disabled and src is driver and s.role == "lora" and effective:
                chain.append(f"{why_disabled}: nn.Dropout modules (LoRA dropout included) set to p=0")
                effective = 0.0
            plan.entries.append(PlanEntry(site=s.dotted, role=s.role, configured=s, effective=effective,
                                          chain=chain, source=f"{s.path}:{s.value_span.line}"))
    if driver is not None and is_lora_like(finetune) and not any(
            s.role == "lora" and s.is_set for s in driver.settings):
        default = frameworks.LORA_DROPOUT_DEFAULT.get(frameworks.framework_of(driver))
        if default is not None:
            value, note = default
            if disabled and value:
                value, note = 0.0, f"{note}; {why_disabled}"
            plan.entries.append(PlanEntry(site="lora_dropout", role="lora", configured=None, effective=value,
                                          chain=[f"not set in {driver.path}", note], source="default"))
    return plan
