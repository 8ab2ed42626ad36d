"""The hook as users run it: the real pre-commit installs this repository's hook from
.pre-commit-hooks.yaml (try-repo, so uncommitted changes are included) into its own
virtualenv and runs it on a throw-away git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytest.importorskip("pre_commit")


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory):
    return str(tmp_path_factory.mktemp("pre-commit-home"))


def _try_repo(cwd, home):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRE_COMMIT", "GIT_"))}
    env["PRE_COMMIT_HOME"] = home
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", REPO, "dropout-audit", "--all-files",
                           "--color", "never"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    if "An unexpected error has occurred" in out and any(sign in out for sign in _NETWORK_TROUBLE):
        pytest.skip("pre-commit could not install the hook's environment from the package index: "
                    + out.strip().splitlines()[-1][:200])
    return proc.returncode, out


# pre-commit installs the hook's dependencies from the package index; a network hiccup there is
# not a failure of the hook (every other outcome, including other install errors, still fails).
_NETWORK_TROUBLE = ("NewConnectionError", "ConnectTimeout", "ReadTimeout", "Temporary failure in name resolution",
                    "Connection reset", "Max retries exceeded", "ProxyError")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_hook_fails_on_bad_config_then_passes_after_fix(tmp_path, pre_commit_home):
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "test@example.invalid")
    _git(tmp_path, "config", "user.name", "test")
    (tmp_path / "good.yaml").write_text("base_model: m\nadapter: lora\nlora_dropout: 0.05\n")
    (tmp_path / "recipe.yaml").write_text("base_model: m\nadapter: lora\nlora_dropout: 10  # percent\n")
    (tmp_path / "notes.txt").write_text("lora_dropout: 10\n")  # not a file type the hook takes
    _git(tmp_path, "add", ".")

    code, out = _try_repo(tmp_path, pre_commit_home)
    assert code == 1, out
    assert "recipe.yaml:3:15: DRP101" in out, out
    assert "good.yaml:" not in out

    (tmp_path / "recipe.yaml").write_text("base_model: m\nadapter: lora\nlora_dropout: 0.1  # percent\n")
    _git(tmp_path, "add", ".")
    code, out = _try_repo(tmp_path, pre_commit_home)
    assert code == 0, out
    assert "Passed" in out, out
