"""Issue 27.6: the small bugs of the command line, `plan` included, each from a reproduction."""

from __future__ import annotations

import json
import os

from tests.conftest import REPO, write_files

BAD = "base_model: m\nadapter: lora\nlora_dropout: 1.5\n"


def test_root_is_honoured_by_every_format_and_validated(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [("proj/sub/r.yaml", BAD)])
    monkeypatch.chdir(tmp_path)
    for fmt, expect in (("concise", "sub/r.yaml:3:15: DRP100"), ("full", "sub/r.yaml:3:15: DRP100"),
                        ("json", '"path": "sub/r.yaml"'), ("github", "file=sub/r.yaml,")):
        code, out = run_cli("check", "proj/sub", "--root", "proj", "--format", fmt)
        assert code == 1 and expect in out and "proj/sub" not in out, (fmt, out)
    code, out = run_cli("check", "proj/sub", "--format", "concise")  # without --root: as given
    assert "proj/sub/r.yaml:3:15" in out
    code, out = run_cli("check", "proj", "--root", "/nonexistent")
    assert code == 2 and "--root: not a directory: /nonexistent" in out


def test_long_messages_are_cut_between_words():
    from auditor.run.engine import MAX_MESSAGE, one_line

    words = " ".join(f"word{i:03d}" for i in range(200))
    cut = one_line(words)
    assert len(cut) <= MAX_MESSAGE and " ... " in cut
    head, tail = cut.split(" ... ")
    assert all(w.startswith("word") and len(w) == 7 for w in head.split() + tail.split())
    assert len(one_line("9" * 5000)) <= MAX_MESSAGE  # one long token: cut anyway


def test_rule_markdown_of_one_rule_prints_that_rule(run_cli):
    code, out = run_cli("rule", "DRP201", "--format", "markdown")
    assert code == 0 and "| DRP201 |" in out and "| DRP200 |" not in out and len(out.splitlines()) == 3
    code, out = run_cli("rule", "DRP2011")
    assert code == 2 and "did you mean DRP201" in out


def test_rules_that_drop_to_info_are_listed_so(run_cli):
    code, out = run_cli("rule")
    for line in out.splitlines():
        if line.startswith(("DRP132", "DRP133")):
            assert "error or info" in line
    doc = {r["code"]: r for r in json.loads(run_cli("rule", "--format", "json")[1])}
    assert doc["DRP132"]["unsure_severity"] == "info" and doc["DRP201"]["unsure_severity"] is None


def test_json_with_comments_gets_a_json_message(run_cli, tmp_path):
    write_files(tmp_path, [("config.json", '{\n  // tuned\n  "model_type": "bert", "hidden_dropout_prob": 0.1\n}\n')])
    code, out = run_cli("check", "--format", "concise", str(tmp_path))
    assert code == 1 and "config.json:2:3: DRP000" in out and "not valid JSON: a // comment" in out
    assert "flow mapping" not in out


def test_cache_dir_is_made_at_the_project_root(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [("proj/pyproject.toml", "[project]\nname = 'x'\n"), ("proj/cfg/r.yaml", BAD),
                           ("elsewhere/.keep", "")])
    monkeypatch.chdir(tmp_path / "elsewhere")
    run_cli("check", "../proj/cfg")
    assert (tmp_path / "proj" / ".dropout_audit_cache").is_dir()
    assert not (tmp_path / "elsewhere" / ".dropout_audit_cache").exists()


def test_one_file_is_one_file_and_an_empty_directory_says_so(run_cli, tmp_path):
    write_files(tmp_path, [("a/r.yaml", "base_model: m\nadapter: lora\nlora_dropout: 0.05\n")])
    (tmp_path / "empty").mkdir()
    assert "All checks passed (1 file checked)." in run_cli("check", str(tmp_path / "a"))[1]
    code, out = run_cli("check", str(tmp_path / "empty"))
    assert code == 0 and "No files checked" in out


def test_docs_name_the_unsafe_fixes_as_the_tool_offers_them():
    from auditor.core import catalogue

    with open(os.path.join(REPO, "docs", "integration.md"), encoding="utf-8") as fh:
        doc = fh.read()
    safe = doc[doc.index("Safe fixes"):doc.index("Unsafe fixes")]
    unsafe = doc[doc.index("Unsafe fixes"):doc.index("Fixes replace exact spans")]
    for rule in catalogue.load():
        if rule.fix:
            assert rule.code in (safe if rule.fix == "safe" else unsafe), rule.code


def test_readme_says_how_to_install_without_an_index():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    assert "pip install ." in readme and "git+https://" in readme and "not on PyPI" in readme


PLAIN_TORCH = ("import torch\nimport torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
               "        super().__init__()\n        self.drop = nn.Dropout(0.2)\n\n    def forward(self, x):\n"
               "        return x\n\n\nmodel = Net()\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
               "model(torch.zeros(1)).sum().backward()\nopt.step()\n")


def test_plan_says_why_a_plain_pytorch_script_has_no_table(run_cli, tmp_path):
    write_files(tmp_path, [("train.py", PLAIN_TORCH)])
    code, out = run_cli("plan", str(tmp_path))
    assert code == 0 and "no dropout setting is configured here" in out and "┏" not in out
    doc = json.loads(run_cli("plan", "--format", "json", str(tmp_path))[1])
    assert doc[0]["entries"] == [] and "judged by `dropout-audit check`" in doc[0]["note"]


def test_plan_does_not_call_an_invalid_value_as_configured(run_cli):
    doc = json.loads(run_cli("plan", "--format", "json", os.path.join(REPO, "fixtures", "invalid-values"))[1])
    by_site = {e["site"]: e for p in doc for e in p["entries"]}
    assert any("invalid: 10 is not a probability" in step for step in by_site["hidden_dropout_prob"]["why"])
    assert any(step.startswith("invalid: a quoted number") for step in by_site["attention_probs_dropout_prob"]["why"])
    assert any("drops every unit" in step for step in by_site["classifier_dropout"]["why"])
    # configured is a number where the value is one, like effective
    assert by_site["classifier_dropout"]["configured"] == 1.0 and by_site["hidden_dropout_prob"]["configured"] == 10
    assert by_site["attention_probs_dropout_prob"]["configured"] == '"0.1"'


def test_plan_names_notebook_places_by_cell(run_cli):
    doc = json.loads(run_cli("plan", "--format", "json",
                             os.path.join(REPO, "fixtures", "notebook-unsloth-lora"))[1])
    (entry,) = [e for e in doc[0]["entries"] if e["role"] == "lora"]
    assert entry["source"].endswith("finetune.ipynb:cell 3:12:18") and "cell 3:12:18 sets" in entry["why"][0]


def test_plan_names_the_transformers_trainer(run_cli, tmp_path):
    write_files(tmp_path, [("train.py", "from transformers import AutoModelForCausalLM, Trainer, TrainingArguments\n"
                                        "from peft import LoraConfig, get_peft_model\n"
                                        "model = get_peft_model(AutoModelForCausalLM.from_pretrained('gpt2'), "
                                        "LoraConfig(r=8, lora_dropout=0.05))\n"
                                        "Trainer(model=model, args=TrainingArguments(output_dir='o')).train()\n")])
    doc = json.loads(run_cli("plan", "--format", "json", str(tmp_path))[1])
    assert doc[0]["trainer"] == "Transformers' Trainer (keeps dropout as configured)"
