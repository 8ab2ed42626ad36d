"""Golden files: the exact output of every report format on tests/golden/inputs.

Run with UPDATE_GOLDEN=1 to regenerate after an intended change, then review the diff.
Outputs are made deterministic by running from tests/golden (relative paths) and by
replacing the package version, the only value that changes between releases.
"""

from __future__ import annotations

import json
import os

import pytest

from auditor import __version__
from auditor.report import FORMATS
from tests.conftest import REPO, SCHEMAS

GOLDEN = os.path.join(REPO, "tests", "golden")
# Rules added elsewhere must not churn these files: only the rules the inputs exercise run.
SELECT = "DRP000,DRP002,DRP101,DRP102,DRP103,DRP200"


def _run(run_cli, monkeypatch, *args):
    monkeypatch.chdir(GOLDEN)
    code, out = run_cli("check", "inputs", "--select", SELECT, *args)
    return code, out.replace(f'"{__version__}"', '"<version>"')


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_golden_output(fmt, run_cli, monkeypatch):
    code, out = _run(run_cli, monkeypatch, "--format", fmt, "--no-progress")
    assert code == 1
    path = os.path.join(GOLDEN, f"check.{fmt}.txt")
    if os.environ.get("UPDATE_GOLDEN"):
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(out)
    with open(path, encoding="utf-8") as fh:
        assert out == fh.read(), f"{fmt} output changed; UPDATE_GOLDEN=1 regenerates {path}"


def _schema():
    path = os.path.join(SCHEMAS, "sarif-schema-2.1.0.json")
    if not os.path.isfile(path):
        pytest.skip(f"the SARIF schema is not at {path} (vendored in tests/data)")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _validate(doc):
    import jsonschema

    schema = _schema()
    jsonschema.validators.validator_for(schema)(schema).validate(doc)


def test_sarif_golden_validates(run_cli, monkeypatch):
    _, out = _run(run_cli, monkeypatch, "--format", "sarif")
    doc = json.loads(out)
    _validate(doc)
    results = doc["runs"][0]["results"]
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert all(r["ruleId"] == rules[r["ruleIndex"]]["id"] for r in results)
    assert all(not r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("/") for r in results)
    suppressed = [r for r in results if r.get("suppressions")]
    assert suppressed and suppressed[0]["suppressions"][0]["kind"] == "inSource"
    for rule in rules:
        assert rule["help"]["markdown"] and rule["defaultConfiguration"]["level"] in ("error", "warning", "note")


def test_sarif_of_fixtures_validates(run_cli, monkeypatch):
    """The README's demo tree, when present; the golden inputs stand in otherwise."""
    target = os.path.join(REPO, "fixtures")
    if not os.path.isdir(target):
        target = os.path.join(GOLDEN, "inputs")
    monkeypatch.chdir(REPO)
    _, out = run_cli("check", os.path.relpath(target, REPO), "--format", "sarif")
    _validate(json.loads(out))


def test_sarif_fingerprints_ignore_line_moves(tmp_path, monkeypatch, run_cli):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text("base_model: m\nadapter: lora\nlora_dropout: 10\n")
    first = json.loads(run_cli("check", ".", "--format", "sarif")[1])["runs"][0]["results"]
    (tmp_path / "r.yaml").write_text("# a comment\n\nbase_model: m\nadapter: lora\nlora_dropout: 10\n")
    second = json.loads(run_cli("check", ".", "--format", "sarif")[1])["runs"][0]["results"]
    assert first[0]["locations"] != second[0]["locations"]
    assert first[0]["partialFingerprints"] == second[0]["partialFingerprints"]
