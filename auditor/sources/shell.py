"""The reader for launch scripts: dropout flags on command lines (`--lora_dropout 0.1`).

Shell is not parsed as a language: only `--flag value` and `--flag=value` words are read,
because those are what reach HfArgumentParser/argparse/fire in the launched program. The
value is a CLI word, so `0.1` and `"0.1"` are both numbers to the program that receives it;
`$VAR` and `${VAR}` are resolved at run time and become templates.

`launches(text)` splits the script into command lines (continuations joined, comments and
environment assignments dropped) and returns what each launches: the program (past wrappers such
as deepspeed, torchrun, `accelerate launch`, `python -m`), its subcommand, the script or recipe
argument, its `--flags` and its Hydra `a.b.c=value` overrides, each with an exact span. The
framework profiles (knowledge/frameworks.json) turn a launch into the facts the resolver needs:
which framework and trainer run, and whether the run is LoRA or full.

Imports inside functions (`bisect`, `knowledge.frameworks`) are deferred for start-up time: a
run that never takes that path never pays for them.
"""

from __future__ import annotations

import bisect
import os
import re

from auditor.core import probability
from auditor.core.model import Field, Setting, Source, Span
from auditor.core.record import Record
from auditor.knowledge import dropout_keys

_FLAG = re.compile(
    r"(?<![\w-])(--[A-Za-z0-9_][A-Za-z0-9_.-]*)"        # the flag
    r"(?:=|[ \t]+)"                                     # = or blanks
    r"(?!--)(\"[^\"\n]*\"|'[^'\n]*'|[^\s\\;|&)\"']+)"  # one shell word, not the next flag
)
# Flags naming the model whatever runs them: HfArgumentParser/argparse names, DeepSpeed-Chat's
# step-3 actor (training/step3_rlhf_finetuning/main.py), diffusers scripts' pretrained name,
# fairseq's checkpoint to fine-tune from (fairseq/dataclass/configs.py CheckpointConfig).
# A framework's own model flag (ms-swift --model, OpenRLHF --pretrain) is in its profile.
_MODEL_FLAG = re.compile(r"(?<![\w-])--(model_name_or_path|model-name-or-path|base_model|base-model|"
                         r"actor_model_name_or_path|actor-model-name-or-path|pretrained_model_name_or_path|"
                         r"pretrained-model-name-or-path|finetune_from_model|finetune-from-model|restore_file|"
                         r"restore-file)(?:=|[ \t]+)"
                         r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s\\;|&)\"']+)")
_LORA_FLAG = re.compile(r"--(lora_|lora-|use_peft|use-peft|peft)")


def read(path: str, text: str, *, folded: bool = False) -> Source | None:
    """folded: the text is a YAML scalar's, where line breaks fold into spaces (a launcher
    YAML's `arguments:`), so a line break does not end a command."""
    low = text.lower()
    if "drop" not in low and "lora" not in low:
        return None
    src = Source(path=path, kind="shell", dialect="shell", text=text)
    line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
    for lineno, start in enumerate(line_starts, 1):
        end = text.find("\n", start)
        line = text[start:] if end < 0 else text[start:end]
        code = _strip_comment(line)
        if "drop" in code.lower():
            for m in _FLAG.finditer(code):
                _add(src, m, lineno, start)
        if "base_model" not in src.fields:
            mm = _MODEL_FLAG.search(code)
            if mm:
                word = mm.group(2)
                value = word[1:-1] if word[:1] in "\"'" else word
                src.fields["base_model"] = Field(value, _span(lineno, start, mm.start(2), mm.end(2)), ("cli", mm.group(1)))
        if "finetune" not in src.fields:
            lm = _LORA_FLAG.search(code)
            if lm:
                src.fields["finetune"] = Field("lora", _span(lineno, start, lm.start(1) if lm.lastindex else lm.start(), lm.end()))
    _read_launches(src, text, folded)
    if any(s.reason == "template" for s in src.settings):
        _resolve_variables(src, text, line_starts)
    if src.settings:
        return src
    # a recognised LoRA launch without dropout flags still trains with its framework's default
    lora = src.get("framework") and str(src.get("finetune") or "full") not in ("full", "freeze")
    return src if lora else None


