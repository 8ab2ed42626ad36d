"""The reader for YAML and JSON files: configs, adapters and recipes of every dialect.

Imports inside functions (`json`, `sources.shell`) are deferred for start-up time: a run that never
takes that path never pays for them.
"""

from __future__ import annotations

import os
import re

from auditor.core import probability
from auditor.core.lazy_regex import LazyRegex
from auditor.core.model import Field, Setting, Source
from auditor.knowledge import dropout_keys
from auditor.knowledge.key_roles import role_in
from auditor.sources import dialects, nodes, prescan
from auditor.sources.common import located_problem

PARSE_ERROR = "DRP000"
DUPLICATE_KEY = "DRP402"


SKIPPED = "DRP004"
CUSTOM_CODE = "DRP003"
_JINJA = LazyRegex(r"{%|{{|{#")


_JSON_COMMENT = LazyRegex(r"^[ \t]*(//|/\*)", re.M)


def _json_problem(text: str):
    """(message, offset) of why a .json file is not JSON, in JSON's words: the YAML parser that
    composes it words a comment or a stray comma as YAML ("while parsing a flow mapping"),
    which names the wrong language. None when the json module accepts it."""
    import json

    comment = _JSON_COMMENT.search(text)
    if comment is not None:
        return (f"cannot parse: not valid JSON: a {comment.group(1)} comment (JSON has no comments; "
                "json.load, which Transformers and PEFT use, rejects the file)", comment.start(1))
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"cannot parse: not valid JSON: {exc.msg}", exc.pos
    except (ValueError, RecursionError):
        return None
    return None


def read(path: str, text: str) -> Source | None:
    exc = None
    json_mode = path.lower().endswith(".json")
    if os.path.basename(path).lower() in dialects.TOKENIZER_FILES:
        return None  # never a training config whatever it holds; tokenizer.json runs to megabytes
    if prescan.skip_unread(path, text):
        return None
    try:
        docs = nodes.compose(text, path)
    except nodes.ParseError as error:
        exc = error
        docs = _compose_jsonc(text, path) if json_mode and not _read_by_json_load(path, text) else None
    if docs is None:
        if not prescan.parse_error_matters(path, text):
            return None  # a dataset, a JSON-with-comments editor file, a CI config: not ours (#16.5)
        jinja = _JINJA.search(text)
        if jinja and not json_mode:
            return located_problem(path, SKIPPED, "skipped: a Jinja template, which is YAML only once rendered; "
                                                  "audit the rendered file", nodes.span_at(text, jinja.start()))
        if json_mode:
            json_problem = _json_problem(text)
            if json_problem is not None:
                return located_problem(path, PARSE_ERROR, json_problem[0], nodes.span_at(text, json_problem[1]))
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
        before = len(src.settings)
        _collect(src, root, text, prefix, json_mode, kind)
        if dialect in _OMEGACONF_DIALECTS:
            _resolve_interpolations(src.settings[before:], src.settings, root, text, prefix, json_mode)
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


# Dialects whose files are loaded by OmegaConf, which resolves `${a.b}` against the same file
# (NeMo and Hydra recipes, torchtune's config.parse); axolotl, LLaMA-Factory and the
# HfArgumentParser family read `${x}` as the literal string (#25).
_OMEGACONF_DIALECTS = frozenset({"nemo", "torchtune", "generic"})
_INTERPOLATION = LazyRegex(r"\$\{(\.*)([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\}")


