"""The `check`, `plan` and `rule` commands as a user meets them: exit codes, formats, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO, write_files

FIXTURES = os.path.join(REPO, "fixtures")
GOOD = ["lora-clean", "bert-classifier", "torchtune-lora", "trl-sft-clean", "script-clean", "probe-llama-lora",
        "framework-settings-not-rates"]
BAD = ["framework-dpo-keeps-dropout", "nemo-unselected-peft-section", "axolotl-minimal-dpo", "invalid-values", "extreme-values", "recipe-adapter-mismatch", "axolotl-full-finetune-lora-keys",
       "dpo-lora-dropout-zeroed", "gpt-neox-twin-keys", "peft-null-dropout", "llama-with-bert-keys",
       "script-eval-bugs", "launch-flags", "probe-dead-key"]
JSON_FIELDS = {"code", "name", "category", "severity", "path", "line", "column", "end_line", "end_column",
               "message", "fix"}


def _json(run_cli, *args):
    code, out = run_cli("check", "--format", "json", *args)
    return code, json.loads(out)


def test_good_fixtures_have_no_findings(run_cli):
    for name in GOOD:
        code, doc = _json(run_cli, os.path.join(FIXTURES, name))
        assert code == 0 and doc["findings"] == [], (name, doc["findings"])


def test_bad_fixtures_fail_with_findings(run_cli):
    for name in BAD:
        code, doc = _json(run_cli, os.path.join(FIXTURES, name))
        assert code == 1 and doc["findings"], name


def test_json_findings_carry_the_documented_fields(run_cli):
    _, doc = _json(run_cli, FIXTURES)
    assert doc["findings"]
    for finding in doc["findings"]:
        assert JSON_FIELDS <= set(finding)
        assert finding["line"] >= 1 and finding["column"] >= 1


def test_info_findings_do_not_fail_by_default(run_cli):
    code, doc = _json(run_cli, os.path.join(FIXTURES, "llamafactory-no-lora-dropout"))
    assert code == 0 and [f["code"] for f in doc["findings"]] == ["DRP300"]
    code, _ = _json(run_cli, "--fail-on", "info", os.path.join(FIXTURES, "llamafactory-no-lora-dropout"))
    assert code == 1


def test_exit_zero_and_select_ignore(run_cli):
    target = os.path.join(FIXTURES, "invalid-values")
    assert _json(run_cli, "--exit-zero", target)[0] == 0
    _, doc = _json(run_cli, "--select", "DRP103", target)
    assert {f["code"] for f in doc["findings"]} == {"DRP103"}
    _, doc = _json(run_cli, "--ignore", "invalid", target)
    assert doc["findings"] == []
    _, doc = _json(run_cli, "--select", "DRP1", "--ignore", "DRP103,DRP102", target)
    assert {f["code"] for f in doc["findings"]} == {"DRP100", "DRP101"}


def test_missing_path_is_a_usage_error(run_cli, tmp_path):
    code, out = run_cli("check", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in out


def test_malformed_file_is_located_and_the_run_goes_on(run_cli, tmp_path):
    write_files(tmp_path, [("a/broken.json", '{"model_type": "bert",\n  "hidden_dropout_prob": 0.1,,\n}'),
                           ("b/config.json", '{"model_type": "bert", "hidden_dropout_prob": 0.7}')])
    code, doc = _json(run_cli, str(tmp_path))
    assert code == 1
    by_code = {f["code"]: f for f in doc["findings"]}
    assert by_code["DRP000"]["path"].endswith("broken.json") and by_code["DRP000"]["line"] == 2
    assert by_code["DRP200"]["path"].endswith("config.json")


def test_full_format_shows_source_line_and_caret(run_cli):
    code, out = run_cli("check", os.path.join(FIXTURES, "peft-null-dropout"))
    assert code == 1
    assert 'adapter_config.json:4:19: DRP104 [error]' in out
    assert '"lora_dropout": null,' in out and "^^^^" in out
    assert "Found 1 finding (1 error)" in out
    assert "\x1b[" not in out  # no colour when not a terminal


def test_concise_format_is_one_line_per_finding(run_cli):
    code, out = run_cli("check", "--format", "concise", os.path.join(FIXTURES, "extreme-values"))
    lines = out.strip().splitlines()
    assert code == 1 and len(lines) == 4 and all(": DRP2" in line for line in lines[:3])


def test_plan_shows_effective_values_and_why(run_cli):
    code, out = run_cli("plan", "--format", "json", os.path.join(FIXTURES, "dpo-lora-dropout-zeroed"))
    assert code == 0
    entry = json.loads(out)[0]["entries"][0]
    assert entry["configured"] == 0.1 and entry["configured_raw"] == "0.1" and entry["effective"] == 0.0
    assert any("disable_dropout" in step for step in entry["why"])
    code, out = run_cli("plan", os.path.join(FIXTURES, "llamafactory-no-lora-dropout"))
    assert "(not set)" in out and "lora_dropout" in out


def test_rule_command_documents_a_rule(run_cli):
    code, out = run_cli("rule", "DRP103")
    assert code == 0 and "PyYAML" in out and "Bad example" in out
    code, out = run_cli("rule", "--format", "json")
    assert code == 0 and len(json.loads(out)) >= 15
    assert run_cli("rule", "DRP999")[0] == 2


def test_static_path_imports_no_heavy_library():
    """A pre-commit hook must not pay seconds of torch/transformers/peft imports."""
    probe = (
        "import sys\n"
        "from auditor.cli.commands import main\n"
        "try:\n"
        f"    main(['check', '--format', 'json', {FIXTURES!r}], standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'rich', 'pydantic') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert "HEAVY=\n" in out.stdout, out.stdout + out.stderr


def test_python_m_auditor_runs_the_same_program():
    out = subprocess.run([sys.executable, "-m", "auditor", "--version"], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 0 and "dropout-audit" in out.stdout


def test_readme_rule_table_is_generated_from_rules():
    from auditor.cli import rule_docs
    from auditor.core import catalogue

    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    start = readme.index("<!-- rules:start -->") + len("<!-- rules:start -->\n")
    end = readme.index("<!-- rules:end -->")
    assert readme[start:end] == rule_docs.markdown_table(catalogue.load()), \
        "README rule table is stale: regenerate it with `dropout-audit rule --format markdown`"


def test_every_fixture_folder_is_listed_in_the_fixtures_readme():
    with open(os.path.join(FIXTURES, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    for name in sorted(os.listdir(FIXTURES)):
        if os.path.isdir(os.path.join(FIXTURES, name)):
            assert f"`{name}/`" in readme, f"fixtures/{name} is not described in fixtures/README.md"
