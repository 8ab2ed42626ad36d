"""Turn a file into a Source: decide its kind from its content and collect its settings.

Kinds and dialects are decided from what a file says, not only from its name, because
training recipes carry arbitrary names; a file that is no training configuration yields None
and is skipped quietly.

Imports inside functions (`sources.notebook`, `sources.python_code`, `sources.shell`,
`sources.structured`) are deferred for start-up time: a run that never takes that path never
pays for them.
"""

from __future__ import annotations

import os

from auditor.sources.common import PYTHON_MARKERS, located_problem  # noqa: F401 - the registry's face

# Structured formats handled by the YAML/JSON reader; code formats register their own reader.
STRUCTURED_SUFFIXES = (".json", ".yaml", ".yml")
SHELL_SUFFIXES = (".sh",)  # read by auditor.sources.shell

# Files read into a parsed module (auditor.sources.python_facts.PyModule): the engine checks
# them one at a time and drops each tree after its own pass (issue #17).
CODE_SUFFIXES = (".py", ".ipynb")


class SkipFile(Exception):
    """The file is not something the auditor reads (binary, not a training config...)."""


def suffix_of(path: str) -> str:
    return os.path.splitext(path)[1].lower()


def readers() -> dict:
    """Suffix -> reader function. Code readers are imported lazily, only when such a file exists."""
    from auditor.sources import structured

    table = {s: structured.read for s in STRUCTURED_SUFFIXES}
    table[".py"] = _python
    for s in SHELL_SUFFIXES:
        table[s] = _shell
    table[".ipynb"] = _notebook
    return table


def _python(path: str, text: str):
    """Python files are read by auditor.sources.python_code (ast, tokenize and the fact
    extractors behind it), imported only when one is checked that can yield a Source: a
    pre-commit check of one recipe also reads the scripts beside it."""
    if not any(m in text for m in PYTHON_MARKERS):
        return None
    from auditor.sources import python_code

    return python_code.read(path, text)


def _shell(path: str, text: str):
    """Shell scripts are read by auditor.sources.shell, imported when one is checked (or when
    a recipe's launcher commands are read)."""
    from auditor.sources import shell

    return shell.read(path, text)


def _notebook(path: str, text: str):
    """Notebooks are read by auditor.sources.notebook, imported only when one is checked."""
    from auditor.sources import notebook

    return notebook.read(path, text)
