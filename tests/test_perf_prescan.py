"""The byte pre-scan skips only files that cannot matter, and parse errors are reported only
for files that are training configs (issue #16.5)."""

from __future__ import annotations

import inspect
import re

import pytest

from auditor.sources import dialects, nodes, prescan, structured
from tests.conftest import write_files
from tests.reliability_helpers import run_check


def _detection_keys() -> set:
    """Every key name dialects.detect() tests, read from its source so that a marker added
    there without one here fails this test."""
    code = "".join(inspect.getsource(f) for f in (dialects.detect, dialects.explain, dialects._recipe_dialects))
    names = set(re.findall(r'"([A-Za-z_][A-Za-z0-9_-]*)"', code))
    names -= set(dialects.DISPLAY_NAMES) | {"recipe", "generic"}  # what it returns, not what it reads
    names |= {"_component_"}  # read by structured.read for torchtune
    return names | set(dialects._NEOX) | {k.replace("_", "-") for k in dialects._NEOX}


def test_keys_the_prescan_does_not_see_never_make_a_config(monkeypatch):
    """A file holding every detection key that is not a marker (plus hyphenated twins) is
    no config of any dialect: so no file the pre-scan skips could have been one."""
    keys = _detection_keys()
    assert {"peft_type", "base_model", "stage", "_component_", "model_type"} <= keys
    unseen = sorted(k for k in keys if not prescan.may_matter("x.yaml", f"{k}: 1\n"))
    unseen = [k for k in unseen if k != "added_tokens"]  # it only ever excludes a file
    assert unseen and "datasets" in unseen  # secondary keys: a dialect also needs a marker key
    monkeypatch.setattr(prescan, "ENABLED", False)
    names = unseen + [k.replace("_", "-") for k in unseen]
    yaml_text = "".join(f"{k}: 1\n" for k in names)
    json_text = "{" + ", ".join(f'"{k}": 1' for k in names) + "}"
    for path, text in (("x.yaml", yaml_text), ("x.json", json_text), ("config.yaml", yaml_text)):
        assert structured.read(path, text) is None, (path, structured.read(path, text))
    for key in keys - {"added_tokens"}:
        if prescan.may_matter("x.yaml", f"{key}: 1\n"):
            continue
        assert structured.read("x.yaml", f"{key}: 1\n") is None, key


def test_every_dropout_key_shape_is_a_marker():
    for key in ("lora_dropout", "attn_pdrop", "layerdrop", "LayerDrop", "drop_path_rate", "droppath",
                "keep_prob", "keep-rate", "stochastic_depth_prob", "Stochastic-Depth", "resid_pdrop"):
        assert prescan.may_matter("x.yaml", f"{key}: 0.1\n"), key


def test_a_file_without_markers_is_never_composed(monkeypatch):
    def refuse(text, path):
        raise AssertionError("composed a file the pre-scan should have skipped")

    monkeypatch.setattr(nodes, "compose", refuse)
    assert structured.read("ci.yaml", "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n") is None
    with pytest.raises(AssertionError):
        structured.read("r.yaml", "hidden_dropout: 0.1\n")


def test_escaped_key_is_not_skipped():
    src = structured.read("r.json", '{"model_type": "bert", "hidden_\\u0064ropout_prob": 0.7}')
    assert src is not None and [s.key for s in src.settings] == ["hidden_dropout_prob"]
    src = structured.read("r.json", '{"x": 1, "hidden_\\u0064ropout": 0.7}')
    assert src is not None and [s.key for s in src.settings] == ["hidden_dropout"]


