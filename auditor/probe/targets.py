"""What the user pointed the probe at, read as plain data (no torch here).

PATH may be a config.json, a model directory holding one, or a recipe (YAML/JSON) whose model
section names a local model directory. Only local files are read: a hub name is refused, since
the probe never downloads. Dropout keys are located in the file text so findings point at them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from auditor import dropout_keys
from auditor.model import Span

_MODEL_KEYS = ("base_model", "model_name_or_path", "pretrained_model_name_or_path", "model_name",
               "model_path", "model_dir", "checkpoint_dir", "name_or_path", "path")


class TargetError(Exception):
    """A usage problem with PATH or --adapter (exit 2 with this message)."""


@dataclass(slots=True)
class ConfigKey:
    """One dropout-like rate as written in a file, with where it is."""

    file: str
    key_path: tuple
    value: float
    span: Span

    @property
    def dotted(self) -> str:
        return ".".join(str(k) for k in self.key_path)


@dataclass(slots=True)
class Target:
    config_path: str
    config: dict
    config_text: str
    adapter_path: str | None = None
    adapter: dict | None = None
    adapter_text: str = ""
    keys: list = field(default_factory=list)   # ConfigKey for every rate in config and adapter
    model_type_span: Span | None = None        # where a "cannot probe" finding points


def is_rate_key(name, value) -> bool:
    """A numeric dropout rate, by the same definition the static check uses."""
    return (isinstance(name, str) and dropout_keys.is_rate_key(name)
            and isinstance(value, (int, float)) and not isinstance(value, bool))


def _written_spans(path: str, text: str) -> dict:
    """key path -> exact span of the key, from the static reader, so probe findings point at the
    same place as `check` findings (the file is read as data; nothing is constructed)."""
    from auditor.sources import structured

    src = structured.read(path, text)
    if src is None:
        return {}
    spans = {f.key_path: f.span for f in src.fields.values() if getattr(f, "key_path", None)}
    spans.update({s.key_path: s.key_span for s in src.settings})
    return spans


def _span(spans: dict, key_path: tuple) -> Span:
    if key_path in spans:
        return spans[key_path]
    # A LoRA config synthesised from a recipe has flat keys; the recipe may nest them.
    return next((span for path, span in spans.items() if path and path[-1] == key_path[-1]), Span.file_start())


def rate_keys(data: dict, file: str, text: str, prefix: tuple = (), depth: int = 0, spans: dict | None = None) -> list:
    """Every dropout-like numeric key, including one level of sub-config dicts (text_config...)."""
    if spans is None:
        spans = _written_spans(file, text)
    out = []
    for name, value in data.items():
        if isinstance(value, dict) and depth < 2:
            out.extend(rate_keys(value, file, text, prefix + (name,), depth + 1, spans))
        elif is_rate_key(name, value):
            out.append(ConfigKey(file, prefix + (name,), float(value), _span(spans, prefix + (name,))))
    return out


def _read(path: str) -> str:
    """Through the static path's bounded reader: regular files only, never blocking, size-capped."""
    from auditor.sources.text import FileProblem, read_text

    try:
        return read_text(path)
    except FileProblem as exc:
        raise TargetError(f"{path}: {exc}") from None


def _load_json(path: str) -> tuple:
    text = _read(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TargetError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise TargetError(f"{path}: expected a JSON object")
    return data, text


def _model_dir_from_recipe(path: str, data: dict) -> str:
    candidates = []

    def visit(node, depth):
        if not isinstance(node, dict) or depth > 2:
            return
        for k, v in node.items():
            if k in _MODEL_KEYS and isinstance(v, str):
                candidates.append(v)
            elif isinstance(v, dict) and k in ("model", "model_args", "checkpointer", "base_model"):
                visit(v, depth + 1)

    visit(data, 0)
    base = os.path.dirname(os.path.abspath(path))
    for cand in candidates:
        local = cand if os.path.isabs(cand) else os.path.join(base, cand)
        if os.path.isfile(os.path.join(local, "config.json")):
            return os.path.join(local, "config.json")
        if os.path.isfile(local) and local.endswith(".json"):
            return local
    if candidates:
        raise TargetError(f"{path}: the model section names {candidates[0]!r}, which is not a local model "
                          "directory with a config.json (the probe never downloads)")
    raise TargetError(f"{path}: no model section naming a local config.json")


def _adapter_from_recipe(data: dict) -> dict | None:
    """A LoRA config from recipe keys (axolotl `adapter: lora`, LLaMA-Factory `finetuning_type: lora`)."""
    kind = str(data.get("adapter") or data.get("finetuning_type") or "").lower()
    if kind not in ("lora", "qlora"):
        return None
    targets = data.get("lora_target_modules") or data.get("lora_target") or ["q_proj", "v_proj"]
    if isinstance(targets, str):
        targets = "all-linear" if targets == "all" else [t.strip() for t in targets.split(",")]
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM",
            "r": int(data.get("lora_r") or data.get("lora_rank") or 8),
            "lora_alpha": data.get("lora_alpha") or 16,
            "lora_dropout": data.get("lora_dropout") if data.get("lora_dropout") is not None else 0.0,
            "target_modules": targets}


def resolve_target(path: str, adapter: str | None = None) -> Target:
    if path.startswith(("http://", "https://", "hf://")):
        raise TargetError(f"{path}: the probe reads local files only")
    if os.path.isdir(path):
        cfg = os.path.join(path, "config.json")
        if not os.path.isfile(cfg):
            raise TargetError(f"{path}: no config.json in this directory")
        path = cfg
    if not os.path.exists(path):
        raise TargetError(f"{path}: no such file or directory")
    recipe_adapter = None
    recipe_path = None
    if path.endswith((".yaml", ".yml")) or (path.endswith(".json") and "model_type" not in _read(path)):
        text = _read(path)
        if path.endswith(".json"):
            data, _ = _load_json(path)
        else:
            from ruamel.yaml import YAML
            from ruamel.yaml.error import YAMLError

            try:
                data = YAML(typ="safe", pure=True).load(text)
            except (YAMLError, ValueError) as exc:
                raise TargetError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise TargetError(f"{path}: expected a mapping")
        recipe_path, recipe_text = path, text
        recipe_adapter = _adapter_from_recipe(data)
        path = _model_dir_from_recipe(path, data)
    config, text = _load_json(path)
    if "model_type" not in config:
        raise TargetError(f"{path}: no model_type; not a Transformers config.json")
    spans = _written_spans(path, text)
    target = Target(config_path=path, config=config, config_text=text,
                    model_type_span=spans.get(("model_type",)))
    target.keys.extend(rate_keys(config, path, text, spans=spans))
    if adapter:
        target.adapter, target.adapter_text = _load_json(adapter)
        target.adapter_path = adapter
        if "peft_type" not in target.adapter:
            raise TargetError(f"{adapter}: no peft_type; not a PEFT adapter_config.json")
    elif recipe_adapter is not None:
        target.adapter, target.adapter_text, target.adapter_path = recipe_adapter, recipe_text, recipe_path
    if target.adapter is not None:
        target.keys.extend(rate_keys(target.adapter, target.adapter_path, target.adapter_text))
    return target
