"""Generate the shipped knowledge files from the installed Transformers and PEFT.

    python -m auditor.generate.architectures            # write data/architectures.json, data/peft.json
    python -m auditor.generate.architectures --check    # regenerate in memory, exit 1 on drift
    python -m auditor.generate.architectures --check --sample 40   # quick drift check (what the test runs)

Why measurement and not a source scan: a config key being *declared* says nothing about whether
a model reads it (phi3.embd_pdrop, falcon attention_dropout under rotary), and the modeling code
reads keys in too many spellings (`config.x`, `getattr(config, "x", ...)`, copied into sub-layers)
for a regex to be trusted. So every model class is built with a distinct sentinel value in every
dropout-like key, parameters on the meta device, and we watch where the sentinels end up:

1. construction: a module attribute (nn.Dropout.p, `self.attention_dropout`, DropPath.drop_prob,
   layerdrop floats, MultiheadAttention.dropout) equal to a sentinel;
2. a train-mode forward on meta tensors: which sentinel-valued attributes of modules or configs
   are *accessed*. A value stored at construction but never touched in the default forward (a
   Dropout only used on the alibi branch) is a no-op for the default configuration.

When the forward cannot run (the input is not a plain tensor we can fake), construction evidence
alone counts as read. When no class of a model type can be built, the modeling sources are
scanned for the key name; when there are no sources either, the key is "unknown".

Heavy imports (torch, transformers, peft) happen inside functions: importing this module must
stay as cheap as the loaders, because the static path may import the package that holds it.

Imports inside functions (`importlib`, `logging`, `multiprocessing`, `peft`, `peft.mapping`,
`probe.batch`, ...) are deferred for start-up time: a run that never takes that path never pays
for them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

from auditor.knowledge import dropout_keys

DATA_DIR = Path(__file__).resolve().parent.parent / "knowledge" / "data"
ARCH_FILE = DATA_DIR / "architectures.json"
PEFT_FILE = DATA_DIR / "peft.json"
SCHEMA = 1

# A field is dropout-like when its name matches this and it can hold a rate.
DROPOUT_NAME = re.compile(r"drop|keep_prob")

# Names that match DROPOUT_NAME but are switches, not rates: the static path's list (one place:
# auditor.knowledge.dropout_keys.NOT_RATES, e.g. ESM's token_dropout, NeMo's bias_dropout_add_fusion, PEFT's
# rank_dropout_scale). Most are caught by their declared type (bool only) as well; the list keeps
# the intent explicit and survives a type annotation being widened.
NOT_RATES = dropout_keys.NOT_RATES

# Keys set on every config although the class does not declare them: heads read some of these
# with getattr(config, key, fallback), which is how read_undeclared is found.
UNDECLARED_PROBES = (
    "attention_dropout", "attention_probs_dropout_prob", "attn_pdrop", "activation_dropout",
    "classifier_dropout", "classifier_dropout_prob", "cls_dropout", "drop_path_rate", "dropout",
    "dropout_rate", "embd_pdrop", "final_dropout", "hidden_dropout", "hidden_dropout_prob",
    "layerdrop", "pooler_dropout", "qa_dropout", "resid_pdrop", "seq_classif_dropout",
    "summary_first_dropout", "summary_last_dropout",
)

# Hand-written explanations appended to measured notes where the measurement cannot say *why*.
# They never change the measured verdict; build prints a warning when the verdict disagrees.
CURATED_NOTES = {
    ("falcon", "attention_dropout"): ("unread", "only used with alibi=True; rotary (default) ignores it"),
    ("phi3", "embd_pdrop"): ("unread", "declared for compatibility; Phi-3 has no embedding dropout"),
    ("mpt", "emb_pdrop"): ("unread", "MPT uses attn_config.attn_pdrop only"),
    ("mpt", "resid_pdrop"): ("unread", "MPT uses attn_config.attn_pdrop only"),
}

# Layer counts shrunk so that building every class stays fast; 2, not 1, so stochastic depth
# schedules (linspace(0, rate, n)) still reach the configured rate on the last layer.
SHRINK = {
    name: 2 for name in (
        "num_hidden_layers", "num_layers", "n_layer", "n_layers", "encoder_layers", "decoder_layers",
        "num_encoder_layers", "num_decoder_layers", "text_layers", "vision_layers",
    )
}

# Defaults that need optional packages we do not measure with (timm): the dropout keys of these
# models live outside the backbone, so the native backbone measures them just as well.
BUILD_OVERRIDES = {"use_timm_backbone": False}

# Some default configs cannot build their own model (head_dim=None, vocab_size=None,
# prediction_length required). A second attempt fills such None defaults with ordinary values;
# none of them is a dropout key, so what is measured is unchanged.
NONE_FIXUPS = {
    "vocab_size": lambda c: 1000,
    "head_dim": lambda c: c.get("hidden_size", 512) // max(1, c.get("num_attention_heads") or 8),
    "num_key_value_heads": lambda c: c.get("num_attention_heads") or 8,
    "prediction_length": lambda c: 24,
    "vocab_map": lambda c: {},
}

CLASS_TIMEOUT_S = 5     # the brief's limit: a class slower than this to build is skipped


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Declared fields (no model building)
# --------------------------------------------------------------------------------------------

def type_names(annotation: Any) -> tuple[str, ...]:
    """Flatten an annotation to sorted type names, so `int | float | None` and
    Optional[Union[float, int]] compare equal across Python and library versions."""
    import types
    import typing

    if isinstance(annotation, str):
        parts = [p.strip() for p in annotation.split("|")]
        return tuple(sorted({"NoneType" if p == "None" else p for p in parts}))
    origin = typing.get_origin(annotation)
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        names: set[str] = set()
        for arg in typing.get_args(annotation):
            names.update(type_names(arg))
        return tuple(sorted(names))
    if annotation is None or annotation is type(None):
        return ("NoneType",)
    if origin is not None:
        return (getattr(origin, "__name__", str(origin)),)
    return (getattr(annotation, "__name__", str(annotation)),)


def field_default(field: dataclasses.Field) -> Any:
    """The default a user gets; Transformers wraps some defaults in validators (`interval`)."""
    if field.default is not dataclasses.MISSING:
        return jsonable(field.default)
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        try:
            return jsonable(field.default_factory())  # type: ignore[misc]
        except Exception:
            return None
    return None


def jsonable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return repr(value)


def is_dropout_rate(name: str, types: tuple[str, ...], default: Any) -> bool:
    """A rate must be able to hold a number: bool-only fields and known switches are flags."""
    if not DROPOUT_NAME.search(name) or name in NOT_RATES:
        return False
    if isinstance(default, list):  # per-stage rates (CvT drop_path_rate: [0.0, 0.0, 0.1])
        return bool(default) and all(is_number(v) for v in default)
    numeric = {"float", "int"} & set(types)
    if not numeric and "Any" not in types:
        return False
    return not isinstance(default, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def declared_keys(config_cls) -> dict[str, dict]:
    """Dropout-like dataclass fields of a config class: name -> {default, types}."""
    keys = {}
    for field in dataclasses.fields(config_cls):
        types = type_names(field.type)
        default = field_default(field)
        if is_dropout_rate(field.name, types, default):
            keys[field.name] = {"default": default, "types": list(types)}
    return keys


def dropout_aliases(config_cls) -> dict[str, str]:
    amap = getattr(config_cls, "attribute_map", {}) or {}
    return {
        alias: target for alias, target in sorted(amap.items())
        if DROPOUT_NAME.search(alias) or DROPOUT_NAME.search(target)
    }


def sub_config_specs(config_cls) -> dict[str, Any]:
    return dict(getattr(config_cls, "sub_configs_defaults", {}) or {})


def sub_config_class(spec):
    """The class a sub-config attribute is built from (AutoConfig specs resolve by model_type)."""
    from transformers import CONFIG_MAPPING, PreTrainedConfig

    cls = spec.config_class
    if isinstance(cls, type) and issubclass(cls, PreTrainedConfig):
        return cls
    if spec.model_type in CONFIG_MAPPING:
        return CONFIG_MAPPING[spec.model_type]
    return None


def declared_table() -> tuple[dict[str, dict], dict[str, dict]]:
    """Static description of every model type plus the nested configs that have no model type of
    their own (bark's semantic_config, esmfold2's heads): those are keyed `parent.attribute`."""
    from transformers import CONFIG_MAPPING

    mapped = set(CONFIG_MAPPING.keys())
    types: dict[str, dict] = {}
    nested: dict[str, dict] = {}

    def describe(cls, name: str) -> dict:
        subs = {}
        for attr, spec in sorted(sub_config_specs(cls).items()):
            sub_cls = sub_config_class(spec)
            sub_type = spec.model_type or ""
            if sub_type not in mapped:
                sub_type = f"{name}.{attr}"
                if sub_cls is not None and sub_type not in nested:
                    nested[sub_type] = describe(sub_cls, sub_type)
            subs[attr] = sub_type
        return {
            "config_class": cls.__name__,
            "declared": declared_keys(cls),
            "aliases": dropout_aliases(cls),
            "sub_configs": subs,
        }

    for model_type in sorted(mapped):
        types[model_type] = describe(CONFIG_MAPPING[model_type], model_type)
    return types, nested


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------

class Sentinels:
    """Distinct probabilities, one per (config path, key). Spaced 7e-4 apart and matched after
    rounding to 6 digits, so float32 round trips (linspace, tensors) still map back to their key."""

    def __init__(self) -> None:
        self.by_value: dict[float, str] = {}

    def new(self, label: str) -> float:
        value = round(0.0101 + 0.0007 * len(self.by_value), 6)
        self.by_value[value] = label
        return value

    def match(self, value: Any) -> str | None:
        if type(value) is not float or not 0.01 < value < 0.5:
            return None
        return self.by_value.get(round(value, 6))


class ClassTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    """Limit on CPU time, not wall time: a wall-clock limit skips different classes on a busy
    machine than on an idle one, and the shipped data must not depend on the machine's load."""
    def fire(signum, frame):
        raise ClassTimeout(f"over {seconds}s of CPU time")

    old = signal.signal(signal.SIGPROF, fire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


@contextlib.contextmanager
def parameters_on_meta():
    """Create parameters on the meta device but keep buffers and plain tensors on CPU: init code
    that calls .item() on linspace schedules keeps working, and no weight memory is allocated."""
    import torch

    original = torch.nn.Module.register_parameter

    def register(module, name, param):
        if param is not None and param.device.type != "meta":
            param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    torch.nn.Module.register_parameter = register
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = original


@contextlib.contextmanager
def record_reads(sentinels: Sentinels, seen: set[str]):
    """Record every access to a sentinel-valued attribute of a module or a config while active."""
    import torch
    from transformers import PreTrainedConfig

    module_get = torch.nn.Module.__getattribute__
    config_get = PreTrainedConfig.__getattribute__

    def make(original):
        def getattribute(obj, name):
            value = original(obj, name)
            if type(value) is float:
                label = sentinels.match(value)
                if label is not None:
                    seen.add(label)
            return value
        return getattribute

    torch.nn.Module.__getattribute__ = make(module_get)
    PreTrainedConfig.__getattribute__ = make(config_get)
    try:
        yield
    finally:
        torch.nn.Module.__getattribute__ = module_get
        PreTrainedConfig.__getattribute__ = config_get


def stored_sentinels(model, sentinels: Sentinels) -> set[str]:
    """Sentinels held by modules after construction (floats, lists of floats, Dropout.p)."""
    found = set()
    for module in model.modules():
        for value in vars(module).values():
            values = value if isinstance(value, (list, tuple)) else (value,)
            for item in values:
                label = sentinels.match(item)
                if label is not None:
                    found.add(label)
    return found


def fake_inputs(model, config):
    """Meta tensors for the model's main input; None when it is not a plain tensor we can fake."""
    import torch

    name = getattr(model, "main_input_name", "input_ids")
    meta = {"device": "meta"}
    if name == "input_ids":
        inputs = {"input_ids": torch.zeros(1, 8, dtype=torch.long, **meta)}
    elif name == "pixel_values":
        size = getattr(config, "image_size", 224)
        if isinstance(size, (list, tuple)):
            height, width = size[0], size[-1]
        elif isinstance(size, dict):
            height, width = size.get("height", 224), size.get("width", 224)
        else:
            height = width = size
        channels = getattr(config, "num_channels", 3)
        inputs = {"pixel_values": torch.zeros(1, channels, height, width, **meta)}
    elif name == "input_values":
        inputs = {"input_values": torch.zeros(1, 16000, **meta)}
    else:
        return None
    if getattr(config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = torch.zeros(1, 8, dtype=torch.long, **meta)
    return inputs


def build_config(config_cls, sentinels: Sentinels, undeclared: tuple[str, ...], shrink: bool,
                 path: str = "", fix: bool = False) -> tuple[Any, dict[str, float]]:
    """A config with a sentinel in every dropout-like key, recursing into sub-configs.

    Float-accepting keys go through the constructor (what loading config.json does, so derived
    values such as FastSpeech2Conformer's copies are honoured); int-only keys are forced after
    construction, bypassing validation, because no int can be told apart from a real setting.
    """
    from transformers import PreTrainedConfig

    declared = declared_keys(config_cls)
    field_names = {f.name for f in dataclasses.fields(config_cls)}
    kwargs: dict[str, Any] = {}
    forced: dict[str, float] = {}
    assigned: dict[str, float] = {}
    if shrink:
        kwargs.update({k: v for k, v in SHRINK.items() if k in field_names})
    if not path:  # read from **kwargs by __post_init__, so not a declared field
        kwargs.update(BUILD_OVERRIDES)
    if fix:
        defaults = {f.name: field_default(f) for f in dataclasses.fields(config_cls)}
        for key, make in NONE_FIXUPS.items():
            if key in defaults and defaults[key] is None:
                kwargs[key] = make(defaults)
    for key, info in sorted(declared.items()):
        value = sentinels.new(path + key)
        assigned[path + key] = value
        if isinstance(info["default"], list):
            kwargs[key] = [value] * len(info["default"])
        else:
            (kwargs if "float" in info["types"] or "Any" in info["types"] else forced)[key] = value
    for key in undeclared:
        if key not in field_names and key not in getattr(config_cls, "attribute_map", {}):
            value = sentinels.new(path + key)
            assigned[path + key] = value
            kwargs[key] = value
    for attr, spec in sorted(sub_config_specs(config_cls).items()):
        sub_cls = sub_config_class(spec)
        if sub_cls is None or attr == "backbone_config":
            continue
        sub, sub_assigned = build_config(sub_cls, sentinels, (), shrink, f"{path}{attr}.", fix)
        kwargs[attr] = sub
        assigned.update(sub_assigned)
    config = config_cls(**kwargs)
    for key, value in forced.items():
        object.__setattr__(config, key, value)
    assert isinstance(config, PreTrainedConfig)
    return config, assigned


def model_classes(model_type: str) -> list:
    """Every auto-mapped class for a model type (base model and all heads), deduplicated."""
    import transformers
    from transformers.models.auto import modeling_auto

    names: list[str] = []
    for attr in sorted(dir(modeling_auto)):
        if not attr.startswith("MODEL_") or not attr.endswith("_MAPPING_NAMES"):
            continue
        mapping = getattr(modeling_auto, attr)
        if not isinstance(mapping, dict):
            continue
        value = mapping.get(model_type)
        for name in (value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(name, str) and name not in names:
                names.append(name)
    classes = {}
    for name in sorted(names):
        try:
            classes[name] = getattr(transformers, name)
        except Exception:
            continue
    for cls in module_classes(model_type):
        classes.setdefault(cls.__name__, cls)
    return [classes[name] for name in sorted(classes)]


def module_classes(model_type: str) -> list:
    """Public model classes of the type's modeling module that no auto mapping lists (GPT-2's
    double-heads model is where summary_*_dropout is read)."""
    import importlib

    from transformers import CONFIG_MAPPING, PreTrainedModel
    from transformers.models.auto.configuration_auto import model_type_to_module_name

    module_name = model_type_to_module_name(model_type)
    try:
        module = importlib.import_module(f"transformers.models.{module_name}.modeling_{module_name}")
    except Exception:
        return []
    config_cls = CONFIG_MAPPING[model_type]
    out = []
    for name in getattr(module, "__all__", []):
        cls = getattr(module, name, None)
        if (isinstance(cls, type) and issubclass(cls, PreTrainedModel)
                and not name.endswith("PreTrainedModel")
                and getattr(cls, "config_class", None) is config_cls):
            out.append(cls)
    return out


def measure_class(model_cls, config_cls, undeclared: tuple[str, ...]) -> dict:
    """Build one class with sentinels; return what it stored and what a forward touched."""
    import torch

    error: Exception | None = None
    for shrink, fix in ((True, False), (True, True), (False, False), (False, True)):
        sentinels = Sentinels()
        try:
            config, assigned = build_config(config_cls, sentinels, undeclared, shrink, fix=fix)
            with time_limit(CLASS_TIMEOUT_S), parameters_on_meta():
                model = model_cls(config)
            break
        except ClassTimeout as exc:
            return {"built": False, "error": f"timeout: construction {exc}", "timeout": True}
        except ImportError as exc:  # a missing optional package: no other attempt can help
            return {"built": False, "error": f"ImportError: {exc}"[:200]}
        except Exception as exc:
            error = exc
    else:
        return {"built": False, "error": f"{type(error).__name__}: {error}"[:200]}
    stored = stored_sentinels(model, sentinels)
    accessed: set[str] = set()
    forward_ok = False
    inputs = fake_inputs(model, config)
    if inputs is not None:
        try:
            model.to("meta")
            model.train()
            with time_limit(CLASS_TIMEOUT_S), record_reads(sentinels, accessed), torch.no_grad():
                model(**inputs)
            forward_ok = True
        except Exception:
            accessed.clear()
    return {"built": True, "stored": stored, "accessed": accessed, "forward_ok": forward_ok,
            "assigned": set(assigned)}


def verdicts(results: dict[str, dict]) -> dict[str, tuple[str, str]]:
    """Combine per-class evidence into label -> (read, note).

    A class proves a read when its forward accessed the value, or, if its forward could not run,
    when construction stored it. Stored but not accessed in a successful forward is a no-op.
    """
    return {label: (read, note) for label, (read, note, _) in verdicts_with_readers(results).items()}


def verdicts_with_readers(results: dict[str, dict]) -> dict[str, tuple[str, str, list[str]]]:
    """label -> (read, note, read_by): `read_by` is every class whose run read the label, in full
    (the note truncates it), so consumers can ask whether a given head reads a key."""
    readers: dict[str, list[str]] = {}
    stored_only: dict[str, list[str]] = {}
    for cls_name, res in sorted(results.items()):
        if not res.get("built"):
            continue
        for label in res["assigned"]:
            if label in res["accessed"] or (label in res["stored"] and not res["forward_ok"]):
                readers.setdefault(label, []).append(cls_name)
            elif label in res["stored"]:
                stored_only.setdefault(label, []).append(cls_name)
    out = {}
    for label in set(readers) | set(stored_only):
        if label in readers:
            out[label] = ("read", "read by " + short_list(readers[label]), sorted(readers[label]))
        else:
            out[label] = ("unread", "built into " + short_list(stored_only[label])
                          + " but not used in a default train-mode forward", [])
    return out


EXPERIMENT_RATE = 0.9
EXPERIMENT_FORWARDS = 4
EXPERIMENT_TIMEOUT_S = 60   # CPU seconds for both builds and all forwards of one key


def train_mode_experiment(model_type: str, label: str, class_names: list[str]) -> tuple[str, str]:
    """The evidence an "unread" verdict needs (the probe's DRP804 experiment): build a small real
    model with the key at 0 and at a high rate from the same seed, run train-mode forwards with
    the same random streams, and compare outputs bitwise and dropout sites. Identical -> "unread";
    any difference -> "read"; a class that cannot be built or run -> "unknown", which no warning
    uses. The model comes from the probe's structure-preserving builder, so a hybrid keeps its
    attention layer and a key read only there is seen (jamba attention_dropout)."""
    import torch

    from auditor.probe.batch import first_tensor, hf_batch
    from auditor.probe.build import build_hf
    from auditor.probe.keymap import site_rates

    path = tuple(label.split("."))
    tried, problems, idle_parts = [], [], []
    for cls_name in class_names[:2]:
        config = {"model_type": model_type, "architectures": [cls_name]}
        choice: dict = {}
        try:
            with time_limit(EXPERIMENT_TIMEOUT_S):
                runs = []
                for value in (0.0, EXPERIMENT_RATE):
                    model, arch = build_hf(config, None, full_size=False, seed=0, device="cpu",
                                           dtype=torch.float32, overrides={("config", path): value}, choice=choice)
                    batch = hf_batch(model, arch, 0, "cpu")
                    with modules_run(model) as ran:
                        runs.append(site_rates(model, lambda m, b=batch: first_tensor(m(**b)).detach(), 0,
                                               EXPERIMENT_FORWARDS))
                idle = idle_holders(model, ran)
        except Exception as exc:  # noqa: BLE001  (ClassTimeout included) no evidence either way
            problems.append(f"{cls_name}: {type(exc).__name__}")
            continue
        (rates0, outs0), (rates1, outs1) = runs
        sites_differ = {k for k in set(rates0) | set(rates1) if rates0.get(k, 0.0) != rates1.get(k, 0.0)}
        outputs_differ = any(a.shape != b.shape or not torch.equal(a, b) for a, b in zip(outs0, outs1))
        if sites_differ or outputs_differ:
            what = "dropout sites" if sites_differ else "the train-mode output"
            return "read", f"read by {cls_name}: {what} change with the key at 0 vs {EXPERIMENT_RATE}"
        if idle:
            idle_parts.append(f"{cls_name}: {short_list(idle)}")
            continue
        tried.append(cls_name)
    if tried:
        return "unread", (f"train-mode experiment: {', '.join(tried)} give bitwise-identical outputs and the "
                          f"same sites with the key at 0 and {EXPERIMENT_RATE}")
    if idle_parts:
        return "unknown", ("no evidence: the modules that hold it did not run on the train-mode experiment's "
                           "inputs (" + "; ".join(idle_parts + problems) + ")")
    return "unknown", "could not build and run a small model to test it (" + "; ".join(problems) + ")"


@contextlib.contextmanager
def modules_run(model):
    """The names of the modules that ran while the block ran."""
    ran: set = set()
    handles = [m.register_forward_pre_hook(lambda mod, args, n=name: ran.add(n)) for name, m in model.named_modules()]
    try:
        yield ran
    finally:
        for handle in handles:
            handle.remove()


def idle_holders(model, ran: set) -> list[str]:
    """Where the key's rate sits (a Dropout at the experiment's rate, or a module attribute equal to
    it) in a part of the model that never ran on the experiment's inputs: Qwen2.5-Omni's audio
    tower gets no audio from the probe's batch, so identical outputs there say nothing about the
    key. A Dropout that did not run inside a module that did (Falcon's attention dropout, used
    only with alibi) is still evidence: that module ran without it."""
    from torch import nn

    idle = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Dropout) and module.p == EXPERIMENT_RATE:
            owner = name.rpartition(".")[0]
        elif any(isinstance(v, float) and v == EXPERIMENT_RATE for v in vars(module).values()):
            owner = name
        else:
            continue
        if owner and owner not in ran:
            idle.append(owner)
    return idle


def short_list(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")


def source_scan(model_type: str, keys: list[str]) -> dict[str, tuple[str, str]] | None:
    """Fallback when nothing could be built: which keys the modeling sources mention at all."""
    import transformers

    folder = Path(transformers.__file__).parent / "models" / model_type.replace("-", "_")
    files = sorted(folder.glob("modeling_*.py")) if folder.is_dir() else []
    if not files:
        return None
    text = "\n".join(f.read_text(encoding="utf-8") for f in files)
    out = {}
    for key in keys:
        if re.search(rf"\bconfig\.{re.escape(key)}\b|[\"']{re.escape(key)}[\"']", text):
            out[key] = ("read", "source scan: mentioned in " + ", ".join(f.name for f in files))
        else:
            out[key] = ("unknown", "source scan: never mentioned in the modeling code, and nothing could be built to test it")
    return out


def undeclared_chains(model_type: str, config_cls, classes, first: dict[str, dict]) -> dict[str, str]:
    """For heads that read undeclared keys, find their fallback order by removing the winner and
    building again (llama token classification: classifier_dropout, else hidden_dropout, else 0.1)."""
    notes: dict[str, str] = {}
    field_names = {f.name for f in dataclasses.fields(config_cls)}
    amap = getattr(config_cls, "attribute_map", {}) or {}
    undeclared = [k for k in UNDECLARED_PROBES if k not in field_names and k not in amap]
    for cls in classes:
        res = first.get(cls.__name__, {})
        if not res.get("built"):
            continue
        order = []
        probes = list(undeclared)
        for _ in range(4):
            hits = sorted(k for k in probes if k in used_labels(res))
            if not hits:
                break
            order.append(" or ".join(hits))
            probes = [p for p in probes if p not in hits]
            res = measure_class(cls, config_cls, tuple(probes))
            if not res.get("built"):
                break
        for keys in order:
            for key in keys.split(" or "):
                if key in notes:
                    continue
                chain = ", else ".join(order)
                notes[key] = f"{cls.__name__}: {chain}, else a built-in default"
    return notes


def used_labels(res: dict) -> set[str]:
    if not res.get("built"):
        return set()
    stored_used = res["stored"] if not res["forward_ok"] else set()
    return res["accessed"] | stored_used


def measure_type(model_type: str) -> dict:
    """Everything measured about one model type; runs in a worker process."""
    import warnings

    warnings.filterwarnings("ignore")
    from transformers import CONFIG_MAPPING

    started = time.monotonic()
    config_cls = CONFIG_MAPPING[model_type]
    classes = model_classes(model_type)
    results: dict[str, dict] = {}
    for cls in classes:
        results[cls.__name__] = measure_class(cls, config_cls, UNDECLARED_PROBES)
    with_readers = verdicts_with_readers(results)
    built = [name for name, res in results.items() if res.get("built")]
    assigned = set().union(*(results[name]["assigned"] for name in built)) if built else set()
    for label in sorted(declared_labels(config_cls) & assigned):
        if label in with_readers and with_readers[label][0] == "read":
            continue
        storers = [n for n in built if label in results[n]["stored"]]
        order = storers + [n for n in preferred_classes(built) if n not in storers]
        read, note = train_mode_experiment(model_type, label, order)
        if label in with_readers and read == "unread":
            note = f"{with_readers[label][1]}; {note}"
        reader = note[len("read by "):].split(":")[0] if read == "read" else None
        with_readers[label] = (read, note, [reader] if reader else [])
    verdict = {label: (read, note) for label, (read, note, _) in with_readers.items()}
    readers = {label: by for label, (_, _, by) in with_readers.items() if by}
    chains = undeclared_chains(model_type, config_cls, classes, results)
    return {
        "model_type": model_type,
        "classes": sorted(results),
        "built": sorted(built),
        "errors": {n: r["error"] for n, r in sorted(results.items()) if not r.get("built")},
        "verdict": verdict,
        "readers": readers,
        "chains": chains,
        "assigned": sorted(assigned),
        "timeouts": sorted(n for n, r in results.items() if r.get("timeout")),
        "seconds": round(time.monotonic() - started, 2),
    }


def declared_labels(config_cls) -> set[str]:
    """Declared dropout keys of a config and its sub-configs, labelled as build_config does."""
    labels = set(declared_keys(config_cls))
    for attr, spec in sub_config_specs(config_cls).items():
        sub_cls = sub_config_class(spec)
        if sub_cls is not None and attr != "backbone_config":
            labels |= {f"{attr}.{key}" for key in declared_keys(sub_cls)}
    return labels


def preferred_classes(names: list[str]) -> list[str]:
    """The classes people train first (causal LM, conditional generation), then the base model."""
    def rank(name: str) -> int:
        for i, suffix in enumerate(("ForCausalLM", "ForConditionalGeneration", "Model")):
            if name.endswith(suffix):
                return i
        return 3
    return sorted(names, key=lambda n: (rank(n), n))


def _worker_init() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


def measure_all(model_types: list[str], jobs: int) -> dict[str, dict]:
    import multiprocessing as mp

    _worker_init()
    import torch  # noqa: F401  (imported before forking so workers share it)
    import transformers  # noqa: F401

    out: dict[str, dict] = {}
    started = time.monotonic()
    ctx = mp.get_context("fork")
    with ctx.Pool(jobs, initializer=_worker_init, maxtasksperchild=25) as pool:
        for i, res in enumerate(pool.imap_unordered(measure_type, model_types), 1):
            out[res["model_type"]] = res
            if i % 25 == 0 or i == len(model_types):
                log(f"  measured {i}/{len(model_types)} model types "
                    f"({time.monotonic() - started:.0f}s)")
    return out


# --------------------------------------------------------------------------------------------
# Assembling the architecture document
# --------------------------------------------------------------------------------------------

def arch_entry(model_type: str, static: dict, measured: dict | None, scan_keys) -> dict:
    """One model type's record as shipped; `method` says how the read verdicts were obtained."""
    keys = {}
    verdict: dict[str, tuple[str, str]] = {}
    method = "unknown"
    if measured and measured["built"]:
        method = "measured"
        verdict = measured["verdict"]
    else:
        scanned = scan_keys(model_type, sorted(static["declared"]))
        if scanned is not None:
            method, verdict = "source-scan", scanned
    assigned = set(measured["assigned"]) if method == "measured" else set()
    readers = measured.get("readers", {}) if method == "measured" else {}
    for key, info in sorted(static["declared"].items()):
        read, note = key_verdict(key, verdict, assigned, method)
        keys[key] = {"default": info["default"], "types": info["types"], "read": read, "note": note,
                     "read_by": readers.get(key, []) if read == "read" else []}
    read_undeclared = {}
    if measured and measured["built"]:
        for label, (read, note) in sorted(verdict.items()):
            if "." in label or label in static["declared"] or read != "read":
                continue
            read_undeclared[label] = measured["chains"].get(label, note)
    entry = {
        "config_class": static["config_class"],
        "keys": keys,
        "aliases": static["aliases"],
        "sub_configs": static["sub_configs"],
        "read_undeclared": read_undeclared,
        "is_composite": bool(static["sub_configs"]),
        "method": method,
    }
    if measured:
        entry["classes"] = {"built": len(measured["built"]), "total": len(measured["classes"])}
    return entry


def key_verdict(label: str, verdict: dict, assigned: set, method: str) -> tuple[str, str]:
    """A key's verdict; "unread" only ever comes from the train-mode experiment (in `verdict`)."""
    if label in verdict:
        return verdict[label]
    if method == "measured":
        return "unknown", "the sentinel could not be applied to this key"
    if method == "source-scan":
        return "unknown", "source scan found nothing"
    return "unknown", "no model class could be built and no modeling source found"


def via_parent(model_type: str, static: dict, measured: dict) -> dict | None:
    """Sub-config types often have no model class of their own (kosmos_2_text_model); their keys
    were measured inside a composite that embeds them, under the label `attribute.key`."""
    own = measured.get(model_type)
    if own is None or own["built"]:
        return own
    for parent in sorted(static):
        res = measured.get(parent)
        if not res or not res["built"]:
            continue
        for attr, sub_type in sorted(static[parent]["sub_configs"].items()):
            prefix = attr + "."
            if sub_type != model_type or not any(a.startswith(prefix) for a in res["assigned"]):
                continue
            verdict = {
                label[len(prefix):]: (read, f"{note} (measured inside {parent}.{attr})")
                for label, (read, note) in res["verdict"].items() if label.startswith(prefix)
            }
            readers = {label[len(prefix):]: by for label, by in res.get("readers", {}).items()
                       if label.startswith(prefix)}
            return dict(own, built=[f"{parent}.{attr}"], verdict=verdict, readers=readers, chains={},
                        assigned=[a[len(prefix):] for a in res["assigned"] if a.startswith(prefix)])
    return own


def nested_entry(name: str, static: dict, parent: dict | None) -> dict:
    """Nested configs are measured inside their parent: their labels carry the attribute path."""
    prefix = name.split(".", 1)[1] + "."
    built = bool(parent and parent["built"])
    verdict = parent["verdict"] if built else {}
    assigned = set(parent["assigned"]) if built else set()
    readers = parent.get("readers", {}) if built else {}
    keys = {}
    for key, info in sorted(static["declared"].items()):
        read, note = key_verdict(prefix + key, verdict, assigned, "measured" if built else "unknown")
        keys[key] = {"default": info["default"], "types": info["types"], "read": read, "note": note,
                     "read_by": readers.get(prefix + key, []) if read == "read" else []}
    return {
        "config_class": static["config_class"],
        "keys": keys,
        "aliases": static["aliases"],
        "sub_configs": static["sub_configs"],
        "read_undeclared": {},
        "is_composite": bool(static["sub_configs"]),
        "method": "measured" if built else "unknown",
    }


def apply_curated(entries: dict[str, dict]) -> None:
    for (model_type, key), (expected, note) in sorted(CURATED_NOTES.items()):
        info = entries.get(model_type, {}).get("keys", {}).get(key)
        if info is None:
            log(f"  warning: curated note for {model_type}.{key}: key not declared")
            continue
        if info["read"] != expected:
            log(f"  warning: {model_type}.{key} measured {info['read']}, curated note says {expected}")
        info["note"] = f"{info['note']}; {note}" if info["note"] else note


def sample_types(all_types: list[str], n: int) -> list[str]:
    """A deterministic spread across the alphabet plus the types the tests pin down."""
    pinned = ["bert", "falcon", "gpt2", "llama", "mpt", "phi3"]  # pinned by the tests above
    step = max(1, len(all_types) // max(1, n - len(pinned)))
    picked = set(all_types[::step][: n - len(pinned)]) | {t for t in pinned if t in all_types}
    return sorted(picked)


def build_architectures(jobs: int = 2, sample: int | None = None) -> dict:
    import transformers

    started = time.monotonic()
    static, nested_static = declared_table()
    all_types = sorted(static)
    to_measure = sample_types(all_types, sample) if sample else all_types
    parents = sorted({name.split(".", 1)[0] for name in nested_static})
    to_measure = sorted(set(to_measure) | (set(parents) if not sample else set()))
    log(f"transformers {transformers.__version__}: {len(all_types)} model types, "
        f"measuring {len(to_measure)} with {jobs} processes")
    measured = measure_all(to_measure, jobs)
    if sample:
        # Sub-config types without classes are measured inside the composites that embed them.
        orphans = {t for t, res in measured.items() if not res["built"]}
        parents = sorted({p for p, info in static.items() if p not in measured
                          and orphans & set(info["sub_configs"].values())})
        if parents:
            log(f"  measuring {len(parents)} composites that embed unbuildable sampled types")
            measured.update(measure_all(parents, jobs))
    for name in sorted(measured):
        if measured[name]["timeouts"]:
            log(f"  note: {name}: skipped slow classes {measured[name]['timeouts']}")
    entries = {
        t: arch_entry(t, static[t], via_parent(t, static, measured), source_scan)
        for t in all_types if t in measured
    }
    nested = {
        name: nested_entry(name, info, measured.get(name.split(".", 1)[0]))
        for name, info in sorted(nested_static.items()) if name.split(".", 1)[0] in measured
    }
    apply_curated(entries)
    log_counts(entries, time.monotonic() - started)
    return {
        "schema": SCHEMA,
        "generator": "python -m auditor.generate.architectures",
        "versions": library_versions(),
        "model_types": entries,
        "nested_configs": nested,
    }


def log_counts(entries: dict[str, dict], seconds: float) -> None:
    methods: dict[str, int] = {}
    for entry in entries.values():
        methods[entry["method"]] = methods.get(entry["method"], 0) + 1
    with_keys = sum(1 for e in entries.values() if e["keys"])
    composite = sum(1 for e in entries.values() if e["is_composite"])
    log(f"architectures: {len(entries)} types, {with_keys} with top-level dropout keys, "
        f"{composite} composite; " + ", ".join(f"{k}={v}" for k, v in sorted(methods.items()))
        + f"; {seconds:.0f}s")


def library_versions() -> dict[str, str]:
    import torch
    import transformers

    versions = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__}
    try:
        import peft

        versions["peft"] = peft.__version__
    except ImportError:
        pass
    return versions


# --------------------------------------------------------------------------------------------
# PEFT
# --------------------------------------------------------------------------------------------

def build_peft() -> dict:
    """Dropout-like fields of every PEFT config class, keyed by peft_type as written in
    adapter_config.json."""
    import peft
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    methods = {}
    for peft_type, config_cls in sorted(PEFT_TYPE_TO_CONFIG_MAPPING.items(), key=lambda kv: str(kv[0])):
        name = getattr(peft_type, "value", str(peft_type))
        fields = {}
        for field in dataclasses.fields(config_cls):
            types = type_names(field.type)
            default = field_default(field)
            if is_dropout_rate(field.name, types, default):
                fields[field.name] = {"default": default, "types": list(types)}
        methods[name] = {"config_class": config_cls.__name__, "dropout_fields": fields,
                         "has_dropout": bool(fields)}
    log(f"peft {peft.__version__}: {len(methods)} types, "
        f"{sum(m['has_dropout'] for m in methods.values())} with dropout fields")
    return {
        "schema": SCHEMA,
        "generator": "python -m auditor.generate.architectures",
        "versions": {"peft": peft.__version__},
        "peft_types": methods,
    }


# --------------------------------------------------------------------------------------------
# Serialisation and CLI
# --------------------------------------------------------------------------------------------

def dump(doc: dict, table: tuple[str, ...]) -> str:
    """Sorted keys; one record per line inside the big tables, so a regenerated file shows which
    model type changed in `git diff` while staying small."""
    lines = ["{"]
    scalar_keys = [k for k in sorted(doc) if k not in table]
    for key in scalar_keys:
        lines.append(f"  {json.dumps(key)}: {json.dumps(doc[key], sort_keys=True)},")
    for t_index, key in enumerate(sorted(k for k in table if k in doc)):
        lines.append(f"  {json.dumps(key)}: {{")
        records = sorted(doc[key].items())
        for i, (name, record) in enumerate(records):
            comma = "," if i < len(records) - 1 else ""
            body = json.dumps(record, sort_keys=True, separators=(",", ":"))
            lines.append(f"    {json.dumps(name)}: {body}{comma}")
        last = t_index == len([k for k in table if k in doc]) - 1
        lines.append("  }" + ("" if last else ","))
    if lines[-1].endswith(",") and not any(k in doc for k in table):
        lines[-1] = lines[-1][:-1]
    lines.append("}")
    return "\n".join(lines) + "\n"


ARCH_TABLES = ("model_types", "nested_configs")
PEFT_TABLES = ("peft_types",)


def diff_summary(old: dict, new: dict, table: str, limit: int = 30) -> list[str]:
    out = []
    if old.get("versions") != new.get("versions"):
        out.append(f"versions: shipped {old.get('versions')} != installed {new.get('versions')}")
    old_t, new_t = old.get(table, {}), new.get(table, {})
    for name in sorted(set(old_t) | set(new_t)):
        if name not in old_t:
            out.append(f"{table}: + {name} (new)")
        elif name not in new_t:
            out.append(f"{table}: - {name} (gone)")
        elif old_t[name] != new_t[name]:
            fields = sorted(k for k in set(old_t[name]) | set(new_t[name])
                            if old_t[name].get(k) != new_t[name].get(k))
            out.append(f"{table}: ~ {name} ({', '.join(fields)})")
    return out[:limit] + ([f"... {len(out) - limit} more"] if len(out) > limit else [])


def check(jobs: int, sample: int | None) -> int:
    """Regenerate in memory and compare with the shipped files; a sample compares only the
    measured subset of model types (plus every declared-keys record)."""
    problems = []
    shipped = json.loads(ARCH_FILE.read_text(encoding="utf-8"))
    fresh = build_architectures(jobs, sample)
    if sample:
        problems += compare_sample(shipped, fresh, sample)
    else:
        problems += diff_summary(shipped, fresh, "model_types")
        problems += diff_summary(shipped, fresh, "nested_configs")
    shipped_peft = json.loads(PEFT_FILE.read_text(encoding="utf-8"))
    problems += diff_summary(shipped_peft, build_peft(), "peft_types")
    for line in problems:
        log("DRIFT " + line)
    log("knowledge files are up to date" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


def compare_sample(shipped: dict, fresh: dict, sample: int) -> list[str]:
    """Compare every declared-keys record, and the full record of the sampled types only (the
    composites measured alongside are there to serve their sub-configs, not to be compared)."""
    problems = []
    if shipped.get("versions") != fresh.get("versions"):
        problems.append(f"versions: shipped {shipped.get('versions')} != installed {fresh.get('versions')}")
    static, _ = declared_table()
    old_types = shipped["model_types"]
    if sorted(old_types) != sorted(static):
        problems.append(f"model_types: shipped {len(old_types)} != installed {len(static)}")
    for name, info in sorted(static.items()):
        old = old_types.get(name)
        if old is None:
            continue
        declared = {k: {"default": v["default"], "types": v["types"]} for k, v in old["keys"].items()}
        if declared != info["declared"] or old["aliases"] != info["aliases"] \
                or old["sub_configs"] != info["sub_configs"]:
            problems.append(f"model_types: ~ {name} (declared keys, aliases or sub_configs)")
    for name in sample_types(sorted(static), sample):
        entry = fresh["model_types"].get(name)
        if entry is not None and old_types.get(name) != entry:
            problems.append(f"model_types: ~ {name} (measured)")
    return problems


def update(model_types: list[str], jobs: int) -> int:
    """Re-measure some types and merge them into the shipped file: a full run takes tens of
    minutes on a small machine, and a change to how one verdict is decided touches few types.
    `--check` still compares everything against a full regeneration."""
    doc = json.loads(ARCH_FILE.read_text(encoding="utf-8"))
    static, nested_static = declared_table()
    unknown = sorted(set(model_types) - set(static))
    if unknown:
        log(f"not model types of this Transformers: {', '.join(unknown)}")
        return 2
    measured = measure_all(sorted(set(model_types)), jobs)
    entries = {t: arch_entry(t, static[t], via_parent(t, static, measured), source_scan) for t in measured}
    apply_curated(entries)
    doc["model_types"].update(entries)
    for name, info in nested_static.items():
        parent = name.split(".", 1)[0]
        if parent in measured:
            doc["nested_configs"][name] = nested_entry(name, info, measured[parent])
    ARCH_FILE.write_text(dump(doc, ARCH_TABLES), encoding="utf-8")
    log(f"updated {len(entries)} model types in {ARCH_FILE}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auditor.generate.architectures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with shipped files, exit 1 on drift")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--sample", type=int, default=None,
                        help="with --check: measure only this many model types (deterministic)")
    parser.add_argument("--only", nargs="*", help="debug: measure these model types and print them")
    parser.add_argument("--update", nargs="*", metavar="TYPE",
                        help="measure these model types again and merge them into the shipped table "
                             "(with the nested configs they own); the rest is kept as shipped")
    args = parser.parse_args(argv)
    if args.update:
        return update(args.update, args.jobs)
    if args.only:
        static, _ = declared_table()
        measured = measure_all(args.only, args.jobs)
        for t in args.only:
            print(t, json.dumps(arch_entry(t, static[t], measured[t], source_scan), sort_keys=True))
            print("  errors:", measured[t]["errors"], "seconds:", measured[t]["seconds"])
        return 0
    if args.check:
        return check(args.jobs, args.sample)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    arch = build_architectures(args.jobs)
    ARCH_FILE.write_text(dump(arch, ARCH_TABLES), encoding="utf-8")
    PEFT_FILE.write_text(dump(build_peft(), PEFT_TABLES), encoding="utf-8")
    log(f"wrote {ARCH_FILE} and {PEFT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
