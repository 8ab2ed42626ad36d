"""Keys a default config leaves out although its own model reads them, completed the way
Transformers documents them, so that a default config can be probed at all.

Found only from a failure (an attribute the model reads is missing, a mask needs a window), never
added up front, and used only when no scaled layout builds and runs without it (build_hf): a
config that builds is never touched. Each completion is a value the model does not compute with
differently from a real checkpoint, or one no layer uses:

- `rope_theta` missing from a sub-config (DBRX's attention config): the RoPE base the config
  tree's `rope_parameters` already holds, the one the rotary embedding computes with (DBRX's
  attention only stores its copy);
- a token id another config class of the same model declares with a default (Qwen2.5-Omni's
  and Qwen3-Omni's thinker configs lack `vision_start_token_id`; their talker configs, which
  share the thinker's vocabulary, declare it): that documented default;
- `num_key_value_heads` missing (Moonshine Streaming's decoder config): as many as query heads,
  which is what config classes derive when it is unset;
- `sliding_window` unset while no layer of `layer_types` is a sliding one (Step3p7 builds the
  sliding mask unconditionally): a window as long as the context, which no layer reads;
- a clamp bound left None, which its config documents as "if set, clip" (DBRX's `clip_qkv`,
  passed to `torch.clamp` as both bounds): an infinite bound, which clips nothing;
- a token index no config class declares, which the modeling code reads as
  `getattr(config, "yes_token_index", 10_784)` (ShieldGemma 2 picks two logits by it): that
  default, which the scaler then moves into the scaled vocabulary like every token id;
- `rope_parameters` left empty where the model reads one entry per layer type (cohere_compass):
  for each type, what Transformers' RoPE documents for a parameter left out, rope_type "default"
  and the config class's `default_theta`;
- `vocabulary_map` (Chameleon, Emu3), the tokenizer's map from each VQ code to its BPE token,
  which Transformers documents as "from the tokenizer" and no default carries: a stand-in over
  the scaled vocabulary's last ids. Which ids a tokenizer gives the codes is a numbering of the
  same embedding rows, not a layer, so no dropout site computes differently. It is written into
  the scaled config (`after_scaling`), because its ids must lie in the scaled vocabulary.

Keys the modeling code reads but the probe has no stand-in for (a per-layer MLP kind, an
expert count, a deepstack map, an indexer budget) stay unset, and the probe refuses, as
Transformers itself does on that default: a value chosen here would be a layer no checkpoint has.

The probe's report names every completion. A key the user wrote is never changed.

Imports inside functions (`inspect`, `linecache`, `os`, `transformers`) are deferred for start-up
time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import re
import sys

from auditor.probe.shrink import CODEBOOK

MISSING = re.compile(r"^'(\w+Config)' object has no attribute '(\w+)'$")
NO_WINDOW = "Could not find a `sliding_window` argument in the config"
NO_BOUND = "torch.clamp: At least one of 'min' or 'max' must not be None"
OUT_OF_BOUNDS = re.compile(r"^index (\d+) is out of bounds for dimension \d+ with size \d+$")
TOKEN_DEFAULT = re.compile(r"getattr\(\s*(?:self\.)?\w*config\s*,\s*[\"'](\w+_token_(?:index|id))[\"']\s*,\s*([\d_]+)\s*\)")


def wanted(exc: BaseException) -> tuple[str, str] | None:
    """(config class name, key) that the failure shows missing, or None."""
    if isinstance(exc, AttributeError) and (found := MISSING.match(str(exc))):
        return found.group(1), found.group(2)
    if isinstance(exc, ValueError) and str(exc).startswith(NO_WINDOW):
        owner = _frame_config(exc)
        return (type(owner).__name__, "sliding_window") if owner is not None else None
    if isinstance(exc, RuntimeError) and str(exc).startswith(NO_BOUND):
        return _unset_bound(exc)
    if isinstance(exc, IndexError) and (found := OUT_OF_BOUNDS.match(str(exc))):
        return _token_read_by_default(exc, int(found.group(1)))
    if (found := unset_read(exc)) is not None and (not found[3] or found[1] == "rope_parameters"):
        return type(found[0]).__name__, found[1]
    return None


CONFIG_READ = re.compile(r"\bconfig\.(\w+)")
SELF_READ = re.compile(r"\bself\.(\w+)")


def unset_read(exc: BaseException) -> tuple[object, str, str, bool] | None:
    """(config object, key, file:line, empty) where a TypeError, KeyError or None attribute
    inside the modeling code comes from a line that reads `config.<key>` (directly, or through
    `self.<attr>` copied from it earlier in the same function) and that key is None (or, for a
    KeyError, empty) in the config of the failing frame: lfm2_moe's layer_types, granite4_vision's
    deepstack_layer_map, Chameleon's vocabulary_map, cohere_compass's empty rope_parameters.
    Found in the traceback, so the key named is the one the model read, never a guess."""
    import linecache
    import os

    none_attr = isinstance(exc, AttributeError) and str(exc).startswith("'NoneType' object")
    if not isinstance(exc, (TypeError, KeyError)) and not none_attr:
        return None
    tb, frames = exc.__traceback__, []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    for tb in reversed(frames):
        code = tb.tb_frame.f_code
        if f"{os.sep}transformers{os.sep}models{os.sep}" not in code.co_filename:
            continue
        local = tb.tb_frame.f_locals
        owner = local.get("config") or getattr(local.get("self"), "config", None)
        if owner is None:
            continue
        empty = isinstance(exc, KeyError)
        key = _unset(linecache, code, tb.tb_lineno, owner, local.get("self"), empty)
        if key:
            return owner, key, f"{os.path.basename(code.co_filename)}:{tb.tb_lineno}", empty
    return None


def _unset(linecache, code, lineno: int, owner, this, empty: bool = False) -> str | None:
    text = linecache.getline(code.co_filename, lineno)
    keys = CONFIG_READ.findall(text)
    if this is not None:  # `self.num_experts = config.num_local_experts` earlier in this function
        body = "".join(linecache.getline(code.co_filename, n) for n in range(code.co_firstlineno, lineno))
        for attr in SELF_READ.findall(text):
            if getattr(this, attr, 0) is None and not empty:
                keys += re.findall(rf"self\.{attr}\s*=\s*config\.(\w+)\s*$", body, re.M)
    aliases = getattr(owner, "attribute_map", None) or {}
    for key in keys:
        try:
            value = getattr(owner, key) if hasattr(owner, key) else 0
            if (value == {} or value == []) if empty else value is None:
                return aliases.get(key, key)
        except Exception:  # noqa: BLE001  a config property that raises says nothing either way
            continue
    return None




def _token_read_by_default(exc: BaseException, index: int) -> tuple[str, str] | None:
    """The token key behind an index past the scaled vocabulary: a module on the failing path
    reads it from its config with a getattr default equal to that index, which no config holds."""
    tb = exc.__traceback__
    while tb is not None:
        this = tb.tb_frame.f_locals.get("self")
        config = getattr(this, "config", None)
        if config is not None:
            for key, default in _getattr_defaults(sys.modules.get(type(this).__module__)):
                if default == index and getattr(config, key, None) is None:
                    return type(config).__name__, key
        tb = tb.tb_next
    return None


def _getattr_defaults(module) -> list[tuple[str, int]]:
    """(key, default) of every `getattr(config, "<x>_token_index", <int>)` in a module's source."""
    import inspect

    try:
        source = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        return []
    return [(key, int(default.replace("_", ""))) for key, default in TOKEN_DEFAULT.findall(source)]


