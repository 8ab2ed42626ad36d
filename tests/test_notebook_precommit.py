"""Issue 15: the real pre-commit hook reaches staged notebooks and shell launch scripts."""

from __future__ import annotations

import shutil

import pytest

from tests.notebook_helpers import code, lines, markdown, notebook
from tests.test_integration_precommit import _git, _try_repo, pre_commit_home  # noqa: F401 (fixture)

pytest.importorskip("pre_commit")

CELL = "from transformers import TrainingArguments\nargs = TrainingArguments(output_dir=\"out\", dropout=0.1)\n"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_hook_fails_on_notebook_and_launch_script_then_passes(tmp_path, pre_commit_home):  # noqa: F811
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "test@example.invalid")
    _git(tmp_path, "config", "user.name", "test")
    (tmp_path / "train.ipynb").write_text(notebook(markdown(["# run\n"]), code(["!pip install trl\n"]),
                                                   code(lines(CELL))))
    (tmp_path / "launch.sh").write_text("#!/bin/bash\npython qlora.py \\\n    --lora_r 64 \\\n    --lora_dropout 10\n")
    _git(tmp_path, "add", ".")

    code_, out = _try_repo(tmp_path, pre_commit_home)
    assert code_ == 1, out
    assert "train.ipynb:cell 3:2:44: DRP110" in out, out
    assert "launch.sh:4:20: DRP101" in out, out

    (tmp_path / "train.ipynb").write_text(notebook(markdown(["# run\n"]), code(["!pip install trl\n"]),
                                                   code(lines(CELL.replace(", dropout=0.1", "")))))
    (tmp_path / "launch.sh").write_text("#!/bin/bash\npython qlora.py \\\n    --lora_r 64 \\\n    --lora_dropout 0.1\n")
    _git(tmp_path, "add", ".")
    code_, out = _try_repo(tmp_path, pre_commit_home)
    assert code_ == 0, out
    assert "Passed" in out, out