def _resolve_interpolations(new: list, settings: list, root, text: str, prefix: tuple, json_mode: bool) -> None:
    """A rate written as `${model.dropout}` (or OmegaConf's relative `${..dropout}`) that names a
    scalar of the same file is that scalar: judged where the number is written (value_span at the
    target, the key at the reference), or, when the target is itself a rate, judged there once and
    shown resolved in the plan (reason `interpolated`). What the file cannot resolve (an
    environment variable, another file, a resolver call) stays a template (DRP105)."""
    rates = {s.key_path: s for s in settings}
    for s in new:
        target_path, seen = s.key_path, set()
        raw = s.raw
        for _ in range(8):  # chains of references, never a loop
            m = _INTERPOLATION.fullmatch(raw.strip().strip("\"'"))
            if m is None or target_path in seen:
                break
            seen.add(target_path)
            dots, dotted = m.groups()
            base = target_path[:-1] if dots else prefix
            for _ in range(max(len(dots) - 1, 0)):
                base = base[:-1]
            target_path = base + tuple(dotted.split("."))
            entry = _entry_at(root, target_path[len(prefix):])
            if entry is None or not nodes.is_scalar(entry.value_node):
                break
            vspan = nodes.value_span(entry, text)
            raw = text[vspan.start:vspan.end]
            if _INTERPOLATION.fullmatch(raw.strip().strip("\"'")):
                continue
            value = nodes.scalar_value(entry.value_node, json_mode=json_mode)
            p, reason = probability.classify(value, quoted=nodes.is_quoted(entry.value_node))
            if reason is not None:
                break
            s.value, s.p, s.raw = value, p, f"{raw} (via {s.raw.strip()}, line {s.value_span.line})"
            if target_path in rates and rates[target_path] is not s:
                s.reason = "interpolated"  # judged at the target, which is a rate itself
            else:
                s.reason, s.value_span = None, vspan
            break


def _entry_at(root, path: tuple):
    node, found = root, None
    for key in path:
        if not nodes.is_mapping(node):
            return None
        found = next((nodes.Entry(str(k.value), k, v, ()) for k, v in node.value
                      if nodes.is_scalar(k) and str(k.value) == key), None)
        if found is None:
            return None
        node = found.value_node
    return found


def _read_by_json_load(path: str, text: str) -> bool:
    """A Transformers config.json or a PEFT adapter_config.json (their keys say so) is read by
    json.load, which rejects comments: there a comment is the error DRP000 names. Other JSON,
    Coqui TTS's own config.json included, may be read by code that strips comments first, so it
    is read as JSON with comments."""
    return any(marker in text for marker in ('"peft_type"', '"model_type"', '"architectures"'))


def _compose_jsonc(text: str, path: str):
    """JSON with `//` and `/* */` comments, as Coqui TTS (read_json_with_comments), VS Code and
    tsconfig-style tools read it: the comments are blanked to spaces (newlines kept), so every
    position stays where the file has it, and the rest must be plain JSON (#25)."""
    blanked = _blank_json_comments(text)
    if blanked is None:
        return None
    try:
        return nodes.compose(blanked, path)
    except nodes.ParseError:
        return None


