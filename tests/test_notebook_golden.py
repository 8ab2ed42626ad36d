"""Golden outputs of every report format on the two notebook fixtures (issue 15).

UPDATE_GOLDEN=1 regenerates tests/golden/notebook.<format>.txt; review the diff.
"""

from __future__ import annotations

import os

import pytest

from auditor import __version__
from auditor.report import FORMATS
from tests.conftest import REPO

GOLDEN = os.path.join(REPO, "tests", "golden")
# Only the rules the fixtures exercise, so rules added elsewhere do not churn these files.
SELECT = "DRP000,DRP002,DRP110,DRP410,DRP600"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_notebook_golden_output(fmt, run_cli, monkeypatch):
    monkeypatch.chdir(REPO)
    code, out = run_cli("check", "fixtures/notebook-unsloth-lora", "fixtures/notebook-clean", "--select", SELECT,
                        "--format", fmt, "--no-progress")
    out = out.replace(f'"{__version__}"', '"<version>"')
    assert code == 1
    assert "notebook-clean" not in out or fmt == "junit"
    path = os.path.join(GOLDEN, f"notebook.{fmt}.txt")
    if os.environ.get("UPDATE_GOLDEN"):
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(out)
    with open(path, encoding="utf-8") as fh:
        assert out == fh.read(), f"{fmt} output changed; UPDATE_GOLDEN=1 regenerates {path}"


def test_notebook_sarif_validates(run_cli, monkeypatch):
    import json

    from tests.test_integration_golden import _validate

    monkeypatch.chdir(REPO)
    _, out = run_cli("check", "fixtures/notebook-unsloth-lora", "--select", SELECT, "--format", "sarif")
    _validate(json.loads(out))