def _unset_bound(exc: BaseException) -> tuple[str, str] | None:
    """The config key behind the None bound of a failing clamp: the failing line reads
    `self.<attr>`, which the module's own code copies from `<some config>.<key>`."""
    import inspect
    import linecache

    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return None
    frame = tb.tb_frame
    this, line = frame.f_locals.get("self"), linecache.getline(frame.f_code.co_filename, tb.tb_lineno)
    config = getattr(this, "config", None)
    if this is None or config is None:
        return None
    try:
        source = inspect.getsource(type(this))
    except (OSError, TypeError):
        return None
    for attr in re.findall(r"\bself\.(\w+)", line):
        copied = re.search(rf"self\.{attr}\s*=\s*\w*config\.(\w+)\s*$", source, re.M)
        if getattr(this, attr, 0) is not None or not copied:
            continue
        for _, sub in config_tree(config):
            if copied.group(1) in vars(sub) and getattr(sub, copied.group(1)) is None:
                return type(sub).__name__, copied.group(1)
    return None


def _frame_config(exc: BaseException):
    tb, config = exc.__traceback__, None
    while tb is not None:  # the innermost frame holding a `config` (the mask function's)
        config = tb.tb_frame.f_locals.get("config", config)
        tb = tb.tb_next
    return config


def config_tree(obj, path: tuple = ()):
    """(path of keys, config object) for a config and every sub-config in it."""
    from transformers import PreTrainedConfig

    yield path, obj
    for key, value in vars(obj).items():
        if isinstance(value, PreTrainedConfig):
            yield from config_tree(value, path + (key,))


def complete(full: dict, obj, fills: set) -> list[str]:
    """Write into `full` (the dict of config `obj`) a value for every (class name, key) in
    `fills` that the config leaves out; return what was written, one line each."""
    done = []
    chain = list(config_tree(obj))
    for path, sub in chain:
        for cls_name, key in sorted(fills):
            if type(sub).__name__ != cls_name or getattr(sub, key, None) not in (None, {}):
                continue
            ancestors = [o for p, o in chain if path[: len(p)] == p]
            found = value_for(sub, key, ancestors)
            if found is None:
                continue
            value, source = found
            target = full
            for k in path:
                target = target[k]
            target[key] = value
            done.append(f"{'.'.join(path + (key,))} = {value!r} ({source})")
    return done


def after_scaling(small: dict, fills: set) -> list[str]:
    """Write the stand-ins whose values depend on the scaled sizes into the scaled config dict
    `small`; return what was written, one line each (see the module docstring)."""
    done = []
    if any(key == "vocabulary_map" for _, key in fills) and small.get("vocabulary_map") is None:
        made = _vocabulary_stand_in(small)
        if made is not None:
            small["vocabulary_map"], line = made
            done.append(line)
    return done


# How each model names its VQ codes in the tokenizer (the modeling code parses these names back)
CODE_NAMES = {
    "num_embeddings": lambda code: "IMGIMG" + "".join(chr(ord("A") + int(d)) for d in str(code)) + "Z",
    "codebook_size": lambda code: f"<|visual token {code:06d}|>",
}


def _vocabulary_stand_in(small: dict) -> tuple[dict, str] | None:
    """A vocabulary map for a scaled Chameleon or Emu3: the VQ codebook (scaled to
    shrink.CODEBOOK codes) on the last ids of the scaled vocabulary, then Emu3's end-of-line
    token, then `<image>`."""
    vq, text = small.get("vq_config"), small.get("text_config")
    vocab = (text if isinstance(text, dict) and "vocab_size" in text else small).get("vocab_size")
    book_key = next((k for k in CODE_NAMES if isinstance(vq, dict) and isinstance(vq.get(k), int)), None)
    if book_key is None or not isinstance(vocab, int):
        return None
    book = vq[book_key] = min(vq[book_key], CODEBOOK)
    if vocab < book + 3:
        return None
    first = vocab - book - 2
    mapping = {CODE_NAMES[book_key](code): first + code for code in range(book)}
    mapping["<|extra_200|>"] = vocab - 2  # Emu3's end of an image row; Chameleon reads no such name
    mapping["<image>"] = vocab - 1
    small["image_token_id"] = vocab - 1
    line = (f"vocabulary_map = a stand-in of {book} VQ codes on ids {first}..{first + book - 1}, "
            f"<image> = {vocab - 1} (a tokenizer's map, which the default leaves out; the codebook "
            f"scaled to {book} codes)")
    return mapping, line


def value_for(config, key: str, ancestors: list) -> tuple[object, str] | None:
    """The documented value of a key `config` lacks, with where it comes from; None if none."""
    if key == "rope_theta":
        for owner in reversed(ancestors):
            rope = getattr(owner, "rope_parameters", None)
            if isinstance(rope, dict) and isinstance(rope.get("rope_theta"), (int, float)):
                return rope["rope_theta"], f"the RoPE base of {type(owner).__name__}.rope_parameters"
        return None
    if key == "rope_parameters" and isinstance(getattr(config, "layer_types", None), list):
        theta = getattr(config, "default_theta", None)
        if isinstance(theta, (int, float)):
            return ({kind: {"rope_type": "default", "rope_theta": theta} for kind in sorted(set(config.layer_types))},
                    "per layer type, the RoPE Transformers documents for parameters left out: rope_type "
                    "'default' and the config's default_theta")
        return None
    if key == "sliding_window":
        types = getattr(config, "layer_types", None)
        length = getattr(config, "max_position_embeddings", None)
        if isinstance(types, list) and not any("sliding" in str(t) for t in types) and isinstance(length, int):
            return length, "no layer of layer_types is a sliding one: a window as long as the context"
        return None
    if key == "num_key_value_heads" and isinstance(getattr(config, "num_attention_heads", None), int):
        return config.num_attention_heads, "as many as query heads, as config classes derive it when unset"
    if "clip" in key and "if set, clip" in " ".join((type(config).__doc__ or "").lower().split()):
        return float("inf"), "None means no clipping; an infinite bound clips nothing"
    if key.endswith(("_token_id", "_token_index")):
        return _sibling_default(type(config), key) or _modeling_default(type(config), key)
    return None


def _modeling_default(cls, key: str) -> tuple[object, str] | None:
    """The default the model's own modeling module reads `key` with (see _token_read_by_default)."""
    name = cls.__module__.rsplit(".", 1)
    modeling = sys.modules.get(f"{name[0]}.modeling_{name[-1].removeprefix('configuration_')}")
    found = [default for k, default in _getattr_defaults(modeling) if k == key]
    if len(set(found)) != 1:
        return None
    return found[0], f"the default {modeling.__name__.rsplit('.', 1)[-1]} reads it with"


def _sibling_default(cls, key: str) -> tuple[object, str] | None:
    """The default another config class of the same model declares for `key`, when they agree.
    Only for token ids: the sub-models of one model share its vocabulary, not their sizes."""
    from transformers import PreTrainedConfig

    declared = {}
    for name, other in vars(sys.modules[cls.__module__]).items():
        if other is cls or not (isinstance(other, type) and issubclass(other, PreTrainedConfig)):
            continue
        field = (getattr(other, "__dataclass_fields__", None) or {}).get(key)
        default = getattr(field, "default", None)
        if isinstance(default, (int, float, str)) and not isinstance(default, bool):
            declared[name] = default
    if len(set(declared.values())) != 1:
        return None
    return next(iter(declared.values())), f"the default {', '.join(sorted(declared))} declares"
