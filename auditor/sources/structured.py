"""The reader for YAML and JSON files: configs, adapters and recipes of every dialect.

Imports inside functions (`sources.shell`) are deferred for start-up time: a run that never
takes that path never pays for them.
"""

from __future__ import annotations

import os

from auditor.core import probability
from auditor.core.lazy_regex import LazyRegex
from auditor.core.model import Field, Setting, Source
from auditor.knowledge import dropout_keys
from auditor.sources import dialects, nodes, prescan
from auditor.sources.common import located_problem

PARSE_ERROR = "DRP000"
DUPLICATE_KEY = "DRP402"


SKIPPED = "DRP004"
CUSTOM_CODE = "DRP003"
_JINJA = LazyRegex(r"{%|{{|{#")


def read(path: str, text: str) -> Source | None:
    json_mode = path.lower().endswith(".json")
    if os.path.basename(path).lower() in dialects.TOKENIZER_FILES:
        return None  # never a training config whatever it holds; tokenizer.json runs to megabytes
    if prescan.skip_unread(path, text):
        return None
    try:
        docs = nodes.compose(text, path)
    except nodes.ParseError as exc:
        if not prescan.parse_error_matters(path, text):
            return None  # a dataset, a JSON-with-comments editor file, a CI config: not ours (#16.5)
        jinja = _JINJA.search(text)
        if jinja and not json_mode:
            return located_problem(path, SKIPPED, "skipped: a Jinja template, which is YAML only once rendered; "
                                                  "audit the rendered file", nodes.span_at(text, jinja.start()))
        return located_problem(path, PARSE_ERROR, exc.message, exc.span)
    roots = [d for d in docs if nodes.is_mapping(d)]
    if not roots:
        return None
    main = roots[0]
    if any(nodes.depth_exceeded(r) for r in roots):
        return located_problem(path, PARSE_ERROR, f"cannot parse: nesting deeper than {nodes.MAX_DEPTH} levels",
                               nodes.span_of(main, text))
    has_component = any(e.key == "_component_" for r in roots for e in nodes.walk(r))
    kind, dialect, why, rivals = dialects.explain(path, nodes.top_level(main), has_component)
    if kind is None:
        return None
    src = Source(path=path, kind=kind, dialect=dialect, text=text)
    src.fields = dialects.extract_agreed(dialect, rivals, main, text, path, json_mode)
    src.fields["dialect_why"] = Field(why, None)
    if rivals:
        src.fields["dialect_rivals"] = Field(rivals, None)
    auto_map = nodes.top_level(main).get("auto_map") if kind in ("hf-config", "peft-adapter") else None
    if auto_map is not None:
        src.problems.append((CUSTOM_CODE, nodes.span_of(auto_map[0], text),
                             "auto_map: the model's classes are custom code loaded with trust_remote_code; "
                             "the dropout it applies is not in the auditor's architecture knowledge "
                             "(run `dropout-audit probe --trust-remote-code` to measure it)"))
    for index, root in enumerate(roots):
        prefix = (index,) if len(roots) > 1 else ()
        _collect(src, root, text, prefix, json_mode, kind)
    if kind == "recipe" and dialect == "generic":
        _read_launch_lines(src, main, text)
    if not src.settings and kind == "recipe" and (dialect == "fairseq" or (
            dialect == "generic" and not _says_something(src))):
        return None  # a YAML file with nothing to say about dropout
    return src


def _says_something(src) -> bool:
    """A generic recipe without rates still matters when a framework-independent key in it
    decides a rule of its setup (#26): DDP's unused-parameter search for a layer-drop
    config.json it links to, `disable_dropout`, `use_unsloth`."""
    f = src.fields
    return any(k in f for k in ("ddp_find_unused_parameters", "disable_dropout", "unsloth")) or (
        "gradient_checkpointing" in f and "base_model" in f)


# Keys whose string values are command lines in launcher specs (Beaker `command:`/`arguments:`,
# Kubernetes `args:`, CI `run:`/`script:`).
LAUNCH_KEYS = frozenset({"command", "arguments", "args", "cmd", "run", "script"})


