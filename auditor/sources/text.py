"""Reading files as text, with the limits a pre-commit hook needs to never hang or crash.

The size check is made on the descriptor actually opened (fstat), not on the name, so a
file swapped between discovery and reading cannot slip past the limit; the file is opened
non-blocking and must be a regular file, so a FIFO or device named `config.yaml` cannot
stall the run waiting for a writer.

Every read of a file by name comes through `read_bytes`, so this is also where an editor's
unsaved buffers enter (`auditor/server`): a file open in the editor is read from its buffer,
and a setup that links to it (a recipe beside its adapter_config.json, a script loading a local
config.json) sees what the user is typing, not the last save. Outside the language server the
table is empty and every read goes to the disk.

Imports inside functions (`hashlib`) are deferred for start-up time: a run that never takes that
path never pays for them.
"""

from __future__ import annotations

import errno
import os
import stat

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024  # configs are small; tokenizer dumps are not configs

UNREADABLE = "DRP001"  # a file that should have been audited and could not be
SKIPPED = "DRP004"     # a path that was deliberately not audited (link, vanished file, over the size limit)

# Files that are data by their name, never configuration: a tokenizer's BPE model even has a
# `dropout` key, which is BPE-dropout, not a model's. Skipped without reading, and quietly:
# tokenizer.json runs to tens of megabytes in every model folder.
DATA_FILE_NAMES = frozenset({
    "tokenizer.json", "vocab.json", "added_tokens.json", "special_tokens_map.json",
    "model.safetensors.index.json", "pytorch_model.bin.index.json", "trainer_state.json",
})


def is_data_file(name: str) -> bool:
    """True for a file named as data (see DATA_FILE_NAMES), or a weights index."""
    name = name.lower()
    return name in DATA_FILE_NAMES or name.endswith((".safetensors.index.json", ".bin.index.json"))


class FileProblem(Exception):
    """A file that cannot be read as text; the message is shown to the user as is."""

    def __init__(self, message: str, code: str = UNREADABLE):
        super().__init__(message)
        self.code = code


def _link_problem(path: str) -> FileProblem | None:
    """Links are reported for what they are; 'No such file' would blame the wrong thing."""
    if not os.path.islink(path):
        return None
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return FileProblem(f"skipped: symbolic link loop ({target})", SKIPPED)
        return FileProblem(f"skipped: broken symbolic link (target {target} does not exist)", SKIPPED)
    return None


_BUFFERS = {}  # absolute path -> the text of an unsaved editor buffer (auditor/server)


def _buffer_key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def set_buffer(path: str, text: str | None) -> None:
    """Read `path` from `text` instead of the disk (None: from the disk again)."""
    if text is None:
        _BUFFERS.pop(_buffer_key(path), None)
    else:
        _BUFFERS[_buffer_key(path)] = text


def buffer_of(path: str) -> str | None:
    return _BUFFERS.get(_buffer_key(path)) if _BUFFERS else None


def read_text(path: str, max_size: int = DEFAULT_MAX_FILE_SIZE) -> str:
    return decode(read_bytes(path, max_size))


def read_bytes(path: str, max_size: int = DEFAULT_MAX_FILE_SIZE) -> bytes:
    """The file's bytes, never blocking (a FIFO named recipe.yaml must not hang a hook) and
    never more than max_size; raises FileProblem with the reason. An editor buffer set for the
    path is read instead of the disk, with the same size limit."""
    if _BUFFERS:
        buffered = _BUFFERS.get(_buffer_key(path))
        if buffered is not None:
            data = buffered.encode("utf-8", "surrogatepass")
            if len(data) > max_size:
                raise FileProblem(f"file is {len(data)} bytes, over the {max_size}-byte limit (--max-file-size)")
            return data
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        problem = _link_problem(path)
        if problem is not None:
            raise problem from None
        if exc.errno == errno.ENOENT:
            raise FileProblem("skipped: the file disappeared before it could be read", SKIPPED) from None
        raise FileProblem(f"cannot read file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise FileProblem(f"cannot read file: it is {kind}")
        if info.st_size > max_size:  # a dataset or tokenizer dump, not a config: noted, never an error
            raise FileProblem(f"skipped: file is {info.st_size} bytes, over the {max_size}-byte limit "
                              "(--max-file-size); configurations are small, data files are not", SKIPPED)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_size + 1)
    except OSError as exc:
        raise FileProblem(f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > max_size:  # grew after fstat
        raise FileProblem(f"skipped: file is over the {max_size}-byte limit (--max-file-size)", SKIPPED)
    return data


def decode(data: bytes) -> str:
    """Bytes already read (the cache hashes them first) to text, with read_text's checks."""
    if b"\x00" in data:
        raise FileProblem("file contains NUL bytes (binary file)")
    if data.startswith(b"\xef\xbb\xbf"):  # a BOM, dropped as the utf-8-sig codec drops it
        data = data[3:]                   # (that codec is one more module to import per run)
    try:
        text = data.decode("utf-8")
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


def text_digest(text: str) -> str:
    """The digest --fix compares a file against (suppress.py records it, fix.py checks it).
    hashlib is imported inside: it loads OpenSSL (~3 ms), which a plain check never needs."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
