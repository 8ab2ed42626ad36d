"""The reader for launch scripts: dropout flags on command lines (`--lora_dropout 0.1`).

Shell is not parsed as a language: only `--flag value` and `--flag=value` words are read,
because those are what reach HfArgumentParser/argparse/fire in the launched program. The
value is a CLI word, so `0.1` and `"0.1"` are both numbers to the program that receives it;
`$VAR` and `${VAR}` are resolved at run time and become templates.
"""

from __future__ import annotations

import re

from auditor import dropout_keys, probability
from auditor.model import Field, Setting, Source, Span

SUFFIXES = (".sh",)

_FLAG = re.compile(
    r"(?<![\w-])(--[A-Za-z0-9_][A-Za-z0-9_.-]*)"        # the flag
    r"(?:=|[ \t]+)"                                     # = or blanks
    r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s\\;|&)\"']+)"        # one shell word
)
_LORA_FLAG = re.compile(r"--(lora_|lora-|use_peft|use-peft|peft)")


def read(path: str, text: str) -> Source | None:
    if "drop" not in text.lower():
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
        if "finetune" not in src.fields:
            lm = _LORA_FLAG.search(code)
            if lm:
                src.fields["finetune"] = Field("lora", _span(lineno, start, lm.start(1) if lm.lastindex else lm.start(), lm.end()))
    return src if src.settings else None


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


def _add(src: Source, m, lineno: int, line_start: int) -> None:
    flag = m.group(1)
    key = flag.lstrip("-").split(".")[-1]
    if not dropout_keys.is_rate_key(key):
        return
    word = m.group(2)
    quoted = word[:1] in "\"'"
    value = word[1:-1] if quoted else word
    if probability.is_template(value) or value.startswith("$"):
        p, reason = None, "template"
    else:
        number = probability.number_from_text(value)
        p, reason = (number, None) if number is not None else probability.classify(value, quoted=True)
        if reason == "string" and dropout_keys.is_setting_word(key, value):
            return  # `--dropout_position pre` is a setting, not a rate
    role = dropout_keys.role_of(key)
    src.settings.append(Setting(
        path=src.path, key=key, key_path=("cli", flag), role=role, raw=word, value=value, p=p, reason=reason,
        key_span=_span(lineno, line_start, m.start(1), m.end(1)),
        value_span=_span(lineno, line_start, m.start(2), m.end(2)),
        origin="cli", canonical=dropout_keys.canonical(key),
    ))
