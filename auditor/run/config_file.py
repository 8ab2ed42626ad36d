"""Finding the user's configuration without paying for it when there is none.

Walks up from the target to the filesystem root and takes the nearest `.dropout-audit.toml`
(whole file) or `pyproject.toml` with a `[tool.dropout-audit]` table; a pyproject without
that table is passed over, as ruff does, so a nested package does not hide the project's
settings. Only tomllib is used here: the pydantic model in auditor/run/config.py is imported by
the caller only once a file has been found, keeping a hook's start-up light.
"""

from __future__ import annotations

import os

DEDICATED = ".dropout-audit.toml"
PYPROJECT = "pyproject.toml"
TABLE = "dropout-audit"


class ConfigFileError(Exception):
    """The configuration file cannot be read or is not TOML; exit code 2."""


def read(path: str) -> dict:
    """The settings table of one file ({} for a pyproject.toml without one)."""
    try:  # imported here: most runs find no configuration file and never pay for a TOML parser
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
    if os.path.basename(path) == PYPROJECT:
        tool = data.get("tool")
        table = tool.get(TABLE) if isinstance(tool, dict) else None
        if table is not None and not isinstance(table, dict):
            raise ConfigFileError(f"{path}: tool.{TABLE}: must be a table")
        return table or {}
    return data


def find(start: str) -> tuple | None:
    """(path, table) of the nearest configuration above `start`, or None."""
    here = os.path.abspath(start)
    if not os.path.isdir(here):
        here = os.path.dirname(here)
    while True:
        dedicated = os.path.join(here, DEDICATED)
        if os.path.isfile(dedicated):
            return dedicated, read(dedicated)
        pyproject = os.path.join(here, PYPROJECT)
        if os.path.isfile(pyproject):
            table = read(pyproject)
            if table:
                return pyproject, table
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent
