"""A regular expression compiled on first use.

Every module-level `re.compile` is paid by every run at import, about 0.1-2 ms each, while
many patterns serve only some inputs (a string value that may be a number, a file that
failed to parse, a model reference). A one-recipe pre-commit check imports dozens of them;
this defers each one to the first call that needs it (docs/performance.md).
"""

from __future__ import annotations

import re


class LazyRegex:
    """A regex compiled on first use: compiling at import would cost every run, including
    those that never need it. Used as the compiled pattern (`.match`, `.search`, ...)."""

    __slots__ = ("args", "compiled")

    def __init__(self, *args):
        self.args, self.compiled = args, None

    def __getattr__(self, name):
        if self.compiled is None:
            self.compiled = re.compile(*self.args)
        return getattr(self.compiled, name)
