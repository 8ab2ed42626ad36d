"""Every rule's documented examples run as tests: bad examples must fire the rule at the
marked place, good examples must not fire it. Docs that lie fail the build."""

from __future__ import annotations

import os

import pytest

from auditor.core import catalogue
from tests.conftest import audit, write_files

RULES = [r for r in catalogue.load() if r.check != "probe"]


def _cases(kind):
    for rule in RULES:
        for i, ex in enumerate(rule.examples.get(kind) or []):
            yield pytest.param(rule, ex, id=f"{rule.code}-{kind}-{i}")


def _write(tmp_path, ex):
    files = ex.get("files") or [ex]
    write_files(tmp_path, [(f["file"], f["text"]) for f in files])
    return files


@pytest.mark.parametrize("rule,example", list(_cases("bad")))
def test_bad_example_fires(tmp_path, rule, example):
    files = _write(tmp_path, example)
    findings = [f for f in audit([str(tmp_path)], select=(rule.code,)) if f.code == rule.code]
    assert findings, f"{rule.code} did not fire on its bad example"
    target = os.path.join(str(tmp_path), example.get("path", files[0]["file"]))
    at = [f for f in findings if f.path == target]
    assert at, f"{rule.code} fired on {[f.path for f in findings]}, expected {target}"
    if "line" in example:
        assert (at[0].span.line, at[0].span.column) == (example["line"], example.get("column", at[0].span.column))


@pytest.mark.parametrize("rule,example", list(_cases("good")))
def test_good_example_is_silent(tmp_path, rule, example):
    _write(tmp_path, example)
    findings = [f for f in audit([str(tmp_path)], select=(rule.code,)) if f.code == rule.code]
    assert not findings, [f.message for f in findings]


def test_every_static_rule_has_examples():
    for rule in RULES:
        assert rule.examples.get("bad"), f"{rule.code} has no bad example"
        assert rule.examples.get("good"), f"{rule.code} has no good example"


def test_codes_and_names_are_unique():
    rules = catalogue.load()
    assert len({r.code for r in rules}) == len(rules)
    assert len({r.name for r in rules}) == len(rules)


def test_rule_files_are_named_after_their_rule():
    for rule in catalogue.load():
        assert os.path.basename(rule.origin) == f"{rule.code}-{rule.name}.yaml"
