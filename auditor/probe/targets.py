"""What the user pointed the probe at, read as plain data (no torch here).

PATH may be a config.json, a model directory holding one, a recipe (YAML/JSON) whose model
section names a local model directory or a hub id, or a script the setup graph links to them
(`from_pretrained("./dir")`, `save_pretrained("out")`, a launched recipe). A recipe's own LoRA
keys are the adapter it trains; only a recipe without them takes the one its `output_dir` holds. Only local files are read, since the probe
never downloads: a hub id is resolved by the static path's model identity (auditor/setup), from
the local HF cache when it holds the config, else from the model type's Transformers defaults
plus the recipe's model-config overrides (`config_origin` says which). Dropout keys are located
in the file text so findings point at them.

Imports inside functions (`core.model`, `ruamel.yaml`, `ruamel.yaml.error`, `run.engine`,
`setup.identity`, `setup.link`, ...) are deferred for start-up time: a run that never takes that
path never pays for them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from auditor.core.model import Span
from auditor.knowledge import dropout_keys

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
    config_origin: str = ""   # where the config came from, when it is not a config.json the user named
    config_keys: int = -1     # how many of `keys` belong to the config when config and adapter share a file

    def which(self, index: int, key: ConfigKey) -> str:
        """"config" or "adapter": what a key configures (by file, or by position when a recipe
        holds both the model-config overrides and the LoRA settings)."""
        if self.config_keys >= 0:
            return "config" if index < self.config_keys else "adapter"
        return "adapter" if self.adapter_path and key.file == self.adapter_path and key.file != self.config_path \
            else "config"
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


# Transformers writes the floats JSON cannot hold as tagged objects (configuration_utils.py,
# `_encode_special_floats`: Mamba-2's `time_step_limit` = [0.0, {"__float__": "Infinity"}]) and
# turns them back into floats on loading (`_decode_special_floats`, run by `from_json_file` and
# `from_pretrained`); Python's json already reads the bare NaN / Infinity it may also meet.
FLOAT_TAG = "__float__"
FLOAT_TAGS = {"Infinity": float("inf"), "-Infinity": float("-inf"), "NaN": float("nan")}


def decode_special_floats(value):
    """A config as `PretrainedConfig.from_json_file` reads it: every object that is exactly
    {"__float__": <known tag>} becomes that float; any other object, tag or value is kept."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(FLOAT_TAG), str) and value[FLOAT_TAG] in FLOAT_TAGS:
            return FLOAT_TAGS[value[FLOAT_TAG]]
        return {k: decode_special_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_special_floats(v) for v in value]
    return value


