"""Measure which model types skip whole layers in training, for the layer-drop + DDP rule.

DistributedDataParallel with find_unused_parameters=False expects every parameter to receive a
gradient in every step; a model that skips a whole layer at random leaves that layer's
parameters without one, and the step fails ("Expected to have finished reduction in the prior
iteration") or misbehaves. Per-sample stochastic depth (DropPath: a mask over the batch) keeps
every parameter in the graph and is harmless. Which of the two a model does is a property of
its modeling code, so it is measured, not read from names:

for each model type whose config declares a layer-drop or stochastic-depth key, build the
probe's tiny version of its default config (auditor.probe.build: 2 layers, width 64) as the
base model, run RUNS training forward/backward passes on synthetic inputs with the key at 0.0
and again at 0.9, and record the parameters that got no gradient at 0.9 but did at 0.0. Model
types whose inputs this script cannot synthesise fall back to a scan of their modeling source
for a training-time branch that skips a layer on `layerdrop`, and say so (`method`).

Run: `python -m auditor.generate.layer_skipping [--resume]` (imports torch and
transformers; about ten CPU minutes; --resume keeps the model types already written). It writes data/layer_skipping.json, which the static path reads with json.

Imports inside functions (`knowledge.architectures`, `knowledge.dropout_keys`, `probe.build`,
`torch`, `transformers`, `transformers.models`) are deferred for start-up time: a run that never
takes that path never pays for them.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys

RUNS = 6
HIGH = 0.9
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "knowledge", "data", "layer_skipping.json")


def _candidate_keys() -> dict:
    """model type -> declared keys in the layer-drop or stochastic-depth role that a module reads."""
    from auditor.knowledge import architectures
    from auditor.knowledge.dropout_keys import role_of

    found = {}
    for model_type in architectures.model_types():
        info = architectures.lookup(model_type)
        keys = [k for k, v in info.keys.items()
                if role_of(k) in ("layerdrop", "stochastic-depth") and v.read != "unread"]
        if keys:
            found[model_type] = sorted(keys)
    return found


def _inputs(model, config, torch):
    """Synthetic inputs for the forward's signature, or None when they cannot be guessed."""
    params = inspect.signature(model.forward).parameters
    g = torch.Generator().manual_seed(0)
    vocab = int(getattr(config, "vocab_size", 512) or 512)
    kw = {}
    if "input_values" in params:
        kw["input_values"] = torch.randn(2, 16000, generator=g)
    elif "input_features" in params:
        bins = getattr(config, "num_mel_bins", None) or getattr(config, "feature_size", None)
        if not isinstance(bins, int):
            return None
        frames = 2 * int(getattr(config, "max_source_positions", 0) or 0) or 64
        if "whisper" in config.model_type or "audio" in config.model_type:
            kw["input_features"] = torch.randn(2, bins, frames, generator=g)
        else:
            kw["input_features"] = torch.randn(2, frames, bins * int(getattr(config, "input_channels", 1) or 1),
                                               generator=g)
    elif "pixel_values" in params:
        size = getattr(config, "image_size", 64)
        size = size[0] if isinstance(size, (list, tuple)) else size
        channels = int(getattr(config, "num_channels", 3) or 3)
        kw["pixel_values"] = torch.randn(2, channels, int(size or 64), int(size or 64), generator=g)
    elif "input_ids" in params:
        kw["input_ids"] = torch.randint(3, vocab, (2, 16), generator=g)
    else:
        return None
    if "decoder_input_ids" in params:
        kw["decoder_input_ids"] = torch.randint(3, vocab, (2, 8), generator=g)
    return kw


def _unused(model_type: str, key: str, value: float, torch) -> set:
    from transformers import CONFIG_MAPPING

    from auditor.probe.build import build_hf

    base = CONFIG_MAPPING[model_type]().to_dict()
    base[key] = value
    model, _arch = build_hf(base, None, full_size=False, seed=0, device="cpu", dtype=torch.float32)
    model.train()
    kw = _inputs(model, model.config, torch)
    if kw is None:
        raise RuntimeError("no synthetic inputs for this forward")
    missing = set()
    for _ in range(RUNS):
        model.zero_grad(set_to_none=True)
        out = model(**kw)
        tensors = [t for t in (out.to_tuple() if hasattr(out, "to_tuple") else out)
                   if torch.is_tensor(t) and t.is_floating_point()]
        sum(t.float().mean() for t in tensors).backward()
        missing |= {n for n, p in model.named_parameters() if p.requires_grad and p.grad is None}
    return missing


_SKIP = re.compile(r"if self\.training.*\n(?:.*\n){0,3}.*(?:<|<=|>)\s*self\.(?:\w*layerdrop\w*)"
                   r"|skip_the_layer = .*layerdrop|if not self\.training or \(layerdrop_prob > self\.layerdrop\)"
                   r"|to_drop = layerdrop_prob <= self\.layerdrop")


def _source_scan(model_type: str) -> bool | None:
    import transformers.models as models

    folder = os.path.join(os.path.dirname(models.__file__), model_type.replace("-", "_"))
    files = [os.path.join(folder, f) for f in sorted(os.listdir(folder))
             if f.startswith("modeling_")] if os.path.isdir(folder) else []
    if not files:
        return None
    return any(_SKIP.search(open(f, encoding="utf-8").read()) for f in files)


def measure() -> dict:
    import torch
    import transformers

    torch.set_num_threads(1)
    result = _previous() if "--resume" in sys.argv else {}
    for model_type, keys in sorted(_candidate_keys().items()):
        if model_type in result:
            continue
        for key in keys:
            entry = {"key": key}
            try:
                baseline = _unused(model_type, key, 0.0, torch)
                dropped = _unused(model_type, key, HIGH, torch) - baseline
                entry.update(skips=bool(dropped), method="measured",
                             evidence=(f"{len(dropped)} parameters without a gradient at {key}={HIGH} "
                                       f"(e.g. {sorted(dropped)[0]})") if dropped
                             else f"every parameter got a gradient in {RUNS} passes at {key}={HIGH}")
            except Exception as exc:  # noqa: BLE001 - any failure falls back to reading the source
                scanned = _source_scan(model_type) if "layerdrop" in key else None
                why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"
                entry.update(skips=scanned, method="source-scan",
                             evidence=f"not measured ({why}); modeling source "
                                      + ("skips a layer on layerdrop in training" if scanned
                                         else "has no layer-skipping branch" if scanned is False
                                         else "not scanned (the scan knows layerdrop branches only)"))
            result.setdefault(model_type, []).append(entry)
            print(model_type, entry, file=sys.stderr, flush=True)
        _write(_document(result, transformers, torch))  # a long run can be resumed (--resume)
    return _document(result, transformers, torch)


def _previous() -> dict:
    try:
        with open(OUT, encoding="utf-8") as handle:
            return json.load(handle)["model_types"]
    except (OSError, ValueError, KeyError):
        return {}


def _document(result: dict, transformers, torch) -> dict:
    return {"generator": "python -m auditor.generate.layer_skipping",
            "versions": {"transformers": transformers.__version__, "torch": torch.__version__},
            "method": __doc__.split("\n\n")[2].replace("\n", " "),
            "model_types": result}


def _write(doc: dict) -> None:
    with open(OUT, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1, sort_keys=True)
        handle.write("\n")


def main() -> None:
    _write(measure())


if __name__ == "__main__":
    main()
