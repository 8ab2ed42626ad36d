"""Import budget of the static path, checked in a fresh interpreter.

A pre-commit hook pays for every import on every commit: `check` must never load the
probe's stack (torch, transformers, peft), and the machine-readable or piped outputs must
not load rich. Measured in a subprocess because this test process has imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, write_files

HEAVY = ("torch", "transformers", "peft")

SCRIPT = """
import json, sys
from auditor.cli.launch import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
with open(sys.argv[1], "w") as fh:
    json.dump(sorted(sys.modules), fh)
"""


def _modules_after(tmp_path, *args) -> set:
    out = tmp_path / "modules.json"
    env = dict(os.environ, PYTHONPATH=REPO)
    subprocess.run([sys.executable, "-c", SCRIPT, str(out), *args], cwd=tmp_path, env=env,
                   stdout=subprocess.DEVNULL, check=True, timeout=120)
    return set(json.loads(out.read_text()))


@pytest.fixture
def fixture_tree(tmp_path):
    write_files(tmp_path / "proj", [
        ("recipe.yaml", "base_model: m\nadapter: lora\nlora_dropout: 1.5\ndatasets: []\n"),
        ("adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.1}\n'),
        ("config.json", '{"model_type": "llama", "attention_dropout": 0.0}\n'),
    ])
    return str(tmp_path / "proj")


def _top(mods) -> set:
    return {m.split(".")[0] for m in mods}


@pytest.mark.parametrize("fmt", ["json", "concise", "full"])
def test_check_never_imports_the_probe_stack(tmp_path, fixture_tree, fmt):
    mods = _modules_after(tmp_path, "check", "--format", fmt, fixture_tree)
    assert "auditor.run.engine" in mods  # the check really ran
    assert not _top(mods) & set(HEAVY)


@pytest.mark.parametrize("args", [("check", "--format", "json"), ("check",), ("plan",)])
def test_the_static_path_never_imports_the_language_server(tmp_path, fixture_tree, args):
    """pygls and lsprotocol are the [server] extra, for `dropout-audit server` only."""
    mods = _modules_after(tmp_path, *args, fixture_tree)
    assert "auditor.setup.graph" in mods  # the check or plan really ran
    assert not _top(mods) & {"pygls", "lsprotocol", "cattrs"}
    assert not {m for m in mods if m.startswith("auditor.server")}


@pytest.mark.parametrize("fmt", ["json", "concise", "full"])
def test_piped_output_does_not_import_rich(tmp_path, fixture_tree, fmt):
    mods = _modules_after(tmp_path, "check", "--format", fmt, "--no-cache", fixture_tree)
    assert "rich" not in _top(mods)


def test_small_check_does_not_import_multiprocessing_or_pydantic(tmp_path, fixture_tree):
    mods = _modules_after(tmp_path, "check", "--format", "json", fixture_tree)
    assert "multiprocessing" not in _top(mods)
    assert "pydantic" not in _top(mods)  # no user configuration in the fixture


def test_yaml_only_check_does_not_import_the_code_primitives(tmp_path, fixture_tree):
    mods = _modules_after(tmp_path, "check", fixture_tree)
    assert "auditor.run.engine" in mods
    assert not {m for m in mods if m.startswith("auditor.checks.code")}
    assert not {"auditor.sources.python_code", "auditor.setup.hfargs"} & mods


def test_python_file_still_loads_the_code_primitives(tmp_path):
    write_files(tmp_path / "proj", [("train.py", "import torch.nn.functional as F\n\n"
                                     "def f(x):\n    return F.dropout(x, 0.1)\n")])
    mods = _modules_after(tmp_path, "check", str(tmp_path / "proj"))
    assert "auditor.checks.code" in mods


def test_python_only_table_is_what_the_code_package_registers():
    import auditor.checks as checks
    import auditor.checks.code  # noqa: F401

    registered = {name: entry[0] for name, entry in checks.CHECKS.items()
                  if entry[1].__module__.startswith("auditor.checks.code")}
    assert registered == checks.PYTHON_ONLY


def _interpreter_start(tmp_path) -> set:
    """What this interpreter has imported before any of the auditor's code runs (site hooks
    such as an editable install's finder import pathlib and more, in some environments)."""
    out = tmp_path / "start.json"
    subprocess.run([sys.executable, "-c", f"import json, sys; json.dump(sorted(sys.modules), open({str(out)!r}, 'w'))"],
                   cwd=tmp_path, env=dict(os.environ, PYTHONPATH=REPO), check=True, timeout=60)
    return set(json.loads(out.read_text()))


# What a one-recipe check (a pre-commit hook on one YAML file) does without, and why it could:
# the value classes are written without @dataclass (auditor/core/record.py; dataclasses brings
# inspect, ast, dis and tokenize); a Python script's links, the AST helpers behind them and
# `ast` itself are imported only for Python sources; the findings cache hashes with the
# interpreter's own SHA-256 where hashlib would load OpenSSL (_hashlib); the shell reader is
# imported when a shell script is read.
NOT_FOR_ONE_RECIPE = ("dataclasses", "inspect", "ast", "tokenize", "auditor.sources.python_facts",
                      "auditor.setup.links_python", "_hashlib", "auditor.sources.shell")


def test_one_recipe_check_imports_nothing_it_does_not_use(tmp_path, fixture_tree):
    from auditor.core import catalogue

    rules = catalogue.builtin_dir()
    if catalogue._load_compiled(rules, catalogue.rule_names(rules)) is None:
        pytest.skip("this checkout's compiled catalogue is stale (`pip install -e .` writes it): the rule "
                    "files would be parsed with ruamel, which imports more")
    mods = _modules_after(tmp_path, "check", os.path.join(fixture_tree, "recipe.yaml"))
    assert "auditor.run.engine" in mods and "auditor.setup.links" in mods  # the check and the link stage ran
    added = mods - _interpreter_start(tmp_path)
    assert not set(NOT_FOR_ONE_RECIPE) & added


def test_a_script_without_markers_beside_the_recipe_is_not_parsed(tmp_path, fixture_tree):
    """A pre-commit check of one recipe reads the files beside it; a script that cannot yield
    a Source (no marker: sources.PYTHON_MARKERS) must not bring in the Python reader and ast."""
    from auditor.core import catalogue

    rules = catalogue.builtin_dir()
    if catalogue._load_compiled(rules, catalogue.rule_names(rules)) is None:
        pytest.skip("this checkout's compiled catalogue is stale (`pip install -e .` writes it)")
    with open(os.path.join(fixture_tree, "util.py"), "w") as fh:
        fh.write("import torch\n\ndef mean(xs):\n    return sum(xs) / len(xs)\n")
    mods = _modules_after(tmp_path, "check", os.path.join(fixture_tree, "recipe.yaml"))
    assert "auditor.run.engine" in mods
    assert not {"auditor.sources.python_code", "ast"} & (mods - _interpreter_start(tmp_path))


def test_a_python_script_still_reads_its_links(tmp_path):
    write_files(tmp_path / "proj", [("train.py", "from transformers import AutoModel\n"
                                     "m = AutoModel.from_pretrained('./model', hidden_dropout_prob=0.1)\n")])
    mods = _modules_after(tmp_path, "check", str(tmp_path / "proj"))
    assert "auditor.setup.links_python" in mods
