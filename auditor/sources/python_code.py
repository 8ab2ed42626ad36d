"""The reader for Python training scripts and model code, by AST only.

User code is never imported or run: importing a training script can start training, touch the
network or execute anything at all, and the auditor runs in pre-commit hooks. `ast.parse`
gives everything the rules need. Dropout values written in code (LoraConfig(lora_dropout=...),
from_pretrained(..., hidden_dropout_prob=...), argparse and dataclass defaults) become Settings
like the values of a YAML recipe, so the range, role and cross-file rules apply to them
unchanged; values computed at run time carry the reason `expression`, which no value rule
selects.

Imports inside functions (`sources.python_config`, for OpenMMLab and detectron2 configs) are
deferred for start-up time: a script that is no such config never pays for them.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sys

from auditor.core import probability
from auditor.core.model import Field, Setting, Source, Span
from auditor.knowledge import dropout_keys
from auditor.sources.common import PYTHON_MARKERS, located_problem
from auditor.sources.python_facts import PyModule, constant, dotted, imported_from, kwarg, last_name, parse

PARSE_ERROR = "DRP000"
SKIPPED = "DRP004"

# A file without any of these cannot trigger a rule; skipping it before parsing keeps large
# repositories fast (most Python files in a training repo are data or utility code). Defined
# beside the reader table, which tests them before importing this module.
MARKERS = PYTHON_MARKERS

# Argument classes that have no dropout field: a dropout kwarg raises TypeError (facts.md
# "Trainers"). They are not Settings: nothing reads the value.
TRAINING_ARGS = frozenset({
    "TrainingArguments", "Seq2SeqTrainingArguments", "SFTConfig", "DPOConfig", "KTOConfig", "ORPOConfig",
    "CPOConfig", "BCOConfig", "RewardConfig", "GRPOConfig", "RLOOConfig", "PPOConfig", "OnlineDPOConfig",
    "GKDConfig", "PRMConfig", "XPOConfig", "NashMDConfig",
})

# Call names whose dropout kwargs configure a model or an adapter.
_SETTING_METHODS = frozenset({"from_pretrained", "from_config", "get_peft_model"})
_PEFT_CONFIG = re.compile(r"(Lora|LoHa|LoKr|Oft|OFT|BOFT|Boft|VeRA|Vera|VBLoRA|RandLora|Shadow|Adalora|AdaLora|DeLora|XLora)Config$")
_TRAINER_NAME = re.compile(r"^(DPO|KTO|ORPO|CPO|BCO|Reward|GRPO|RLOO|PPO|OnlineDPO|SFT)(Trainer|Config)$")
_HF_TRAINERS = frozenset({"Trainer", "Seq2SeqTrainer"})
_TRAINER_KEYS = {"dpo": "dpo", "kto": "kto", "orpo": "orpo", "cpo": "cpo", "bco": "bco", "reward": "reward",
                 "grpo": "grpo", "rloo": "rloo", "ppo": "ppo", "onlinedpo": "online_dpo", "sft": "sft"}


def read(path: str, text: str) -> Source | None:
    if not any(m in text for m in MARKERS):
        return None
    try:
        tree = parse(text, path)
    except SyntaxError as exc:
        return _unparsable(path, text, exc)
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return located_problem(path, PARSE_ERROR, f"cannot parse Python: {exc}")
    module = PyModule(tree, text)
    src = Source(path=path, kind="python", dialect="python", text=text)
    src.facts.append(module)
    _collect(src, module)
    return src


def _unparsable(path: str, text: str, exc: SyntaxError) -> Source:
    """A located DRP000, or DRP004 (skipped, info) when the code is valid Python newer than the
    interpreter the auditor runs on: that is no error in the user's code and must not fail a
    run (#25). SyntaxError columns are 1-based characters (Python >= 3.10)."""
    line = exc.lineno or 1
    col = max(exc.offset or 1, 1)
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    start = min(starts[line - 1] + col - 1, len(text)) if line <= len(starts) else len(text)
    span = Span(line, col, line, col, start, start)
    end = starts[line] if line < len(starts) else len(text)
    newer = newer_grammar(exc, text[starts[line - 1]:end] if line <= len(starts) else "", path)
    if newer is not None:
        return located_problem(path, SKIPPED, newer, span)
    return located_problem(path, PARSE_ERROR, syntax_message(exc, line, col), span)


# Grammar the running parser may not know, by the Python version that brought it. Matched on the
# line the parser stopped at, so a real syntax error elsewhere is still DRP000.
_NEWER_GRAMMAR = (
    ((3, 12), "PEP 695 type aliases", re.compile(r"^\s*type\s+[A-Za-z_]\w*\s*(\[[^\]]*\]\s*)?=")),
    ((3, 12), "PEP 695 type parameters", re.compile(r"^\s*(async\s+def|def|class)\s+[A-Za-z_]\w*\s*\[")),
    ((3, 14), "PEP 758 except without parentheses", re.compile(r"^\s*except\*?\s+[^()\s:][^():]*,[^():]*:")),
    ((3, 14), "PEP 750 template strings", re.compile(r"(?<![\w.])[tT][rR]?[\"']|(?<![\w.])[rR][tT][\"']")),
)


def newer_grammar(exc: SyntaxError, line_text: str, path: str) -> str | None:
    """The DRP004 message when the parse failed on grammar newer than the running Python, or
    when the project itself requires a newer Python (pyproject's requires-python): either way
    the code is not wrong, the auditor is too old to read it."""
    running = sys.version_info[:2]
    shown = f"{running[0]}.{running[1]}"
    msg = exc.msg or str(exc)
    needs, what = None, ""
    if running < (3, 12) and msg.startswith("f-string") and "single '}'" not in msg:
        needs, what = (3, 12), "PEP 701 f-strings: quotes, backslashes or comments inside the expressions"
    else:
        for version, name, pattern in _NEWER_GRAMMAR:
            if running < version and pattern.search(line_text):
                needs, what = version, name
                break
    required = _required_python(path)
    if needs is None and (required is None or required <= running):
        return None
    if needs is None:
        needs, what = required, f"the project's requires-python (>={required[0]}.{required[1]})"
    return (f"skipped: valid Python {needs[0]}.{needs[1]}+ ({what}), newer than the Python {shown} the auditor runs "
            f"on, whose parser says \"{msg}\"; run the auditor on Python {needs[0]}.{needs[1]}+ to check this file")


_REQUIRES = re.compile(r"^\s*requires-python\s*=\s*[\"'][^\"']*?>=?\s*(\d+)\.(\d+)", re.M)


@functools.lru_cache(maxsize=64)
def _requires_in(directory: str) -> tuple | None:
    """(major, minor) of the lowest Python a pyproject.toml in `directory` or above admits."""
    for _ in range(32):
        candidate = os.path.join(directory, "pyproject.toml")
        if os.path.isfile(candidate):
            try:
                with open(candidate, encoding="utf-8", errors="replace") as handle:
                    found = _REQUIRES.search(handle.read(65536))
            except OSError:
                return None
            return (int(found.group(1)), int(found.group(2))) if found else None
        if os.path.isdir(os.path.join(directory, ".git")):
            return None
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
    return None


def _required_python(path: str) -> tuple | None:
    return _requires_in(os.path.dirname(os.path.abspath(path)))


def syntax_message(exc: SyntaxError, line: int, col: int) -> str:
    """The DRP000 message (grammar newer than the running Python is DRP004: newer_grammar)."""
    where = f"(line {line}, column {col})"
    msg = exc.msg or str(exc)
    return f"cannot parse Python: {msg} {where}"


def get_module(source) -> PyModule | None:
    for fact in source.facts:
        if isinstance(fact, PyModule):
            return fact
    return None


# --- settings and fields --------------------------------------------------------------------

def _collect(src: Source, module: PyModule) -> None:
    fields = src.fields
    idx = module.index
    unsloth = any(name in module.text for name in _UNSLOTH)  # a Name node spells its id in the text
    dataclasses = any(_is_dataclass(c) for c in idx.of(ast.ClassDef))
    # calls alone, or the calls, classes (and names) in tree order when dataclasses or unsloth
    # names add facts too: the first of them decides a field, and references keep their order
    readable = _readable_calls(idx)
    if unsloth or dataclasses:
        kinds = (ast.ClassDef, ast.Name) if unsloth else (ast.ClassDef,)
        wanted, call = {id(c) for c in readable}, ast.Call
        nodes = [n for n in idx.nodes if (kind := n.__class__) in kinds or (kind is call and id(n) in wanted)]
    else:
        nodes = readable
    for node in nodes:
        if isinstance(node, ast.Call):
            _from_call(src, module, node)
        elif isinstance(node, ast.ClassDef) and _is_dataclass(node):
            _from_dataclass(src, module, node)
        elif isinstance(node, ast.Name) and node.id in _UNSLOTH:
            if "unsloth" not in fields:
                fields["unsloth"] = Field(True, module.span(node))
    if module.tree.body and ("dict(" in module.text or "LazyCall" in module.text or "\nmodel." in module.text
                                         or "load_from" in module.text or "_base_" in module.text):
        from auditor.sources import python_config

        flavour = python_config.flavour(module)
        if flavour is not None:
            python_config.read(src, module, flavour)
    _order_references(src)
    src.settings.sort(key=lambda s: s.value_span.start)


_UNSLOTH = frozenset({"FastLanguageModel", "FastModel", "FastVisionModel"})


def _readable_calls(idx) -> list:
    """The calls _from_call can take anything from, in tree order: most calls of model code
    are none of the callees it knows and pass no disable_dropout."""
    known = {name for name in idx.calls_by_name if name and _known_callee(name)}
    switches = {id(idx.parents.get(kw)) for kw in idx.of(ast.keyword) if kw.arg == "disable_dropout"}
    return [call for call, name in zip(idx.calls, idx.call_names) if name in known or (name and id(call) in switches)]


@functools.lru_cache(maxsize=4096)
def _known_callee(name: str) -> bool:
    """A callee _from_call reads by its name (a PEFT config, a trainer or its config, a model
    or config load, argparse), decided once per name."""
    return bool(_PEFT_CONFIG.search(name) or _TRAINER_NAME.match(name) or name.endswith("Config") or name in _HF_TRAINERS
                or name in _SETTING_METHODS or name in ("add_argument", "get_peft_model", "from_pretrained"))


def _from_call(src: Source, module: PyModule, call: ast.Call) -> None:
    name = last_name(call.func)
    fields = src.fields
    if not name:
        return
    if _PEFT_CONFIG.search(name) or name == "get_peft_model":
        if "finetune" not in fields:
            fields["finetune"] = Field("lora", module.span(call.func), (name,))
    if name in _HF_TRAINERS and "trainer_class" not in fields:  # the plan names it (not a preference trainer)
        fields["trainer_class"] = Field(name, module.span(call.func), (name,))
    m = _TRAINER_NAME.match(name)
    if m:
        trainer = _TRAINER_KEYS[m.group(1).lower()]
        current = fields.get("trainer")
        if current is None or (current.value == "sft" and trainer != "sft"):
            fields["trainer"] = Field(trainer, module.span(call.func), (name,))
    dd = kwarg(call, "disable_dropout")
    if dd is not None and "disable_dropout" not in fields:
        ok, value = constant(dd.value)
        if ok and isinstance(value, bool):
            fields["disable_dropout"] = Field(value, module.span(dd.value), (name, "disable_dropout"))
    if name == "from_pretrained":
        _model_reference(src, module, call)
    if name == "add_argument":
        _from_argparse(src, module, call)
        return
    if name in TRAINING_ARGS:
        return  # dropout kwargs there are invalid (DRP110), not settings
    if not (name.endswith("Config") or name in _SETTING_METHODS):
        return
    owner = _owner(call.func)
    for kw in call.keywords:
        if kw.arg and dropout_keys.is_rate_key(kw.arg):
            _add(src, module, kw.arg, (owner, kw.arg), kw.value, kw_span(module, kw))


# Classes whose from_pretrained names the model being trained (PeftModel.from_pretrained names
# an adapter, and its first argument is a model object anyway).
_MODEL_OWNER = re.compile(r"^(Auto(?![Ee]ncoder)\w*|Fast(Language|Vision)?Model|[A-Z]\w*(For[A-Z]\w*|Model|Config|LMHeadModel))$")
_SECONDARY_OWNER = re.compile(r"(Tokenizer|Processor|FeatureExtractor)\w*$")


def _model_reference(src: Source, module: PyModule, call: ast.Call) -> None:
    """Record the model a from_pretrained call names: its first argument as a literal, or a
    name bound to exactly one string literal in the file. Tokenizer and processor loads name
    the same model often enough to be used, after the model and config loads."""
    owner = last_name(call.func.value) if isinstance(call.func, ast.Attribute) else ""
    secondary = bool(_SECONDARY_OWNER.search(owner))
    if owner.startswith("Peft") or not (secondary or _MODEL_OWNER.match(owner)):
        return
    if imported_from(module, owner)[0].startswith("diffusers"):
        return  # UNet2DConditionModel, a pipeline's parts: no Transformers config to resolve
    kw = kwarg(call, "pretrained_model_name_or_path") or kwarg(call, "model_name")
    node = kw.value if kw is not None else (call.args[0] if call.args else None)
    value = string_of(module, node) if node is not None else None
    if not value:
        return
    revision = kwarg(call, "revision")
    rev = string_of(module, revision.value) if revision is not None else None
    remote = kwarg(call, "trust_remote_code")
    if remote is not None and "trust_remote_code" not in src.fields:
        ok, on = constant(remote.value)
        if not ok or on is not False:  # a literal False is the only way to say no
            src.fields["trust_remote_code"] = Field(True, kw_span(module, remote), ("from_pretrained", "trust_remote_code"))
    concrete = None if owner.startswith(("Auto", "Fast")) or secondary else owner
    refs = src.fields.setdefault("model_refs", Field([], module.span(node), ("from_pretrained",)))
    refs.value.append((value, module.span(node), concrete, rev, secondary))


def _order_references(src: Source) -> None:
    """Model and config loads first, then tokenizer/processor loads; base_model is the first."""
    refs = src.fields.get("model_refs")
    if refs is None:
        return
    ordered = sorted(refs.value, key=lambda r: int(r[4]))
    refs.value = [r[:4] for r in ordered]
    written = {r[0] for r in ordered if r[4] != 2}
    defaults = tuple(dict.fromkeys(r[0] for r in ordered if r[4] == 2 and r[0] not in written))
    if defaults:  # argparse/dataclass defaults: a launch line that sets the flag replaces them
        src.fields["model_ref_defaults"] = Field(defaults, refs.span, ("default",))
    first = refs.value[0]
    src.fields.setdefault("base_model", Field(first[0], first[1], ("from_pretrained",)))


def string_of(module: PyModule, node: ast.AST) -> str | None:
    """A string literal, or a name every assignment in the file binds to the same literal."""
    ok, value = constant(node)
    if ok:
        return value if isinstance(value, str) else None
    if not isinstance(node, ast.Name):
        return None
    values = set()
    for other in module.index.assigns.get(node.id, ()):  # every assignment to the name, and more
        if isinstance(other, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id for t in other.targets):
            ok, value = constant(other.value)
            values.add(value if ok and isinstance(value, str) else None)
        elif isinstance(other, ast.AnnAssign) and isinstance(other.target, ast.Name) and other.target.id == node.id:
            ok, value = constant(other.value) if other.value is not None else (False, None)
            values.add(value if ok and isinstance(value, str) else None)
    return values.pop() if len(values) == 1 else None


def _owner(func: ast.AST) -> str:
    parts = dotted(func).split(".")
    return ".".join(parts[-2:]) if len(parts) > 1 and parts[-1] in _SETTING_METHODS else parts[-1]


def kw_span(module: PyModule, kw: ast.keyword) -> Span:
    """The `name` of `name=value` (ast's keyword node spans both)."""
    span = module.span(kw)
    end = span.start + len(kw.arg)
    return Span(span.line, span.column, span.line, span.column + len(kw.arg), span.start, end)


def _from_argparse(src: Source, module: PyModule, call: ast.Call) -> None:
    option = None
    for a in call.args:
        ok, value = constant(a)
        if ok and isinstance(value, str) and value.startswith("-"):
            if option is None or value.startswith("--"):
                option = (a, value)
    default = kwarg(call, "default")
    if option is None or default is None:
        return
    node, flag = option
    key = flag.lstrip("-")
    if key.replace("-", "_") in MODEL_ARGUMENTS:
        _default_reference(src, module, default.value, key.replace("-", "_"))
    if not dropout_keys.is_rate_key(key):
        return
    # argparse passes a string default through `type`, so "0.1" with type=float is a number.
    _add(src, module, key, ("argparse", flag), default.value, module.span(node), numeric_strings=True)


# Argument names whose default names the model (HfArgumentParser ModelArguments, argparse).
MODEL_ARGUMENTS = frozenset({"model_name_or_path", "base_model", "model_name", "pretrained_model_name_or_path"})


def _field_default(value: ast.AST):
    if isinstance(value, ast.Call) and last_name(value.func) == "field":
        kw = kwarg(value, "default")
        return kw.value if kw is not None else None
    return value


def _default_reference(src: Source, module: PyModule, node, key: str = "") -> None:
    """A model argument's default: used only when no from_pretrained call names a literal
    model (it is what runs when the script is launched without the flag). `--model_name` often
    picks an architecture the script builds itself (`default="narm"`): only a hub id or a path
    there names pretrained weights."""
    ok, value = constant(node) if node is not None else (False, None)
    if key == "model_name" and ok and isinstance(value, str) and "/" not in value and not value.startswith("."):
        return
    if ok and isinstance(value, str) and value:
        refs = src.fields.setdefault("model_refs", Field([], module.span(node), ("default",)))
        refs.value.append((value, module.span(node), None, None, 2))


def _is_dataclass(node: ast.ClassDef) -> bool:
    for d in node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        if last_name(target) == "dataclass":
            return True
    return False


def _from_dataclass(src: Source, module: PyModule, cls: ast.ClassDef) -> None:
    """Dataclass fields are the defaults HfArgumentParser and config classes start from."""
    for stmt in cls.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None):
            continue
        key = stmt.target.id
        if key in MODEL_ARGUMENTS:
            _default_reference(src, module, _field_default(stmt.value), key)
        if not dropout_keys.is_rate_key(key):
            continue
        value = stmt.value
        if isinstance(value, ast.Call) and last_name(value.func) == "field":
            kw = kwarg(value, "default")
            if kw is None:
                continue
            value = kw.value
        if isinstance(value, ast.Constant) and value.value is None:
            continue  # a field left unset (a vendored LoraConfig's default=None): no value is passed yet (#25)
        _add(src, module, key, (cls.name, key), value, module.span(stmt.target))


def _add(src: Source, module: PyModule, key: str, key_path: tuple, node: ast.AST, key_span: Span,
         numeric_strings: bool = False) -> None:
    role = dropout_keys.role_of(key)
    ok, value = constant(node)
    vspan = module.span(node)
    raw = module.text[vspan.start:vspan.end]
    if ok:
        if isinstance(value, bool) and role != "lora":
            return  # a switch in that codebase, as in the YAML reader
        if dropout_keys.setting_reason(key, value):
            return  # `layer_dropout_start=4`: an integer where no schema declares a rate (#25)
        if numeric_strings and isinstance(value, str) and probability.number_from_text(value) is not None:
            p, reason = probability.number_from_text(value), None
        else:
            p, reason = probability.classify(value, quoted=isinstance(value, str))
    else:
        value, p, reason = raw, None, "expression"
    src.settings.append(Setting(
        path=src.path, key=key, key_path=key_path, role=role, raw=raw, value=value, p=p, reason=reason,
        key_span=key_span, value_span=vspan, origin="code", canonical=dropout_keys.canonical(key),
    ))