def _read_launch_lines(src: Source, root, text: str) -> None:
    """Dropout flags in launch lines that a launcher YAML holds as strings (#18.2): read by the
    shell reader over those scalars only, with spans into this file."""
    regions = []
    for entry in nodes.walk(root):
        if entry.key not in LAUNCH_KEYS:
            continue
        items = entry.value_node.value if nodes.is_sequence(entry.value_node) else [entry.value_node]
        for node in items:
            if nodes.is_scalar(node) and isinstance(node.value, str) and "drop" in node.value.lower():
                start, end = node.start_mark.index, node.end_mark.index
                if node.style in ("'", '"'):
                    start, end = start + 1, end - 1
                regions.append((start, end))
    if not regions:
        return
    from auditor.sources import shell

    found = shell.read_regions(src.path, text, regions)
    if found is None:
        return
    src.settings.extend(found.settings)
    for name, value in found.fields.items():
        src.fields.setdefault(name, value)
    src.fields["dialect_why"] = Field("a launcher spec: launch lines in its " + "/".join(
        sorted({e.key for e in nodes.walk(root) if e.key in LAUNCH_KEYS})) + " strings", None)


def _collect(src: Source, root, text: str, prefix: tuple, json_mode: bool, kind: str) -> None:
    seen_in_mapping: dict = {}
    for entry in nodes.walk(root):
        if not dropout_keys.is_rate_key(entry.key):
            continue
        what = nodes.describe_entry(entry, text)
        if what is not None:
            setting = _structure(src, entry, text, prefix, what)
        else:
            setting = _setting(src.path, entry, text, prefix, json_mode, kind)
        if setting is None:
            continue
        parent = entry.key_path[:-1]
        twin = seen_in_mapping.get((parent, entry.key))
        if twin is not None:
            src.problems.append((DUPLICATE_KEY, setting.key_span,
                                 f"duplicate key '{entry.key}': line {twin.key_span.line} says {_shown(twin.raw)}, "
                                 f"this one says {_shown(setting.raw)}; readers keep only one of them"))
        seen_in_mapping[(parent, entry.key)] = setting
        src.settings.append(setting)


def _structure(src: Source, entry, text: str, prefix: tuple, what: str) -> Setting | None:
    """A list, mapping, alias or tagged value where a rate is expected, as a Setting with the
    reason `structure` and `value` saying what it is. Only where the reader needs a number:
    config.json, adapters, and LoRA rates (or any python tag) in the recipes of known
    frameworks. A mapping under another dropout-named key is often a section, and in a
    generic YAML often a sweep (`lora_dropout: {values: [0.05, 0.1]}`)."""
    role = "lora" if src.kind == "peft-adapter" else dropout_keys.role_of(entry.key)
    if src.kind == "recipe" and src.dialect == "generic" and not (
            src.get("finetune") == "lora" and role == "lora" and not what.startswith("a mapping")):
        return None  # a LoRA setup's rate given as a list, alias or python tag is still judged (#26)
    if src.kind == "recipe" and role != "lora" and nodes.rejected_tag(entry.value_node) is None:
        return None  # torchtune's `layer_dropout: {prob: 0.2, layers: ":"}` is a section
    alias = nodes.is_alias(entry)
    vspan = nodes.alias_span(entry, text) if alias else nodes.span_of(entry.value_node, text)
    return Setting(path=src.path, key=entry.key, key_path=prefix + entry.key_path, role=role,
                   raw=text[vspan.start:vspan.end], value=what, p=None, reason="structure",
                   key_span=nodes.span_of(entry.key_node, text), value_span=vspan,
                   canonical=dropout_keys.canonical(entry.key))


def _shown(raw: str) -> str:
    """A raw value as one short line for a message (block scalars span lines)."""
    flat = " ".join(raw.split())
    return (flat[:37] + "...") if len(flat) > 40 else (flat or "nothing")


def _setting(path: str, entry, text: str, prefix: tuple, json_mode: bool, kind: str) -> Setting | None:
    node = entry.value_node
    value = nodes.scalar_value(node, json_mode=json_mode)
    quoted = nodes.is_quoted(node)
    role = "lora" if kind == "peft-adapter" else dropout_keys.role_of(entry.key)
    if isinstance(value, bool) and role != "lora":
        return None  # `dropout: false` is a switch in that codebase, not a rate
    p, reason = probability.classify(value, quoted=quoted)
    if reason == "string" and kind != "peft-adapter" and dropout_keys.is_setting_word(entry.key, value):
        return None  # `dropout_position: pre` is a setting, not a rate
    if (reason is None and not json_mode and not node.style
            and probability.yaml11_reads_as_string(node.value)):
        reason = "yaml11-string"
    if json_mode and reason == "string" and value in ("NaN", "Infinity", "-Infinity"):
        reason = "not-finite"
    vspan = nodes.value_span(entry, text)
    return Setting(
        path=path,
        key=entry.key,
        key_path=prefix + entry.key_path,
        role=role,
        raw=text[vspan.start:vspan.end],
        value=value,
        p=p,
        reason=reason,
        key_span=nodes.span_of(entry.key_node, text),
        value_span=vspan,
        canonical=dropout_keys.canonical(entry.key),
    )
