"""Text a report can hold whatever the file name or the file said.

A path is bytes on POSIX: a name that is not UTF-8 reaches Python as lone surrogates
(surrogateescape), which no UTF-8 stream can write, so SARIF crashed and JSON carried a lone
surrogate. Messages quote values from files, which can hold control characters (a JSON
"\\u001b" escape is an ESC once parsed): printed raw, an escape sequence can retitle the
terminal or hide the line before it. Every reporter passes its text through one of these:

- `unicode_safe`: valid Unicode; an escaped byte shows as `\\xNN`, another lone surrogate
  as `\\uNNNN` (JSON, SARIF, GitLab);
- `terminal_safe`: also control characters (C0, DEL, C1) and bidirectional overrides shown
  escaped (full, concise, GitHub annotations);
- `xml_safe`: also what XML 1.0 cannot hold at all (JUnit).

A name that needed escaping keeps its exact bytes in JSON (`raw_bytes`).
"""

from __future__ import annotations

import os

from auditor.core.lazy_regex import LazyRegex

_SURROGATES = LazyRegex("[\ud800-\udfff]")
_TERMINAL = LazyRegex("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NOT_XML = LazyRegex("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TERMINAL_OR_NOT_XML = LazyRegex(f"{_TERMINAL.args[0]}|{_NOT_XML.args[0]}")


def _escaped(match) -> str:
    ch = match.group(0)
    n = ord(ch)
    if 0xDC80 <= n <= 0xDCFF:  # a byte surrogateescape could not decode
        return f"\\x{n - 0xDC00:02x}"
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def unicode_safe(text: str) -> str:
    if text.isascii():
        return text
    return _SURROGATES.sub(_escaped, text)


def terminal_safe(text: str) -> str:
    if text.isprintable():
        return text
    return _TERMINAL.sub(_escaped, text)


def xml_safe(text: str, keep_newlines: bool = True) -> str:
    """XML 1.0 text, escaped for a terminal too (a JUnit body ends up in a CI log)."""
    if text.isprintable():
        return text
    out = _TERMINAL_OR_NOT_XML.sub(lambda m: m.group(0) if keep_newlines and m.group(0) == "\n" else _escaped(m),
                                   text)
    return out


def raw_bytes(path: str) -> bytes | None:
    """The path's exact bytes when its text form had to be escaped, else None."""
    if path.isascii() or _SURROGATES.search(path) is None:
        return None
    return os.fsencode(path)


def deep(value, clean=unicode_safe):
    """Every string in a JSON-ready structure passed through `clean`."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {deep(k, clean): deep(v, clean) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [deep(v, clean) for v in value]
    return value
