"""Issue 27.2-3: data files are skipped quietly, excludes on the command line follow ruff, and
an unreadable path is a located finding while the run goes on."""

from __future__ import annotations

import errno
import json
import os

import pytest

from tests.conftest import write_files

CLEAN = "base_model: m\nadapter: lora\nlora_dropout: 0.05\n"
BAD = "base_model: m\nadapter: lora\nlora_dropout: 1.5\n"
TOKENIZER = '{"version": "1.0", "model": {"type": "BPE", "dropout": null, "vocab": {"a": 0}}}\n'


def _json(run_cli, *args):
    code, out = run_cli("check", "--format", "json", "--no-cache", *args)
    return code, json.loads(out)


def _dataset(path, size=50 * 1024 * 1024):
    """A 50 MB dataset JSON without writing 50 MB: `[`, a sparse hole, `]`."""
    with open(path, "wb") as fh:
        fh.write(b'[{"instruction": "x", "output": "lora dropout"}')
        fh.truncate(size)
        fh.seek(size - 1)
        fh.write(b"]")


def test_a_tree_with_a_big_dataset_and_a_tokenizer_passes(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [("recipe.yaml", CLEAN), ("model/tokenizer.json", TOKENIZER),
                           ("model/special_tokens_map.json", '{"dropout": "x"}')])
    (tmp_path / "data").mkdir()
    _dataset(tmp_path / "data" / "alpaca_data.json")
    monkeypatch.chdir(tmp_path)
    code, doc = _json(run_cli, ".")
    assert code == 0, doc
    (note,) = doc["findings"]  # one info line for the dataset, nothing for the tokenizer
    assert note["code"] == "DRP004" and note["severity"] == "info" and note["path"] == "data/alpaca_data.json"
    assert "over the 10485760-byte limit" in note["message"]
    # named on the command line (a pre-commit hook passes them): the same
    code, doc = _json(run_cli, "data/alpaca_data.json", "model/tokenizer.json", "recipe.yaml")
    assert code == 0 and [f["code"] for f in doc["findings"]] == ["DRP004"]


def test_exclude_options_follow_ruff(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [("a/r.yaml", BAD), ("b/r.yaml", BAD), ("venv/r.yaml", BAD), ("c/gen.yaml", BAD)])
    monkeypatch.chdir(tmp_path)

    def paths(*args):
        code, doc = _json(run_cli, *args)
        assert code in (0, 1), doc
        return sorted({f["path"] for f in doc["findings"]})

    assert paths(".") == ["a/r.yaml", "b/r.yaml", "c/gen.yaml"]  # venv/ is a default exclusion
    assert paths(".", "--extend-exclude", "b/") == ["a/r.yaml", "c/gen.yaml"]
    assert paths(".", "--extend-exclude", "b/,*gen.yaml") == ["a/r.yaml"]
    # --exclude replaces the default exclusions: venv/ is walked
    assert paths(".", "--exclude", "b/") == ["a/r.yaml", "c/gen.yaml", "venv/r.yaml"]
    # a path named on the command line is checked unless --force-exclude
    assert paths("b/r.yaml", "a/r.yaml", "--extend-exclude", "b/") == ["a/r.yaml", "b/r.yaml"]
    assert paths("b/r.yaml", "a/r.yaml", "--extend-exclude", "b/", "--force-exclude") == ["a/r.yaml"]


def test_exclude_on_the_command_line_replaces_the_configured_one(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [("a/r.yaml", BAD), ("b/r.yaml", BAD), (".dropout-audit.toml", 'exclude = ["a/"]\n')])
    monkeypatch.chdir(tmp_path)
    assert {f["path"] for f in _json(run_cli, ".")[1]["findings"]} == {"b/r.yaml"}
    assert {f["path"] for f in _json(run_cli, ".", "--exclude", "b/")[1]["findings"]} == {"a/r.yaml"}
    assert {f["path"] for f in _json(run_cli, ".", "--extend-exclude", "b/")[1]["findings"]} == set()


def _deny(monkeypatch, name, calls=("open", "lstat", "scandir")):
    """Root reads everything: permission errors are simulated on the one path."""
    for call in calls:
        real = getattr(os, call)

        def denied(p, *args, _real=real, **kwargs):
            if not isinstance(p, int) and name in os.path.normpath(os.path.abspath(os.fspath(p))).split(os.sep):
                raise PermissionError(errno.EACCES, "Permission denied", os.fspath(p))
            return _real(p, *args, **kwargs)
        monkeypatch.setattr(os, call, denied)


def test_an_unreadable_file_named_on_the_command_line_is_a_finding(run_cli, tmp_path, monkeypatch):
    """Its folder cannot be searched, so even stat fails: it used to be "path does not exist", exit 2."""
    write_files(tmp_path, [("secret/r.yaml", CLEAN), ("ok/r.yaml", BAD)])
    monkeypatch.chdir(tmp_path)
    _deny(monkeypatch, "secret", calls=("open", "lstat", "stat"))
    code, doc = _json(run_cli, "secret/r.yaml", "ok/r.yaml")
    assert code == 1
    by_path = {f["path"]: f for f in doc["findings"]}
    assert by_path["secret/r.yaml"]["code"] == "DRP001" and "Permission denied" in by_path["secret/r.yaml"]["message"]
    assert by_path["ok/r.yaml"]["code"] == "DRP100"  # the run went on


def test_an_unreadable_subdirectory_is_skipped_with_drp004(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [("private/r.yaml", BAD), ("ok/r.yaml", BAD)])
    monkeypatch.chdir(tmp_path)
    _deny(monkeypatch, "private", calls=("scandir",))
    code, doc = _json(run_cli, ".")
    assert code == 1
    skipped = [f for f in doc["findings"] if f["code"] == "DRP004"]
    assert [(f["path"], f["severity"]) for f in skipped] == [("private", "info")]
    assert "cannot read directory: Permission denied" in skipped[0]["message"]
    assert {f["path"] for f in doc["findings"] if f["code"] == "DRP100"} == {"ok/r.yaml"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_among_the_given_files_does_not_stop_the_run(run_cli, tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "pipe.yaml")
    write_files(tmp_path, [("r.yaml", BAD)])
    monkeypatch.chdir(tmp_path)
    code, doc = _json(run_cli, "pipe.yaml", "r.yaml")
    assert code == 1 and {f["code"] for f in doc["findings"]} == {"DRP001", "DRP100"}


def test_the_same_file_named_two_ways_is_reported_once(run_cli, tmp_path, monkeypatch):
    write_files(tmp_path, [("bert/config.json", '{"model_type": "bert", "hidden_dropout_prob": 1.5}')])
    monkeypatch.chdir(tmp_path)
    code, doc = _json(run_cli, "bert", "./bert/config.json", "bert/config.json")
    assert code == 1 and len(doc["findings"]) == 1 and doc["files_checked"] == 1


def test_the_pre_commit_hook_honours_the_configured_excludes(run_cli, tmp_path, monkeypatch):
    """pre-commit names the changed files; the hook's entry passes --force-exclude (as ruff's
    does), so a folder the project excludes stays excluded when its files are named."""
    from ruamel.yaml import YAML

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(repo, ".pre-commit-hooks.yaml"), encoding="utf-8") as fh:
        (hook,) = YAML(typ="safe").load(fh)
    words = hook["entry"].split()
    assert words[:2] == ["dropout-audit", "check"]
    write_files(tmp_path, [("a/r.yaml", BAD), ("b/r.yaml", BAD), (".dropout-audit.toml", 'exclude = ["a/"]\n')])
    monkeypatch.chdir(tmp_path)
    assert {f["path"] for f in _json(run_cli, *words[2:], "a/r.yaml", "b/r.yaml")[1]["findings"]} == {"b/r.yaml"}
