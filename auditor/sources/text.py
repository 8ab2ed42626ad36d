"""Reading files as text, with the limits a pre-commit hook needs to never hang or crash."""

from __future__ import annotations

import os

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024  # configs are small; tokenizer dumps are not configs


class FileProblem(Exception):
    """A file that cannot be read as text; the message is shown to the user as is."""


def read_text(path: str, max_size: int = DEFAULT_MAX_FILE_SIZE) -> str:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise FileProblem(f"cannot read file: {exc.strerror or exc}") from None
    if size > max_size:
        raise FileProblem(f"file is {size} bytes, over the {max_size}-byte limit (--max-file-size)")
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_size + 1)
    except OSError as exc:
        raise FileProblem(f"cannot read file: {exc.strerror or exc}") from None
    return decode(data)


def decode(data: bytes) -> str:
    """Bytes already read (the cache hashes them first) to text, with read_text's checks."""
    if b"\x00" in data:
        raise FileProblem("file contains NUL bytes (binary file)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"file is not valid UTF-8 (byte {exc.start})") from None
    return text


def line_starts(text: str) -> list:
    starts = [0]
    pos = text.find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts
