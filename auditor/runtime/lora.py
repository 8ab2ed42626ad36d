"""A LoRA dropout the user configured, found at p=0 when training starts.

PEFT builds each LoRA layer's `lora_dropout[adapter]` as `nn.Dropout(lora_dropout)` (an
`nn.Identity` when the rate is 0), so a configured rate above 0 whose modules run at p=0 was
zeroed after PEFT built them. TRL's preference trainers do exactly that when
`disable_dropout=True`, their default (trl 1.16 `disable_dropout_in_model` sets every nn.Dropout's
p to 0; facts.md, DRP501/DRP705 statically): the adapter's `lora_dropout` then does nothing, and
nothing tells the user.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.dropout import _DropoutNd


class ZeroedLora:
    __slots__ = ("adapter", "rate", "zeroed", "total", "example")

    def __init__(self, adapter: str, rate: float, zeroed: int, total: int, example: str):
        self.adapter, self.rate, self.zeroed, self.total, self.example = adapter, rate, zeroed, total, example

    def to_dict(self) -> dict:
        return {"adapter": self.adapter, "lora_dropout": self.rate, "zeroed": self.zeroed, "modules": self.total,
                "example": self.example}


def zeroed_lora(model: nn.Module) -> list:
    """Per active adapter whose config asks for lora_dropout > 0: how many of its dropout modules run at p=0."""
    configs = getattr(model, "peft_config", None)
    if not isinstance(configs, dict):
        return []
    try:
        active = set(model.active_adapters)
    except (AttributeError, ValueError, TypeError):
        active = set(configs)
    out = []
    for adapter, config in configs.items():
        if adapter not in active:   # TRL's frozen "ref" copy of the adapter wants no dropout
            continue
        rate = getattr(config, "lora_dropout", None)
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0:
            continue
        suffix = f"lora_dropout.{adapter}"
        modules = [(name, m) for name, m in model.named_modules() if name.endswith(suffix)]
        zeroed = [name for name, m in modules if not isinstance(m, _DropoutNd) or m.p == 0]
        if zeroed:
            out.append(ZeroedLora(adapter, float(rate), len(zeroed), len(modules), zeroed[0]))
    return out


def cause(disable_dropout, trainer_name: str) -> str:
    if disable_dropout:
        return (f"{trainer_name or 'the trainer'} was built with disable_dropout=True (TRL's preference trainers' "
                "default), which sets every nn.Dropout, LoRA's included, to p=0")
    return "something set these modules to p=0 after PEFT built them"