def _blank_json_comments(text: str) -> str | None:
    """The text with comments outside strings replaced by spaces, or None when it has none."""
    if "//" not in text and "/*" not in text:
        return None
    out = list(text)
    i, n, found, in_string = 0, len(text), False, False
    while i < n:
        c = text[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            in_string = c != '"'
        elif c == '"':
            in_string = True
        elif c == "/" and i + 1 < n and text[i + 1] in "/*":
            found = True
            end = text.find("\n", i) if text[i + 1] == "/" else text.find("*/", i + 2)
            end = n if end == -1 else (end if text[i + 1] == "/" else end + 2)
            for j in range(i, end):
                if out[j] not in "\r\n":
                    out[j] = " "
            i = end
            continue
        i += 1
    return "".join(out) if found else None


def _collect(src: Source, root, text: str, prefix: tuple, json_mode: bool, kind: str) -> None:
    seen_in_mapping: dict = {}
    pretrained = None
    for entry in nodes.walk(root):
        if entry.key in _pretrained_keys() and "pretrained_from" not in src.fields:
            pretrained = pretrained or entry
        if not dropout_keys.is_rate_key(entry.key):
            if dropout_keys.named_like_rate(entry.key):
                _not_a_rate(src, entry, text, prefix, dropout_keys.setting_reason(entry.key, None))
            continue
        what = nodes.describe_entry(entry, text)
        if what is not None:
            setting = _structure(src, entry, text, prefix, what)
        else:
            setting = _setting(src.path, entry, text, prefix, json_mode, kind, src.dialect == "generic")
            if setting is not None and (why := dropout_keys.setting_reason(entry.key, setting.value)):
                _not_a_rate(src, entry, text, prefix, why)
                continue
        if setting is None:
            continue
        parent = entry.key_path[:-1]
        twin = seen_in_mapping.get((parent, entry.key))
        if twin is not None and twin.raw.strip() != setting.raw.strip():  # the same value twice loses nothing
            src.problems.append((DUPLICATE_KEY, setting.key_span,
                                 f"duplicate key '{entry.key}': line {twin.key_span.line} says {_shown(twin.raw)}, "
                                 f"this one says {_shown(setting.raw)}; readers keep only one of them"))
        seen_in_mapping[(parent, entry.key)] = setting
        src.settings.append(setting)
    if pretrained is not None and src.settings:
        _state_pretrained(src, pretrained, text, prefix, json_mode)


def _pretrained_keys() -> frozenset:
    from auditor.knowledge import setup_kinds

    return setup_kinds.pretrained_keys()


def _state_pretrained(src: Source, entry, text: str, prefix: tuple, json_mode: bool) -> None:
    """`pretrained_from`: the key that states the run starts from pretrained weights (NeMo's
    init_from_nemo_model, fairseq's finetune_from_model, SpeechBrain's pretrainer, ...), which
    is what the fine-tuning limits need to know (#25). A mapping or tagged object (SpeechBrain's
    `!new:...Pretrainer`) states it by being there."""
    from auditor.knowledge import setup_kinds

    node = entry.value_node
    scalar = nodes.is_scalar(node) and nodes.rejected_tag(node) is None
    value = nodes.scalar_value(node, json_mode=json_mode) if scalar else "(object)"
    where = setup_kinds.states_pretrained(entry.key, value)
    if where is not None:
        dotted = ".".join(str(k) for k in prefix + entry.key_path)
        src.fields["pretrained_from"] = Field(f"{dotted} ({where})", nodes.span_of(entry.key_node, text))


def _not_a_rate(src: Source, entry, text: str, prefix: tuple, why: str | None) -> None:
    """A key named like a rate that holds a setting: no rule judges it, `plan` lists it (#25)."""
    if why is None or not nodes.is_scalar(entry.value_node):
        return
    vspan = nodes.value_span(entry, text)
    note = (".".join(str(k) for k in prefix + entry.key_path), text[vspan.start:vspan.end], vspan.line, why)
    field = src.fields.get("not_rates")
    if field is None:
        src.fields["not_rates"] = Field([note], None)
    else:
        field.value.append(note)


def _structure(src: Source, entry, text: str, prefix: tuple, what: str) -> Setting | None:
    """A list, mapping, alias or tagged value where a rate is expected, as a Setting with the
    reason `structure` and `value` saying what it is. Only where the reader needs a number:
    config.json, adapters, and LoRA rates (or any python tag) in the recipes of known
    frameworks. A mapping under another dropout-named key is often a section, and in a
    generic YAML often a sweep (`lora_dropout: {values: [0.05, 0.1]}`)."""
    role = "lora" if src.kind == "peft-adapter" else role_in(entry.key, prefix + entry.key_path[:-1])
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


# Words that stand for "the value from elsewhere" in configs read by their own code (s3prl's
# mockingjay options.yaml: `dropout: 'default'`, "or use the str `default` for pre-train default
# values", builder.py). Without a schema for the file they are settings, not invalid rates.
_SENTINELS = frozenset({"default", "auto", "inherit", "pretrained", "same"})


def _setting(path: str, entry, text: str, prefix: tuple, json_mode: bool, kind: str,
             generic: bool = False) -> Setting | None:
    node = entry.value_node
    value = nodes.scalar_value(node, json_mode=json_mode)
    quoted = nodes.is_quoted(node)
    role = "lora" if kind == "peft-adapter" else role_in(entry.key, prefix + entry.key_path[:-1])
    if isinstance(value, bool) and role != "lora":
        return None  # `dropout: false` is a switch in that codebase, not a rate
    p, reason = probability.classify(value, quoted=quoted)
    if reason == "string" and kind != "peft-adapter" and dropout_keys.is_setting_word(entry.key, value):
        return None  # `dropout_position: pre` is a setting, not a rate
    if reason == "string" and generic and value.strip().lower() in _SENTINELS:
        return None
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