QUIET = [
    ("jsonl-dataset", "data/train.json",
     '{"text": "dropout regularises", "lora_dropout": 0.1}\n{"text": "second record"}\n'),
    ("json-with-comments", ".devcontainer/devcontainer.json",
     '{\n  // the image\n  "image": "python:3.11",\n  /* ports */ "forwardPorts": [8000]\n}\n'),
    ("vscode-settings", ".vscode/settings.json", '{\n  "editor.tabSize": 4, // spaces\n}\n'),
    ("ci-config", ".github/workflows/ci.yml", "on: [push\njobs:\n  test: {runs-on: ubuntu-latest\n"),
    ("gitlab-stages", ".gitlab-ci.yml", "stages: [build, test\nbuild:\n  script: make\n"),
    ("link-checker", ".lychee.json", '{"exclude": ["http://localhost",]}\n'),
]

REPORTED = [
    ("broken-config", "m/config.json", '{"vocab_size": 10,,}'),
    ("broken-adapter", "a/adapter_config.json", '{"r": 8,'),
    ("broken-recipe", "r/train.yaml", "base_model: gpt2\nlora_dropout: [0.1\n"),
    ("broken-dropout-json", "r/hparams.json", '{"hidden_dropout": 0.1,,}'),
    ("broken-python", "s/train.py", "import torch\nlayer = torch.nn.Dropout(p=0.1\n"),
]


@pytest.mark.parametrize("name,path,text", QUIET, ids=[c[0] for c in QUIET])
def test_unparsable_file_that_is_not_a_config_is_skipped_quietly(tmp_path, name, path, text):
    write_files(tmp_path, [(path, text)])
    rc, findings, stderr = run_check(str(tmp_path / path))
    assert rc == 0 and findings == [] and "Traceback" not in stderr, (rc, findings, stderr)


@pytest.mark.parametrize("name,path,text", REPORTED, ids=[c[0] for c in REPORTED])
def test_unparsable_config_is_still_an_error(tmp_path, name, path, text):
    write_files(tmp_path, [(path, text)])
    rc, findings, stderr = run_check(str(tmp_path / path))
    assert rc == 1 and [f["code"] for f in findings] == ["DRP000"], (rc, findings, stderr)
    assert findings[0]["severity"] == "error"


def test_json_lines_detection():
    assert prescan.is_json_lines('{"a": 1}\n\n[2]\n"x"\n')
    assert not prescan.is_json_lines('{"a": 1}\n')
    assert not prescan.is_json_lines('{"a": 1}\n{"b": \n')


def _corpus_texts() -> list:
    import os

    from tests.conftest import CORPUS as root

    out = []
    for base, _, files in os.walk(root):
        for name in sorted(files):
            if name.endswith((".yaml", ".yml", ".json")):
                with open(os.path.join(base, name), encoding="utf-8", errors="replace") as fh:
                    out.append(fh.read())
    return out


@pytest.mark.parametrize("text", [
    "a: 1\n", "LORA_R: 8\n", "Lora-R: 8", "PEFT-TYPE: LORA", "peft-type", "Base-Model: x", "model-name-or-path: m",
    "_component_: x", "-component-: x", "_COMPONENT_", "\\u0064ropout: 1", "\\X64", "k: \\U00000064",
    "ſtage: 1", "ſtage: 1\nlora: 1", "İnfo: 1", "pretraİned: x", "\u212aeep_prob: 0.9", "keep\u2010prob: 1",
    "", "out_dir", "out-dir", "OUT_DİR", "stochastic-depth: 0.1", "data: [1, 2]\nname: ci\n",
])
def test_substring_scan_is_the_marker_pattern(text):
    """may_matter reads the markers as substrings of the lowercased text (no compile at start
    up); it must say what the case-insensitive pattern says, on any text."""
    assert prescan.may_matter("x.yaml", text) == (prescan._MARKERS.search(text) is not None)


def test_substring_scan_is_the_marker_pattern_on_the_corpus():
    texts = _corpus_texts()
    if not texts:
        from tests.conftest import CORPUS, SHARED_MISSING

        pytest.skip(SHARED_MISSING.format(path=CORPUS))
    for text in texts:
        for variant in (text, text.upper(), text.replace("_", "-"), "x: 1\n" + text[: len(text) // 3]):
            assert prescan.may_matter("x.yaml", variant) == (prescan._MARKERS.search(variant) is not None)
