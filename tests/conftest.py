"""Shared test helpers: run the engine on files written to a temporary folder."""

from __future__ import annotations

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The shared folder beside the checkout (../shared) holds the real-config corpus, which is not
# in the repository; DROPOUT_AUDIT_SHARED names another place (a worktree elsewhere). Tests that
# need it skip with a reason that says so. The SARIF schema is vendored in tests/data.
SHARED = os.environ.get("DROPOUT_AUDIT_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
CORPUS = os.path.join(SHARED, "corpus")
SCHEMAS = os.path.join(REPO, "tests", "data")
SHARED_MISSING = ("needs the shared corpus of real configs at {path}: it is not in the repository; put the "
                  "project's shared/ folder beside the checkout, or set DROPOUT_AUDIT_SHARED to it")


def write_files(base, files) -> list:
    """files: list of (relative name, text); returns the paths written."""
    paths = []
    for name, text in files:
        path = os.path.join(base, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        paths.append(path)
    return paths


def audit(paths, **options):
    from auditor.run.discover import discover
    from auditor.run.engine import Engine, Options

    if "root" not in options and len(paths) == 1 and os.path.isdir(paths[0]):
        options["root"] = paths[0]  # links are followed inside the checked root only
    engine = Engine(Options(**options))
    files = discover(paths, engine.suffixes).files
    return list(engine.check_paths(files))


@pytest.fixture
def corpus_dir():
    if not os.path.isdir(CORPUS):
        pytest.skip(SHARED_MISSING.format(path=CORPUS))
    return CORPUS


@pytest.fixture
def run_cli():
    """Run the CLI in-process; returns (exit code, stdout)."""
    from click.testing import CliRunner

    from auditor.cli.commands import cli

    def run(*args):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        return result.exit_code, result.output
    return run


sys.path.insert(0, REPO)


# --- No network (issue 8) ------------------------------------------------------------------
# The auditor must never reach the network; every test runs with IP sockets refusing to
# connect, so a regression fails loudly instead of depending on the CI sandbox. AF_UNIX stays
# open (multiprocessing and some pytest plugins use it). Subprocess CLI runs get the same
# guard through tests/_nonet/sitecustomize.py on their PYTHONPATH.
import socket as _socket

_real_connect = _socket.socket.connect
_real_connect_ex = _socket.socket.connect_ex


def _guarded(real):
    def connect(self, address, *args):
        if self.family == getattr(_socket, "AF_UNIX", object()):
            return real(self, address, *args)
        raise OSError(f"network access blocked in tests: connect to {address!r}")
    return connect


def _no_create_connection(address, *args, **kwargs):
    raise OSError(f"network access blocked in tests: create_connection to {address!r}")


_socket.socket.connect = _guarded(_real_connect)
_socket.socket.connect_ex = _guarded(_real_connect_ex)
_socket.create_connection = _no_create_connection


@pytest.fixture(autouse=True)
def _no_user_hf_cache(tmp_path_factory, monkeypatch):
    """The model identity reads the local Hugging Face cache: tests must not depend on the
    developer's, so each sees an empty one unless it points HF_HUB_CACHE at a fixture."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path_factory.getbasetemp() / "empty-hf-cache"))
