"""Issue 27.7: the options users expect from ruff: -q, -v, --color, stdin, --show-files,
--show-settings, --statistics in JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import write_files
from tests.reliability_helpers import cli_env

BAD = "base_model: m\nadapter: lora\nlora_dropout: 1.5\n"
HIGH = "base_model: m\nadapter: lora\nlora_dropout: 0.5\n"


def _cli(*args, cwd, stdin=b"", env=None):
    proc = subprocess.run([sys.executable, "-m", "auditor", *args], cwd=cwd, input=stdin, capture_output=True,
                          env={**cli_env(), **(env or {})}, timeout=120)
    return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")


def test_quiet_prints_the_findings_and_nothing_else(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [("r.yaml", BAD)])
    monkeypatch.chdir(tmp_path)
    code, out = run_cli("check", "-q", "--format", "concise", ".")
    assert code == 1 and out.splitlines() == [out.splitlines()[0]] and "DRP100" in out and "Found" not in out
    code, out = run_cli("check", "--quiet", ".")
    assert code == 1 and "Found" not in out and "^^^" in out
    assert run_cli("check", "-q", "-v", ".")[0] == 2


def test_verbose_says_what_the_run_uses_on_stderr(tmp_path):
    write_files(tmp_path, [("r.yaml", BAD), ("m/tokenizer.json", '{"model": {"dropout": null}}'),
                           (".dropout-audit.toml", "fail-on = 'error'\n")])
    code, out, err = _cli("check", "-v", "--format", "concise", ".", cwd=tmp_path)
    assert code == 1 and "dropout-audit:" not in out
    assert "configuration: " in err and ".dropout-audit.toml" in err
    assert "passed over as data, not configuration: m/tokenizer.json" in err
    assert "1 file checked in" in err and "jobs: " in err


@pytest.mark.parametrize("color,env,coloured", [
    ("always", {}, True), ("never", {"FORCE_COLOR": "1"}, False), ("auto", {"FORCE_COLOR": "1"}, True),
    ("auto", {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False), ("always", {"NO_COLOR": "1"}, True),
])
def test_color_option_and_no_color(tmp_path, color, env, coloured):
    write_files(tmp_path, [("r.yaml", BAD)])
    env = {"NO_COLOR": "", "FORCE_COLOR": "", **env}
    code, out, _ = _cli("check", "--color", color, "r.yaml", cwd=tmp_path, env=env)
    assert code == 1 and ("\x1b[" in out) == coloured, out


def test_stdin_is_checked_as_the_named_file(tmp_path):
    write_files(tmp_path, [("cfg/adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.05, "r": 8}'),
                           ("cfg/r.yaml", HIGH)])
    buffer = b"base_model: m\nadapter: lora\nlora_dropout: 1.5\n"  # the editor's unsaved text, not the disk's
    code, out, err = _cli("check", "-", "--stdin-filename", "cfg/r.yaml", "--format", "json", cwd=tmp_path,
                          stdin=buffer)
    doc = json.loads(out)
    assert code == 1 and doc["files_checked"] == 1, err
    # the buffer's value, compared with the adapter read from disk beside it (DRP400)
    assert [(f["path"], f["code"], f["line"]) for f in doc["findings"]] == [("cfg/r.yaml", "DRP100", 3),
                                                                             ("cfg/r.yaml", "DRP400", 3)]
    # a file that is not on disk yet, in a folder that does not exist
    code, out, _ = _cli("check", "-", "--stdin-filename", "new/recipe.yaml", "--format", "concise", cwd=tmp_path,
                        stdin=buffer)
    assert code == 1 and out.startswith("new/recipe.yaml:3:15: DRP100")
    assert _cli("check", "-", cwd=tmp_path)[0] == 2  # no name: usage error
    assert _cli("check", "-", "x.yaml", "--stdin-filename", "a.yaml", cwd=tmp_path)[0] == 2


def test_show_files_and_show_settings(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [("a/r.yaml", BAD), ("b/config.json", "{}"), ("venv/x.yaml", BAD), ("m/tokenizer.json", "{}"),
                           ("pyproject.toml", '[tool.dropout-audit]\nignore = ["DRP3"]\nfail-on = "error"\n')])
    monkeypatch.chdir(tmp_path)
    code, out = run_cli("check", "--show-files", ".")
    assert code == 0 and out.splitlines() == ["a/r.yaml", "b/config.json"]
    code, out = run_cli("check", "--show-settings", "--extend-exclude", "b/", ".")
    assert code == 0 and "Found" not in out
    settings = dict(line.split(None, 1) if "  " not in line else [p.strip() for p in line.split("  ", 1)]
                    for line in out.splitlines())
    assert settings["configuration"].endswith("pyproject.toml") and settings["ignore"] == "DRP3"
    assert settings["fail-on"] == "error" and settings["extend-exclude"] == "b/"
    assert "DRP300" not in settings["active rules"] and "DRP100" in settings["active rules"]


def test_statistics_in_json(run_cli, tmp_path):
    write_files(tmp_path, [("a.yaml", BAD), ("b.yaml", BAD), ("c.yaml", HIGH)])
    code, out = run_cli("check", "--format", "json", "--statistics", str(tmp_path))
    doc = json.loads(out)
    assert doc["statistics"] == [{"code": "DRP100", "name": "dropout-out-of-range", "count": 2},
                                 {"code": "DRP201", "name": "lora-dropout-too-high", "count": 1}]
    assert "statistics" not in json.loads(run_cli("check", "--format", "json", str(tmp_path))[1])
