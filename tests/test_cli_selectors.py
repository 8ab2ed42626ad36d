"""Issue 27.1: a selector that names no rule is an error (exit 2) wherever it is written, with
the text and the closest real selectors; rule names work wherever codes do."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import REPO, write_files

TARGET = os.path.join(REPO, "fixtures", "invalid-values")
HIGH = "base_model: m\nadapter: lora\nlora_dropout: 0.5\n"


@pytest.mark.parametrize("args,quoted,near", [
    (["--select", "NOPE"], "'NOPE'", "no-op"),
    (["--select", "DRP9"], "'DRP9'", "DRP"),
    (["--ignore", "NOPE"], "'NOPE'", "no-op"),
    (["--extend-select", "NOPE"], "'NOPE'", "no-op"),
    (["--select", "DRP1,DRP2011"], "'DRP2011'", "DRP201"),
    (["--select", "lora-dropout-to-high"], "'lora-dropout-to-high'", "lora-dropout-too-high"),
])
def test_unknown_selector_on_the_command_line_exits_2(run_cli, args, quoted, near):
    code, out = run_cli("check", *args, TARGET)
    assert code == 2
    option = args[0]
    assert f"{option}: unknown rule selector: {quoted}" in out and "did you mean" in out and near in out


def test_a_selector_far_from_everything_says_what_selectors_are(run_cli):
    code, out = run_cli("check", "--select", "xyz", TARGET)
    assert code == 2 and "unknown rule selector: 'xyz'" in out and "dropout-audit rule" in out


@pytest.mark.parametrize("selector,expected", [
    ("DRP1", {"DRP100", "DRP101", "DRP102", "DRP103"}),
    ("drp10", {"DRP100", "DRP101", "DRP102", "DRP103"}),
    ("DRP103", {"DRP103"}),
    ("dropout-yaml11-string", {"DRP103"}),  # a rule name
    ("invalid", {"DRP100", "DRP101", "DRP102", "DRP103"}),  # a category
    ("ALL", {"DRP100", "DRP101", "DRP102", "DRP103"}),
    ("DRP52", set()),  # a prefix in use (DRP520...), nothing of it in this folder
])
def test_valid_selectors_keep_working(run_cli, selector, expected):
    code, out = run_cli("check", "--format", "json", "--select", selector, TARGET)
    assert code in (0, 1), out
    assert {f["code"] for f in json.loads(out)["findings"]} == expected


@pytest.mark.parametrize("table,key", [
    ('select = ["NOPE"]', "tool.dropout-audit.select"),
    ('ignore = ["DRP9"]', "tool.dropout-audit.ignore"),
    ('extend-select = ["NOPE"]', "tool.dropout-audit.extend-select"),
    ('per-file-ignores = { "*.yaml" = ["DRP2011"] }', 'tool.dropout-audit.per-file-ignores."*.yaml"'),
    ('[tool.dropout-audit.severity]\nlora-dropout-to-high = "info"', "tool.dropout-audit.severity.lora-dropout-to-high"),
    ('[tool.dropout-audit.params.DRP2011]\nmax = 0.2', "tool.dropout-audit.params.DRP2011"),
])
def test_unknown_selector_in_the_config_exits_2(run_cli, tmp_path, monkeypatch, table, key):
    write_files(tmp_path, [("r.yaml", HIGH), ("pyproject.toml", f"[tool.dropout-audit]\n{table}\n")])
    monkeypatch.chdir(tmp_path)
    code, out = run_cli("check", ".")
    assert code == 2 and key in out and "unknown rule selector" in out and "did you mean" in out, out


def test_rule_names_work_in_config_tables_and_per_file_ignores(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [("a/r.yaml", HIGH), ("b/r.yaml", HIGH), ("pyproject.toml",
        '[tool.dropout-audit]\nper-file-ignores = { "a/*" = ["lora-dropout-too-high"] }\n'
        '[tool.dropout-audit.severity]\nlora-dropout-too-high = "info"\n'
        '[tool.dropout-audit.params.lora-dropout-too-high]\nmax = { lora = 0.6 }\n')])
    monkeypatch.chdir(tmp_path)
    code, out = run_cli("check", "--format", "json", ".")
    assert code == 0, out
    assert json.loads(out)["findings"] == []  # b/r.yaml: 0.5 is under the raised limit
    write_files(tmp_path, [("pyproject.toml", '[tool.dropout-audit]\nper-file-ignores = { "a/*" = ["extreme"] }\n')])
    code, out = run_cli("check", "--format", "json", ".")
    assert code == 1 and [f["path"] for f in json.loads(out)["findings"]] == ["b/r.yaml"]


def test_unknown_selector_in_a_suppression_is_located_and_exits_2(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [("r.yaml", HIGH.replace("0.5\n", "0.5  # dropout-audit: ignore[DRP2011] tuned\n"))])
    monkeypatch.chdir(tmp_path)
    code, out = run_cli("check", "--format", "concise", ".")
    assert code == 2
    assert "r.yaml:3:20: DRP002 [warning] unknown rule selector: 'DRP2011' in a suppression comment " \
           "(did you mean DRP201" in out
    assert "DRP201 [warning]" in out  # the typo suppressed nothing, and says so


def test_rule_names_and_categories_work_in_suppressions(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [
        ("a.yaml", HIGH.replace("0.5\n", "0.5  # dropout-audit: ignore[lora-dropout-too-high] sweep\n")),
        ("b.yaml", HIGH.replace("0.5\n", "0.5  # dropout-audit: ignore[extreme] sweep\n")),
        ("c.yaml", HIGH.replace("0.5\n", "0.5  # dropout-audit: ignore[drp20] sweep\n")),
    ])
    monkeypatch.chdir(tmp_path)
    code, out = run_cli("check", "--format", "json", ".")
    assert code == 0 and json.loads(out)["findings"] == [], out


def test_selector_helpers():
    from auditor.core import catalogue, selectors

    rules = catalogue.load()
    assert selectors.is_known("DRP52", rules) and not selectors.is_known("DRP9", rules)
    assert selectors.codes_named("dropout-yaml11-string", rules) == ["DRP103"]
    with pytest.raises(selectors.UnknownSelector) as err:
        selectors.check(["DRP1", "DRP2011"], rules, "--select")
    assert err.value.selector == "DRP2011" and err.value.suggestions[0] == "DRP201"
