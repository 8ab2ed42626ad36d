"""Settings that are written but have no effect (the `no-op` category)."""

from auditor.checks.base import check, hit_at
from auditor.setup.resolve import is_lora_like


@check("lora-in-full-finetune", scope="setup")
def lora_in_full_finetune(ctx, rule):
    """A full fine-tune builds no LoRA layers, so a non-zero lora dropout does nothing. Empty
    keys (axolotl's templates carry `lora_dropout:`) state nothing and pass."""
    driver = ctx.setup.driver
    if driver is None or ctx.plan.finetune in ("unknown",) or is_lora_like(ctx.plan.finetune):
        return
    if ctx.plan.finetune not in ("full", "freeze"):
        return
    for s in driver.settings:
        if s.role == "lora" and s.p:
            yield hit_at(s, f"{s.key} = {s.raw} has no effect: this is a {ctx.plan.finetune} fine-tune, "
                            "no LoRA layers are built")


@check("trainer-zeroes", scope="setup")
def trainer_zeroes(ctx, rule):
    """TRL's preference trainers set every nn.Dropout to p=0 unless told otherwise, so a LoRA
    dropout in such a recipe is a no-op (trl#744; trl/trainer/utils.py disable_dropout_in_model)."""
    driver = ctx.setup.driver
    full = ctx.plan.finetune in ("full", "freeze")
    for entry in ctx.plan.entries:
        s = entry.configured
        if s is None or s.path != (driver.path if driver else None) or not s.p or entry.effective != 0:
            continue
        if full and s.role == "lora":
            continue  # no LoRA layers to zero: DRP500 names the cause (#25)
        yield hit_at(s, f"{s.key} = {s.raw} has no effect: {entry.chain[-1]}")
