"""The measured plan: which configured key drives which live site, found by switching keys off.

For every dropout-like key with a value above 0, the model is rebuilt from the same seed with
that key at 0.0 and run in train mode with the same random streams. A key is live when a site's
rate changes, or (for layerdrop/stochastic depth, which use torch.rand, not dropout) when the
output changes in any of up to `max_forwards` paired forwards; otherwise it is a measured no-op:
bitwise-identical training forwards prove the model never read it. Sites that keep p > 0 whatever
key is switched off are live sites the config does not explain.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from auditor.probe import rng
from auditor.probe.instrument import Instrument

_INDEX = re.compile(r"\.\d+(?=\.|$)")


def generic_path(path: str) -> str:
    """layers.3.self_attn -> layers.*.self_attn, so full-size and scaled builds compare."""
    return _INDEX.sub(".*", path)


@dataclass(slots=True)
class KeyEffect:
    key: object                 # targets.ConfigKey
    which: str                  # "config" | "adapter"
    verdict: str                # "live" | "no-op" | "unknown"
    sites: set = field(default_factory=set)    # generic paths of (path, kind) whose rate it sets
    site_p: dict = field(default_factory=dict)  # generic site -> rate with the key as configured
    forwards: int = 0
    note: str = ""


def site_rates(model, inputs: Callable, seed: int, n: int = 1) -> tuple:
    """Rates per (generic path, kind) in train mode, and the outputs of n seeded forwards."""
    model.train()
    outs = []
    with Instrument(model, mode="light", phase="train") as ins, torch.no_grad():
        for i in range(n):
            rng.seed_all(seed + 1000 + i)  # numpy and random too: SpeechT5's SpecAugment draws from numpy
            outs.append(inputs(model))
    rates = {}
    for s in ins.sites.values():
        rates[(generic_path(s.path), s.kind)] = max(rates.get((generic_path(s.path), s.kind), 0.0), s.train.p)
    return rates, outs


def measure_keys(keys: list, build: Callable, run: Callable, seed: int, max_forwards: int = 32) -> tuple:
    """keys: [(ConfigKey, which)]; build(overrides) -> model; run(model) -> output tensor.

    Returns (base_rates, [KeyEffect]).
    """
    base = build({})
    base_rates, base_outs = site_rates(base, run, seed, 1)
    base_more = None
    effects = []
    for key, which in keys:
        if key.value <= 0:
            continue
        eff = KeyEffect(key, which, "unknown")
        try:
            other = build({(which, key.key_path): 0.0})
        except Exception as exc:  # noqa: BLE001  a key that cannot be 0 here: say so, do not guess
            eff.note = f"could not rebuild with {key.dotted}=0: {exc}"
            effects.append(eff)
            continue
        rates, outs = site_rates(other, run, seed, 1)
        changed = {s for s in set(base_rates) | set(rates) if base_rates.get(s, 0.0) != rates.get(s, 0.0)}
        eff.forwards = 1
        if changed:
            eff.verdict = "live"
            eff.sites = changed
            eff.site_p = {s: base_rates.get(s, 0.0) for s in changed}
        elif not torch.equal(base_outs[0], outs[0]):
            eff.verdict = "live"
            eff.note = "changes the output but no dropout site (layer drop or stochastic depth)"
        else:
            if base_more is None:
                base_more = site_rates(base, run, seed, max_forwards)[1]
            other_more = site_rates(other, run, seed, max_forwards)[1]
            eff.forwards = max_forwards
            diff = next((i for i in range(max_forwards) if not torch.equal(base_more[i], other_more[i])), None)
            if diff is None:
                eff.verdict = "no-op"
            else:
                eff.verdict = "live"
                eff.forwards = diff + 1
                eff.note = "changes the output but no dropout site (layer drop or stochastic depth)"
        effects.append(eff)
    return base_rates, effects