def read_regions(path: str, text: str, regions: list) -> Source | None:
    """The launch lines held in parts of another file (a Beaker-style YAML's `command:` and
    `arguments:` scalars): everything outside the regions is blanked, keeping every offset and
    line, so spans point into the file as stored."""
    keep = bytearray(len(text))
    for start, end in regions:
        keep[start:end] = b"\x01" * (end - start)
    masked = "".join(ch if keep[i] or ch == "\n" else " " for i, ch in enumerate(text))
    return read(path, masked, folded=True)


def _strip_comment(line: str) -> str:
    """Cut a `#` comment that starts a word and is not inside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def _span(lineno: int, line_start: int, a: int, b: int) -> Span:
    return Span(lineno, a + 1, lineno, b + 1, line_start + a, line_start + b)


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _rate(key: str, value: str):
    """(p, reason) of a value written on a command line; None when a dropout-named key holds a
    word that makes it a setting (`--dropout_position pre`), not a rate."""
    if probability.is_template(value) or value.startswith("$"):
        return None, "template"
    number = probability.number_from_text(value)
    p, reason = (number, None) if number is not None else probability.classify(value, quoted=True)
    if reason == "string" and dropout_keys.is_setting_word(key, value):
        return None
    if number is not None and _INTEGER.fullmatch(value) and dropout_keys.setting_reason(key, int(value)):
        return None  # `++model.encoder.layer_index_dropout=4`: an integer where no schema declares a rate (#25)
    return p, reason


_ASSIGNMENT = re.compile(r"^[ \t]*(?:export[ \t]+|local[ \t]+|readonly[ \t]+|declare[ \t]+)?([A-Za-z_]\w*)=(\S*)", re.M)
_VARIABLE = re.compile(r"\$\{?([A-Za-z_]\w*)\}?")


def _resolve_variables(src: Source, text: str, line_starts: list) -> None:
    """`--lora_dropout ${lora_dropout}` after `lora_dropout=0.05` in the same script is 0.05,
    judged where the number is written (#25). Only a variable assigned once in the file, to a
    plain number, before its use: anything else (a loop variable, an argument, the environment)
    stays a template."""
    assigned: dict = {}
    for m in _ASSIGNMENT.finditer(text):
        assigned.setdefault(m.group(1), []).append(m)
    for s in src.settings:
        if s.reason != "template":
            continue
        use = _VARIABLE.fullmatch(s.raw.strip("\"'"))
        found = assigned.get(use.group(1)) if use else None
        if not found or len(found) != 1 or found[0].start() > s.value_span.start:
            continue
        m = found[0]
        word = m.group(2)
        value = word[1:-1] if word[:1] in "\"'" and word[-1:] == word[:1] else word
        number = probability.number_from_text(value)
        if number is None:
            continue
        lineno = bisect.bisect_right(line_starts, m.start(2))
        start = line_starts[lineno - 1]
        s.value, s.p, s.reason = value, number, None
        s.raw = f"{word} (via {s.raw}, line {s.value_span.line})"
        s.value_span = _span(lineno, start, m.start(2) - start, m.end(2) - start)


def _add(src: Source, m, lineno: int, line_start: int) -> None:
    flag = m.group(1)
    key = flag.lstrip("-").split(".")[-1]
    if not dropout_keys.is_rate_key(key):
        return
    word = m.group(2)
    quoted = word[:1] in "\"'"
    value = word[1:-1] if quoted else word
    rate = _rate(key, value)
    if rate is None:
        return
    p, reason = rate
    role = "lora" if "lora" in flag.lower() else dropout_keys.role_of(key)
    src.settings.append(Setting(
        path=src.path, key=key, key_path=("cli", flag), role=role, raw=word, value=value, p=p, reason=reason,
        key_span=_span(lineno, line_start, m.start(1), m.end(1)),
        value_span=_span(lineno, line_start, m.start(2), m.end(2)),
        origin="cli", canonical=dropout_keys.canonical(key),
    ))


# ------------------------------------------------------------------------------ launch lines

class Arg(Record):
    """One command-line argument: its value as the program receives it (a string, or True
    for a bare flag), and where it is."""

    __slots__ = ("value", "span")

    def __init__(self, value, span: Span):
        self.value = value
        self.span = span


class Launch(Record):
    """What one command line launches (the structure other readers build links on)."""

    __slots__ = ("program", "launcher", "subcommand", "script", "flags", "overrides", "span", "extent", "words")

    def __init__(self,
                 program: str,                    # swift, trl, train.py, openrlhf.cli.train_dpo, ...
                 launcher: tuple = (),            # wrappers before it: deepspeed, torchrun, python -m ...
                 subcommand: str | None = None,   # `swift rlhf`, `trl dpo`
                 script: Arg | None = None,       # the script or recipe argument (.py/.yaml/.json)
                 flags: dict | None = None,       # name without dashes -> Arg
                 overrides: dict | None = None,   # Hydra a.b.c=value (leading + kept off) -> Arg
                 span: Span | None = None,        # the program word
                 extent: tuple = (0, 0),          # character offsets of the whole command line
                 words: list | None = None):      # (word, Span) after the program, in order, quotes removed
        self.program = program
        self.launcher = launcher
        self.subcommand = subcommand
        self.script = script
        self.flags = {} if flags is None else flags
        self.overrides = {} if overrides is None else overrides
        self.span = span
        self.extent = extent
        self.words = [] if words is None else words


_SEPARATORS = (";", "&&", "||", "|", "&", "(", ")")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_OVERRIDE = re.compile(r"\+{0,2}([A-Za-z_][\w-]*(?:\.[\w-]+)*)=(.*)", re.S)
_SCRIPT_SUFFIXES = (".py", ".yaml", ".yml", ".json", ".toml")
_WRAPPERS = frozenset({"nohup", "env", "time", "sudo", "exec", "srun", "mpirun"})


def _words(text: str, folded: bool = False):
    """Shell words as (word, start, end), with None marking the end of a command."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and text.startswith("\\\n", i):
            i += 2
            continue
        if ch in " \t\r" or (folded and ch == "\n"):
            i += 1
            continue
        if ch == "\n":
            yield None
            i += 1
            continue
        if ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        sep = next((s for s in _SEPARATORS if text.startswith(s, i)), None)
        if sep:
            yield None
            i += len(sep)
            continue
        start, out, quote = i, [], None
        while i < n:
            ch = text[i]
            if quote:
                if ch == quote:
                    quote = None
                else:
                    out.append(ch)
            elif ch in "\"'":
                quote = ch
            elif ch == "\\" and i + 1 < n:
                if text[i + 1] != "\n":
                    out.append(text[i + 1])
                i += 2
                continue
            elif ch in " \t\r\n;&|()":
                break
            else:
                out.append(ch)
            i += 1
        yield "".join(out), start, i


def _commands(text: str, folded: bool = False):
    cmd = []
    for w in _words(text, folded):
        if w is None:
            if cmd:
                yield cmd
            cmd = []
        else:
            cmd.append(w)
    if cmd:
        yield cmd


def launches(text: str, folded: bool = False) -> list:
    """Every command line of a script that launches a program, in order."""
    line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
    out = []
    for cmd in _commands(text, folded):
        launch = _launch(cmd, text, line_starts)
        if launch is not None:
            out.append(launch)
    return out


def _offset_span(text: str, line_starts: list, a: int, b: int) -> Span:
    import bisect

    la = bisect.bisect_right(line_starts, a) - 1
    lb = bisect.bisect_right(line_starts, max(a, b - 1)) - 1
    return Span(la + 1, a - line_starts[la] + 1, lb + 1, b - line_starts[lb] + 1, a, b)


def _launch(cmd: list, text: str, line_starts: list) -> Launch | None:
    from auditor.knowledge import frameworks

    words = list(cmd)
    while words and (_ENV.match(words[0][0]) or words[0][0] in _WRAPPERS or words[0][0] == "export"):
        if words[0][0] == "export":
            return None
        words.pop(0)
    if not words:
        return None
    launcher = []
    launchers = frameworks.launcher_programs()
    prog_index = 0
    name = os.path.basename(words[0][0])
    if name in launchers or re.fullmatch(r"python3?(\.\d+)?", name):
        launcher.append(name)
        j = 1
        prog_index = None
        while j < len(words):
            w = words[j][0]
            if w in ("-m", "--module") and j + 1 < len(words):
                launcher.append("-m")
                prog_index = j + 1
                break
            if w.endswith(".py"):
                prog_index = j
                break
            if not w.startswith("-") and "=" not in w and os.path.basename(w) in frameworks.known_programs():
                prog_index = j
                break
            j += 1
        if prog_index is None:
            return None
    program_word = words[prog_index]
    launch = Launch(program=program_word[0], launcher=tuple(launcher),
                    span=_offset_span(text, line_starts, program_word[1], program_word[2]),
                    extent=(words[0][1], words[-1][2]))
    rest = words[prog_index + 1:]
    launch.words = [(w, _offset_span(text, line_starts, a, b)) for w, a, b in rest]
    k = 0
    while k < len(rest):
        w, a, b = rest[k]
        if w.startswith("--") and len(w) > 2:
            if "=" in w:
                name, value = w[2:].split("=", 1)
                eq = a + w.index("=") + 1 if text[a:b].startswith(w[:w.index("=") + 1]) else a
                launch.flags[name] = Arg(value, _offset_span(text, line_starts, eq, b))
            elif k + 1 < len(rest) and not rest[k + 1][0].startswith("--"):
                v, va, vb = rest[k + 1]
                launch.flags[w[2:]] = Arg(v, _offset_span(text, line_starts, va, vb))
                k += 1
            else:
                launch.flags[w[2:]] = Arg(True, _offset_span(text, line_starts, a, b))
        elif not w.startswith("-") and _OVERRIDE.fullmatch(w):
            m = _OVERRIDE.fullmatch(w)
            raw = text[a:b]
            eq = raw.find("=")
            launch.overrides[m.group(1)] = Arg(m.group(2), _offset_span(text, line_starts, a + eq + 1, b))
            if m.group(1) == "config" and launch.script is None:
                launch.script = Arg(m.group(2), _offset_span(text, line_starts, a + eq + 1, b))
        elif not w.startswith("-"):
            if w.lower().endswith(_SCRIPT_SUFFIXES) and launch.script is None:
                launch.script = Arg(w, _offset_span(text, line_starts, a, b))
            elif launch.subcommand is None and launch.script is None and not launch.flags and re.fullmatch(r"[a-z][a-z_-]*", w):
                launch.subcommand = w
        k += 1
    return launch


def _read_launches(src: Source, text: str, folded: bool) -> None:
    """Framework, trainer and fine-tune method from the first launch a profile recognises, and
    the dropout rates among Hydra overrides (`worker.actor.model.lora.dropout=0.1`)."""
    from auditor.knowledge import frameworks

    found = launches(text, folded)
    for launch in found:
        for name, arg in launch.overrides.items():
            key = name.split(".")[-1]
            if dropout_keys.is_rate_key(key) and isinstance(arg.value, str):
                _add_override(src, name, key, arg)
    for launch in found:
        arg = launch.flags.get("trust_remote_code") or launch.flags.get("trust-remote-code")
        if arg is not None and (arg.value is True or str(arg.value).lower() == "true"):
            src.fields.setdefault("trust_remote_code", Field(True, arg.span, ("cli", "trust_remote_code")))
    for launch in found:
        facts = frameworks.recognise_launch(launch)
        if facts is None:
            continue
        for name, (value, span) in facts.items():
            if name == "finetune" and "finetune" in src.fields and span is None:
                continue  # a --lora_* flag says LoRA; only a stated selector (--tuner_type full) overrides it
            src.fields[name] = Field(value, span or launch.span)
        _framework_model(src, frameworks.profile(facts["framework"][0]), launch)
        arg = launch.flags.get("disable_dropout")
        if arg is not None and str(arg.value).lower() in ("true", "false"):
            src.fields["disable_dropout"] = Field(str(arg.value).lower() == "true", arg.span)
        break


def _framework_model(src: Source, prof: dict, launch: Launch) -> None:
    """The model a framework's own flag or Hydra override names (`swift sft --model X`,
    `actor_rollout_ref.model.path=X`), from its profile's `model_flags`."""
    if "base_model" in src.fields:
        return
    for flag in prof.get("model_flags", ()):
        arg = launch.flags.get(flag) or launch.overrides.get(flag)
        if arg is not None and isinstance(arg.value, str) and arg.value:
            src.fields["base_model"] = Field(arg.value, arg.span, ("cli", flag))
            return


def _add_override(src: Source, name: str, key: str, arg: Arg) -> None:
    value = arg.value
    rate = _rate(key, value)
    if rate is None:
        return
    p, reason = rate
    raw = src.text[arg.span.start:arg.span.end]
    role = "lora" if "lora" in name.lower() else dropout_keys.role_of(key)
    key_span = Span(arg.span.line, max(1, arg.span.column - len(name) - 1), arg.span.line, arg.span.column - 1,
                    arg.span.start - len(name) - 1, arg.span.start - 1)
    src.settings.append(Setting(
        path=src.path, key=key, key_path=("cli", name), role=role, raw=raw, value=value, p=p, reason=reason,
        key_span=key_span, value_span=arg.span, origin="cli", canonical=dropout_keys.canonical(key)))