def _load_json(path: str, config: bool = True) -> tuple:
    """A JSON object and its text; a model config (`config`) is decoded as Transformers decodes
    it. An adapter config is not: PEFT reads adapter_config.json with plain `json.load`."""
    text = _read(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TargetError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise TargetError(f"{path}: expected a JSON object")
    return (decode_special_floats(data) if config else data), text


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
        identity = _identity(candidates[0], path)
        if identity is not None:
            return identity
        raise TargetError(f"{path}: the model section names {candidates[0]!r}, which is not a local model "
                          "directory with a config.json (the probe never downloads)")
    raise TargetError(f"{path}: no model section naming a local config.json")


# Recipe keys whose mapping is applied to the model's config (axolotl).
_CONFIG_OVERRIDES = ("overrides_of_model_config", "model_config")


def _identity(ref: str, path: str):
    """The model a hub id names, without downloading: its cached config.json path, or the
    ModelIdentity (type known, no config) to build from the type's defaults. None if unknown."""
    from auditor.setup import identity as model_identity

    ident = model_identity.resolve(ref, path, Span.file_start(), {})
    if ident.config is not None:
        return ident
    return ident if ident.model_type else None


def _from_identity(ident, recipe_path: str, recipe_text: str, data: dict) -> Target:
    """A config for the probe from a resolved hub id: the cached config.json when there is one,
    else {model_type} (the type's defaults) plus the recipe's model-config overrides."""
    if ident.config is not None:
        config, text = _load_json(ident.config.path)
        target = Target(config_path=ident.config.path, config=config, config_text=text,
                        config_origin=f"{ident.ref}: config.json from the local Hugging Face cache "
                                      f"({ident.config.path}); nothing downloaded")
        target.keys.extend(rate_keys(config, ident.config.path, text))
        return target
    config = {"model_type": ident.model_type}
    head = list(ident.architectures) or _generation_head(ident.model_type)
    if head:
        config["architectures"] = head
    spans = _written_spans(recipe_path, recipe_text) if any(isinstance(data.get(k), dict)
                                                             for k in _CONFIG_OVERRIDES) else {}
    target = Target(config_path=recipe_path, config=config, config_text=recipe_text,
                    config_origin=f"{ident.ref}: a {ident.model_type} ({ident.source.replace('-', ' ')}) built from "
                                  f"Transformers' defaults for {ident.model_type} plus the recipe's model-config "
                                  "overrides; nothing downloaded")
    for section in _CONFIG_OVERRIDES:
        overrides = data.get(section)
        if isinstance(overrides, dict):
            for name, value in overrides.items():
                if is_rate_key(name, value):
                    config[name] = value
                    target.keys.append(ConfigKey(recipe_path, (name,), float(value), _span(spans, (section, name))))
    target.config_keys = len(target.keys)
    return target


def _generation_head(model_type: str) -> list:
    """The type's one causal-LM (else conditional-generation) class, which recipes fine-tune."""
    from auditor.setup import names

    classes = names.class_table()
    for suffix in ("ForCausalLM", "ForConditionalGeneration"):
        found = sorted(c for c, t in classes.items() if t == model_type and c.endswith(suffix))
        if len(found) == 1:
            return found
    return []


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


def _links(path: str) -> dict:
    """kind -> the first link of that kind from the file at path whose target exists: the setup
    graph's own edges (auditor/setup/links.py), followed within the same root as `check`."""
    from auditor.run.engine import Engine, Options
    from auditor.setup import links
    from auditor.setup.link import link_root

    root = link_root(None, [path])
    src = Engine(Options(root=root)).load(path)
    if src is None and path.endswith(links.RECIPE_SUFFIXES):
        from auditor.core.model import Source

        # a recipe with no dropout key is no Source of the static path, yet its output_dir is a link
        src = Source(path=path, kind="recipe", dialect="generic", text=_read(path))
    if src is None or src.kind == "unreadable":
        return {}
    found = {}
    for link in links.of_source(src, root):
        if link.exists and link.kind not in found:
            found[link.kind] = link
    return found


def _named(link) -> str:
    return f"{link.target}, named by {link.path}:{link.span.line} ({link.via})"


def _through_links(path: str, adapter: str | None) -> Target:
    """A script or launch script resolves to the files its links reach: a launched recipe or
    script, else the config.json of a `from_pretrained("./dir")` (or the recipe an
    HfArgumentParser reads), with the adapter a `save_pretrained("dir")` wrote there."""
    from auditor.setup import links as L

    found = _links(path)
    saved = found.get(L.SAVED_ADAPTER)
    if adapter is None and saved is not None:
        adapter = saved.target
    model = found.get(L.MODEL_PATH)
    through = found.get(L.LAUNCH_RECIPE) or found.get(L.LAUNCH_SCRIPT) or (found.get(L.HFARGS_FILE) if model is None else None)
    if through is not None:  # one more level at most: a recipe links no script
        target = resolve_target(through.target, adapter)
        target.config_origin = "; ".join(filter(None, [target.config_origin, f"through {_named(through)}"]))
        return target
    if model is None:
        target = _script_hub_id(path, adapter)
        if target is not None:
            return target
        raise TargetError(f"{path}: links to no local config.json (a from_pretrained of a local directory, a "
                          "launched recipe or script) and names no model the local Hugging Face cache or the "
                          "name table knows (the probe never downloads); paths built at run time are not followed")
    config, text = _load_json(model.target)
    if "model_type" not in config:
        raise TargetError(f"{model.target}: no model_type; not a Transformers config.json")
    target = Target(config_path=model.target, config=config, config_text=text, config_origin=_named(model))
    target.keys.extend(rate_keys(config, model.target, text))
    if saved is not None and adapter == saved.target:
        target.config_origin += f"; adapter: {_named(saved)}"
    return _with_adapter(target, adapter, None, None, None)


def _script_hub_id(path: str, adapter: str | None):
    """A script that loads its model by hub id (`from_pretrained("meta-llama/Llama-3.2-1B")`)
    is probed as a recipe naming that id is: the cached config.json, else the type's defaults.
    The reference is the one the static path reads (the first model load, `base_model`)."""
    from auditor.run.engine import Engine, Options
    from auditor.setup.link import link_root

    src = Engine(Options(root=link_root(None, [path]))).load(path)
    ref = src.get("base_model") if src is not None and src.kind != "unreadable" else None
    if not isinstance(ref, str) or not ref.strip():
        return None
    ident = _identity(ref, path)
    if ident is None:
        return None
    target = _from_identity(ident, path, src.text, {})
    if ident.config is None:
        target.config_origin = (f"{ident.ref}: a {ident.model_type} ({ident.source.replace('-', ' ')}) built from "
                                f"Transformers' defaults for {ident.model_type}, the model {path} loads; "
                                "nothing downloaded")
    else:
        target.config_origin += f"; the model {path} loads"
    return _with_adapter(target, adapter, None, None, None)


def resolve_target(path: str, adapter: str | None = None) -> Target:
    if path.startswith(("http://", "https://", "hf://")):
        raise TargetError(f"{path}: the probe reads local files only")
    if path.endswith((".py", ".sh")) and os.path.isfile(path):
        return _through_links(path, adapter)
    if os.path.isdir(path):
        cfg = os.path.join(path, "config.json")
        if not os.path.isfile(cfg):
            raise TargetError(f"{path}: no config.json in this directory")
        beside = os.path.join(path, "adapter_config.json")
        if adapter is None and os.path.isfile(beside):
            adapter = beside  # one setup: the directory's adapter is probed with its config
        path = cfg
    if not os.path.exists(path):
        raise TargetError(f"{path}: no such file or directory")
    recipe_adapter = None
    recipe_path = recipe_text = None
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
        if adapter is None and recipe_adapter is None:
            from auditor.setup import links as L

            saved = _links(path).get(L.SAVED_ADAPTER)  # output_dir: the adapter this recipe trained
            adapter = saved.target if saved is not None else None
        found = _model_dir_from_recipe(path, data)
        if isinstance(found, str):
            path = found
        else:
            target = _from_identity(found, recipe_path, recipe_text, data)
            return _with_adapter(target, adapter, recipe_adapter, recipe_path, recipe_text)
    config, text = _load_json(path)
    if "model_type" not in config:
        raise TargetError(f"{path}: no model_type; not a Transformers config.json")
    spans = _written_spans(path, text)
    target = Target(config_path=path, config=config, config_text=text,
                    model_type_span=spans.get(("model_type",)))
    target.keys.extend(rate_keys(config, path, text, spans=spans))
    return _with_adapter(target, adapter, recipe_adapter, recipe_path, recipe_text)


def _with_adapter(target: Target, adapter, recipe_adapter, recipe_path, recipe_text) -> Target:
    if adapter:
        target.adapter, target.adapter_text = _load_json(adapter, config=False)
        target.adapter_path = adapter
        if "peft_type" not in target.adapter:
            raise TargetError(f"{adapter}: no peft_type; not a PEFT adapter_config.json")
    elif recipe_adapter is not None:
        target.adapter, target.adapter_text, target.adapter_path = recipe_adapter, recipe_text, recipe_path
    if target.adapter is not None:
        target.keys.extend(rate_keys(target.adapter, target.adapter_path, target.adapter_text))
    return target
