"""Group sources into Setups and resolve each Setup's effective dropout plan.

The plan answers "what dropout will this run actually train with?": a recipe value can be
overridden by the trainer (TRL's disable_dropout), an absent key resolves to the framework's
default, and a saved adapter records what an earlier run used. Most rules are questions about
this plan, and `dropout-audit plan` prints it.

Imports inside functions (`itertools`, `knowledge.architectures`, `setup.identity`) are deferred
for start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import os

from auditor.core.model import DropoutPlan, PlanEntry, Setup
from auditor.knowledge import frameworks

ARTIFACT_KINDS = frozenset({"hf-config", "peft-adapter"})
# Not drivers: files that could not be read, and scripts read only for the files they link to
# (auditor/setup/links.py); the setup graph (auditor/setup/graph.py) attaches what they name.
NOT_DRIVERS = frozenset({"unreadable", "linker"})


def group(directory: str, sources: list, models: dict | None = None) -> list:
    """Setups for one directory: one per driver (recipe/script), sharing the artifacts, each
    with the model it trains (auditor/setup/identity.py; `models` is the user's mapping)."""
    artifacts = [s for s in sources if s.kind in ARTIFACT_KINDS]
    drivers = [s for s in sources if is_driver(s)]
    if not drivers:
        return [setup_of(directory, None, artifacts, models)] if artifacts else []
    return [setup_of(directory, d, artifacts, models) for d in drivers]


def setup_of(directory: str, driver, artifacts: list, models: dict | None = None) -> Setup:
    """One driver's Setup with the directory's artifacts (its own list: the setup graph adds
    what this driver's links reach) and the model it names."""
    from auditor.setup import identity

    setup = Setup(root=directory, driver=driver, artifacts=list(artifacts))
    identity.attach(setup, models)
    return setup


def is_driver(src) -> bool:
    return src.kind not in ARTIFACT_KINDS and src.kind not in NOT_DRIVERS


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
    trainer = frameworks.trainer_label(driver, plan.trainer) if plan.trainer else "not stated"
    hf_trainer = driver.get("trainer_class") if driver is not None and not plan.trainer else None
    if hf_trainer:  # Transformers' own Trainer: supervised, leaves dropout as the model has it
        trainer = f"Transformers' {hf_trainer} (keeps dropout as configured)"
    out = {"finetune": plan.finetune if plan.finetune != "unknown" else "not stated",
           "trainer": trainer, "dialect": "", "dialect_why": ""}
    if driver is not None:
        framework = frameworks.framework_of(driver)
        out["dialect"] = frameworks.profile(framework).get("display", framework)
        rivals = driver.get("dialect_rivals") or ()
        why = driver.get("dialect_why") or ("the launch line" if driver.get("framework") else "")
        if rivals:
            why += "; also fits " + ", ".join(rivals) + " (only what they agree on is used)"
        out["dialect_why"] = why
        flavour = driver.get("config_flavour")
        if flavour:
            out["dialect"] = {"openmmlab": "OpenMMLab config", "detectron2": "detectron2 LazyConfig"}[flavour]
            out["dialect_why"] = why or "module-level dict()/LazyCall config, read without running it"
    starts = _starts_from(plan.setup)
    if starts:
        out["starts_from"] = starts
    return out


def _starts_from(setup) -> str:
    """The key that states the run starts from pretrained weights (knowledge/data/setup_kinds.json),
    shown so a user sees why the fine-tuning limits apply (#25)."""
    for src in setup.sources:
        stated = src.get("pretrained_from")
        if stated:
            return str(stated)
    return ""


# What the plan says of a value that is not a usable probability, instead of "as configured".
_REASON_NOTES = {
    "null": "invalid: null, not a number",
    "bool": "invalid: a boolean, not a probability",
    "string": "invalid: a string, not a number",
    "numeric-string": "invalid: a quoted number, which the library receives as a string",
    "not-finite": "invalid: not a finite number",
    "structure": "invalid: a list, mapping or tagged value, not a number",
    "other": "invalid: not a number",
    "yaml11-string": "PyYAML (YAML 1.1) reads this as a string, JSON and YAML 1.2 readers as a number",
    "template": "unknown: a template, resolved only at run time",
    "expression": "unknown: an expression, known only at run time",
}


def _value_note(s, effective, chain: list):
    """The effective value of a setting as written, with a step saying why when the value is
    no usable probability (`check` reports the rule; the plan must not say "as configured")."""
    note = _REASON_NOTES.get(s.reason or "")
    if note:
        chain.append(note)
        return effective
    if s.p is not None and not 0 <= s.p <= 1:
        chain.append(f"invalid: {s.raw} is not a probability in [0, 1]; nn.Dropout raises ValueError")
        return None
    if s.p == 1:
        chain.append("p = 1 drops every unit: the layer outputs zeros in training")
    return effective


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
            effective = s.p if s.reason in (None, "yaml11-string", "interpolated") else None
            if (s.role == "lora" and src is driver and not s.is_set
                    and frameworks.framework_of(driver) in frameworks.LORA_DROPOUT_DEFAULT):
                effective, note = frameworks.LORA_DROPOUT_DEFAULT[frameworks.framework_of(driver)]
                chain.append(f"empty value: {note}")
            else:
                effective = _value_note(s, effective, chain)
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
    if setup.model is not None and setup.model.model_type:
        model_sites(plan, setup.model)
    return plan


# Where a setting reaches the model's config: axolotl's overrides, a config.json, and the
# keyword arguments of a config or model load in code.
_MODEL_CONFIG_PARENTS = frozenset({"overrides_of_model_config", "model_config"})


def _reaches_model_config(setting, src) -> bool:
    if src.kind == "hf-config":
        return len(setting.key_path) == 1
    if src.dialect == "axolotl":
        return len(setting.key_path) == 2 and setting.key_path[0] in _MODEL_CONFIG_PARENTS
    if src.kind == "python" and len(setting.key_path) == 2:
        owner = str(setting.key_path[0])
        return owner.endswith(".from_pretrained") and not owner.startswith(("Lora", "Peft", "Fast"))
    return False


def model_sites(plan: DropoutPlan, model) -> None:
    """Every dropout site of the resolved architecture, including those the setup never
    mentions (Llama's attention_dropout, at the type's default), and no effect for a key the
    setup sets that the architecture does not read."""
    from auditor.knowledge import architectures

    info = architectures.lookup(model.model_type)
    if info is None:
        return
    by_source = {id(src): src for src in plan.setup.sources}
    set_keys = set()
    for entry in plan.entries:
        s = entry.configured
        src = next((x for x in by_source.values() if s is not None and x.path == s.path), None)
        if s is None or src is None or not _reaches_model_config(s, src):
            continue
        set_keys.add(s.key)
        declared = info.keys.get(info.aliases.get(s.key, s.key))
        if declared is None and s.key not in info.read_undeclared:
            entry.effective = None
            owner = str(s.key_path[0]) if src.kind == "python" else ""
            if owner.startswith("AutoModel") or ("For" in owner and not owner.startswith("AutoConfig")):
                entry.chain.append(f"invalid: {model.model_type} does not declare {s.key}, "
                                   "from_pretrained raises TypeError")
            else:
                entry.chain.append(f"no effect: {model.model_type} does not read {s.key}")
        elif declared is not None and declared.read == "unread":
            entry.effective = None
            entry.chain.append(f"no effect: {model.model_type} declares {s.key} but no module reads it")
    known = {}
    if model.config is not None:
        known = {s.key_path: s for s in model.config.settings}
    tables = [((), model.model_type, info)]
    for attr, sub_type in sorted(info.sub_configs.items()):  # composites keep their keys in sub-configs
        sub = architectures.lookup(sub_type)
        if sub is not None:
            tables.append(((attr,), sub_type, sub))
    for prefix, type_name, table in tables:
        for key, declared in sorted(table.keys.items()):
            site = ".".join(prefix + (key,))
            if (not prefix and key in set_keys) or declared.read == "unread":
                continue
            written = known.get(prefix + (key,))
            if written is not None:
                value, origin = written.p, f"{written.path}:{written.value_span.line}"
                chain = ["not set by the setup", f"{site} = {written.raw} in {model.ref}'s config.json ({model.source})"]
            else:
                value = declared.default if isinstance(declared.default, (int, float)) and \
                    not isinstance(declared.default, bool) else None
                origin = f"default of {type_name}"
                chain = ["not set by the setup", f"{model.ref} is a {model.model_type} ({model.source}); "
                                                  f"the {type_name} default is {declared.default}"]
            plan.entries.append(PlanEntry(site=site, role=architectures.role_of(key) or "other", configured=None,
                                          effective=value, chain=chain, source=origin))
