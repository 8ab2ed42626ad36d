"""invalid checks in code: keyword arguments the trainer argument classes reject."""

from __future__ import annotations

import ast

from auditor.checks.base import check
from auditor.checks.code.common import (
    hit,
    python_module_of,
)
from auditor.knowledge import dropout_keys
from auditor.sources.python_code import TRAINING_ARGS
from auditor.sources.python_facts import (
    last_name,
)


@check("trainer-args-dropout-kwarg")
def trainer_args_dropout_kwarg(ctx, rule):
    """TrainingArguments and TRL's *Config classes have no dropout field: the call raises
    TypeError (facts.md "Trainers"). The dropout belongs on the model config or LoraConfig."""
    module = python_module_of(ctx)
    if module is None:
        return
    local = {n.name for n in module.index.of(ast.ClassDef)}
    for call in module.index.calls_named(TRAINING_ARGS):
        name = last_name(call.func)
        if name in local:
            continue
        for kw in call.keywords:
            if kw.arg and dropout_keys.is_rate_key(kw.arg):
                where = "LoraConfig(lora_dropout=...)" if "lora" in kw.arg else "the model config (from_pretrained(..., <key>=...))"
                yield hit(ctx, module, kw, f"{name} has no field '{kw.arg}': this call raises TypeError; set it on {where}",
                           key=f"{name}.{kw.arg}", end_node=kw.value)
