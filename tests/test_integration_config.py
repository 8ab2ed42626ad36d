"""Configuration files, suppressions, baselines and the pre-commit subset behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, write_files

BAD = "base_model: m\nadapter: lora\nlora_dropout: 10\n"          # DRP101 error at 3:15
HIGH = "base_model: m\nadapter: lora\nlora_dropout: 0.6\n"         # DRP201 lora dropout too high


@pytest.fixture
def cli(run_cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    return run_cli


def test_pyproject_select_and_ignore(cli, tmp_path):
    write_files(tmp_path, [("r.yaml", BAD), ("pyproject.toml", '[tool.dropout-audit]\nignore = ["DRP101"]\n')])
    assert cli("check", ".", "--format", "concise")[0] == 0
    # the command line replaces the file's key
    code, out = cli("check", ".", "--format", "concise", "--ignore", "DRP2")
    assert code == 1 and "DRP101" in out


def test_dedicated_file_found_walking_up_and_relative_paths(cli, tmp_path):
    write_files(tmp_path, [("sub/deep/r.yaml", HIGH), ("sub/skip/r.yaml", BAD),
                           (".dropout-audit.toml", 'exclude = ["sub/skip/"]\nfail-on = "error"\n'
                                                   '[severity]\nDRP201 = "error"\n'),
                           ("sub/pyproject.toml", "[tool.other]\nx = 1\n")])
    code, out = cli("check", "sub", "--format", "concise")
    assert code == 1
    assert "sub/deep/r.yaml:3:15: DRP201 [error]" in out and "skip" not in out


def test_params_override_thresholds(cli, tmp_path):
    write_files(tmp_path, [("r.yaml", HIGH), (".dropout-audit.toml", "[params.DRP201.max]\nlora = 0.7\n")])
    assert "DRP201" not in cli("check", ".", "--format", "concise")[1]
    write_files(tmp_path, [(".dropout-audit.toml", "[params.DRP201.max]\nlora = 0.5\n")])
    assert "DRP201" in cli("check", ".", "--format", "concise")[1]


@pytest.mark.parametrize("toml,key", [
    ('fail-on = "sometimes"\n', "fail-on"),
    ('selekt = ["DRP"]\n', "selekt"),
    ("[params.DRP201]\nmaximum = 0.2\n", "params.DRP201.maximum"),
    ("[params.DRP201]\nmax = 0.2\n", "params.DRP201.max: expected a table, got a number"),
    ('[severity]\nDRP999 = "info"\n', "severity.DRP999"),
    ("per-file-ignores = 3\n", "per-file-ignores"),
    ("select = [\n", "not valid TOML"),
])
def test_bad_config_is_exit_2_naming_the_key(cli, tmp_path, toml, key):
    write_files(tmp_path, [("r.yaml", BAD), (".dropout-audit.toml", toml)])
    code, out = cli("check", ".")
    assert code == 2, out
    assert key in out


def test_pyproject_key_is_named_with_its_table(cli, tmp_path):
    write_files(tmp_path, [("r.yaml", BAD), ("pyproject.toml", '[tool.dropout-audit]\nignore = "DRP1"\n')])
    code, out = cli("check", ".")
    assert code == 2 and "tool.dropout-audit.ignore" in out


def test_per_file_ignores(cli, tmp_path):
    write_files(tmp_path, [("legacy/r.yaml", BAD), ("new/r.yaml", BAD),
                           (".dropout-audit.toml", '[per-file-ignores]\n"legacy/**" = ["DRP1"]\n')])
    out = cli("check", ".", "--format", "concise")[1]
    assert "new/r.yaml" in out and "legacy" not in out


def test_inline_suppressions_and_unused_ones(cli, tmp_path):
    write_files(tmp_path, [
        ("a.yaml", "base_model: m\nadapter: lora\nlora_dropout: 10  # dropout-audit: ignore[DRP101] legacy\n"),
        ("b.yaml", "base_model: m\nadapter: lora\n# dropout-audit: ignore[DRP101]\nlora_dropout: 10\n"),
        ("c.yaml", "# dropout-audit: ignore-file[DRP1] generated\nbase_model: m\nadapter: lora\nlora_dropout: 10\n"),
        ("d.yaml", "base_model: m  # dropout-audit: ignore[DRP101]\nadapter: lora\nlora_dropout: 10\n"),
        ("e.yaml", "base_model: m\nadapter: lora\nlora_dropout: 0.1  # dropout-audit: ignore[DRP101, DRP9]\n"),
    ])
    out = cli("check", ".", "--format", "concise")[1]
    lines = sorted(l for l in out.splitlines() if ": DRP" in l)
    assert lines == [
        "d.yaml:1:16: DRP002 [warning] unused suppression of DRP101: no DRP101 finding on line 1",
        "d.yaml:3:15: DRP101 [error] lora_dropout = 10 looks like a percentage; as a probability write 0.1",
        "e.yaml:3:20: DRP002 [warning] unknown rule selector: 'DRP9' in a suppression comment "
        "(did you mean DRP79, DRP809, DRP790?)",
        "e.yaml:3:20: DRP002 [warning] unused suppression of DRP101: no DRP101 finding on line 3",
    ]
    # a code not selected in this run may be used by another run: not reported
    assert "DRP002" not in cli("check", "a.yaml", "--select", "DRP002,DRP2", "--format", "concise")[1]


def test_sarif_lists_suppressed_findings(cli, tmp_path):
    write_files(tmp_path, [("a.yaml", "base_model: m\nadapter: lora\nlora_dropout: 10  # dropout-audit: ignore[DRP101] ok\n")])
    doc = json.loads(cli("check", ".", "--format", "sarif")[1])
    (result,) = doc["runs"][0]["results"]
    assert result["suppressions"] == [{"kind": "inSource", "status": "accepted", "justification": "ok"}]
    assert json.loads(cli("check", ".", "--format", "json")[1])["findings"] == []


def test_baseline_hides_known_findings_and_survives_line_moves(cli, tmp_path):
    write_files(tmp_path, [("r.yaml", BAD), ("ok.yaml", "base_model: m\nadapter: lora\nlora_dropout: 0.1\n")])
    assert cli("check", ".", "--write-baseline", "base.json")[0] == 0
    entries = json.loads((tmp_path / "base.json").read_text())["findings"]
    assert entries == [{"path": "r.yaml", "code": "DRP101", "key": "lora_dropout", "count": 1}]
    (tmp_path / "r.yaml").write_text("# moved down\n\n" + BAD)
    assert cli("check", ".", "--baseline", "base.json", "--format", "concise")[0] == 0
    (tmp_path / "ok.yaml").write_text(BAD)  # a new finding is reported
    code, out = cli("check", ".", "--baseline", "base.json", "--format", "concise")
    assert code == 1 and "ok.yaml:3:15: DRP101" in out and "r.yaml:" not in out.replace("ok.yaml", "")
    # --fix audits more than once; the baseline must hide its findings in every pass
    (tmp_path / "q.yaml").write_text('base_model: m\nadapter: lora\nlora_dropout: "0.1"\n')
    code, out = cli("check", ".", "--baseline", "base.json", "--fix", "--format", "concise")
    assert "r.yaml:" not in out.replace("ok.yaml", "") and "Fixed 1 finding (1 remaining" in out


def test_bad_baseline_is_exit_2(cli, tmp_path):
    write_files(tmp_path, [("r.yaml", BAD), ("base.json", "[]")])
    code, out = cli("check", ".", "--baseline", "base.json")
    assert code == 2 and "base.json" in out


def test_given_files_report_only_themselves_but_read_siblings(cli, tmp_path):
    write_files(tmp_path, [
        ("run/recipe.yaml", "base_model: m\nadapter: lora\nlora_dropout: 0.1\n"),
        ("run/adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.3, "r": 8}\n'),
        ("run/other.yaml", BAD),
    ])
    out_all = cli("check", "run", "--format", "concise")[1]
    assert "DRP400" in out_all and "other.yaml" in out_all
    out = cli("check", "run/recipe.yaml", "--format", "concise")[1]
    assert "other.yaml" not in out
    # the cross-file rule still sees the adapter beside the recipe, reported where it points
    assert ("run/recipe.yaml" in out) == any(l.startswith("run/recipe.yaml") for l in out_all.splitlines())
    write_files(tmp_path, [(".dropout-audit.toml", "report-only-given = false\n")])
    assert "other.yaml" in cli("check", "run/recipe.yaml", "--format", "concise")[1]


def test_multiple_formats_and_output_file(cli, tmp_path):
    write_files(tmp_path, [("r.yaml", BAD)])
    code, out = cli("check", ".", "--format", "concise", "--format", "sarif:out.sarif", "--format", "junit",
                    "-o", "out.xml")
    assert code == 1 and out.startswith("r.yaml:3:15: DRP101")
    assert json.loads((tmp_path / "out.sarif").read_text())["version"] == "2.1.0"
    assert "<testcase name=\"r.yaml\"" in (tmp_path / "out.xml").read_text()
    assert cli("check", ".", "--format", "json", "--format", "sarif")[0] == 2
    assert cli("check", ".", "--format", "yaml")[0] == 2


def test_statistics_and_rule_docs(cli, tmp_path):
    write_files(tmp_path, [("r.yaml", BAD), ("s.yaml", BAD)])
    out = cli("check", ".", "--statistics", "--format", "concise")[1]
    assert "     2  DRP101  dropout-percent" in out
    code, out = cli("rule", "DRP002")
    assert code == 0 and "unused-suppression" in out and "Bad example" in out and "References" in out
    rules = json.loads(cli("rule", "--all", "--format", "json")[1])
    assert {"DRP002", "DRP101"} <= {r["code"] for r in rules}


def _modules_after(args, cwd):
    code = ("import sys\nfrom auditor.cli.commands import main\ntry:\n    main(%r, standalone_mode=False)\n"
            "except SystemExit:\n    pass\nsys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)))" % (args,))
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": REPO})
    return set(proc.stderr.split("MODULES ")[-1].split())


@pytest.mark.parametrize("fmt", ["json", "sarif", "github", "gitlab", "junit"])
def test_machine_formats_stay_light(tmp_path, fmt):
    write_files(tmp_path, [("r.yaml", BAD)])
    mods = _modules_after(["check", ".", "--format", fmt], tmp_path)
    assert "auditor.run.engine" in mods
    for heavy in ("rich", "pydantic", "torch", "transformers", "peft"):
        assert heavy not in mods, f"--format {fmt} imported {heavy}"


def test_pydantic_only_with_a_config_file(tmp_path):
    write_files(tmp_path, [("r.yaml", BAD), (".dropout-audit.toml", "fail-on = 'error'\n")])
    assert "pydantic" in _modules_after(["check", ".", "--format", "json"], tmp_path)


def test_no_progress_bar_when_piped():
    from auditor.cli import progress

    class Pipe:
        def isatty(self):
            return False

    class Tty:
        def isatty(self):
            return True

    assert not progress.wanted(5000, ["full"], stream=Pipe())
    assert not progress.wanted(5000, ["sarif"], stream=Tty())
    assert not progress.wanted(5000, ["full"], disabled=True, stream=Tty())
    assert not progress.wanted(3, ["full"], stream=Tty())


def test_action_and_hook_definitions_are_consistent():
    from ruamel.yaml import YAML

    with open(os.path.join(REPO, "action.yml"), encoding="utf-8") as fh:
        action = YAML(typ="safe").load(fh)
    assert action["runs"]["using"] == "composite"
    assert {"paths", "fail-on", "version"} <= set(action["inputs"])
    steps = " ".join(str(s.get("run", "")) + str(s.get("uses", "")) for s in action["runs"]["steps"])
    assert "sarif:" in steps and "upload-sarif" in steps
    with open(os.path.join(REPO, ".pre-commit-hooks.yaml"), encoding="utf-8") as fh:
        (hook,) = YAML(typ="safe").load(fh)
    assert hook["id"] == "dropout-audit" and hook["require_serial"] is True
    assert sorted(hook["types_or"]) == ["json", "jupyter", "python", "shell", "yaml"]
