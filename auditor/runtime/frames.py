"""The user's frame: where in the user's own code a dropout application started.

A dropout call is reached through torch, Transformers, a trainer and this tool; the frame worth
naming is the innermost one in none of them: the user's model code that called `F.dropout`, or
the training script line that started the evaluation. Installed libraries (site-packages), the
standard library and this package are "not the user".
"""

from __future__ import annotations

import linecache
import os
import site
import sys
import sysconfig

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _library_roots() -> tuple:
    roots = {_PACKAGE}
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            roots.add(os.path.abspath(paths[key]) + os.sep)
    for directory in (getattr(site, "getsitepackages", lambda: [])() + [site.getusersitepackages()]):
        roots.add(os.path.abspath(directory) + os.sep)
    return tuple(sorted(roots))


LIBRARY_ROOTS = _library_roots()


def is_library(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return True
    name = os.path.abspath(filename)
    return name.startswith(LIBRARY_ROOTS) or f"{os.sep}site-packages{os.sep}" in name \
        or f"{os.sep}dist-packages{os.sep}" in name


class UserFrame:
    """file, line, function and source text of one frame (kept as plain values: frames hold
    every local of the run alive)."""

    __slots__ = ("file", "line", "function", "text")

    def __init__(self, file: str, line: int, function: str, text: str):
        self.file, self.line, self.function, self.text = file, line, function, text

    def __str__(self) -> str:
        where = f"{self.file}:{self.line} in {self.function}"
        return f"{where}: `{self.text}`" if self.text else where

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "function": self.function, "text": self.text}


def user_frame(depth: int = 1) -> UserFrame | None:
    """The innermost caller frame outside every library (None when the whole stack is library code)."""
    frame = sys._getframe(depth)
    while frame is not None:
        code = frame.f_code
        if not is_library(code.co_filename):
            text = linecache.getline(code.co_filename, frame.f_lineno).strip()
            return UserFrame(code.co_filename, frame.f_lineno, code.co_name, text)
        frame = frame.f_back
    return None


def relative(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
