"""Issue 17: the Python path at scale keeps its findings and lets each file's tree go.

The engine checks code files one at a time (with the setups they drive) and keeps only their
facts afterwards; the code checks query one index per module. Neither may change a finding:
the findings on the installed Transformers' models/ (2,597 files; the test extra pins
transformers 5.24.0) are compared with a committed golden list. UPDATE_GOLDEN=1 regenerates
it after an intended change; review the diff.
"""

from __future__ import annotations

import importlib.util
import json
import os
import textwrap

import pytest

from auditor.run.engine import Engine, Options
from auditor.sources.python_facts import PyModule
from tests.conftest import REPO

GOLDEN = os.path.join(REPO, "tests", "golden", "transformers_models.findings.json")
PINNED = "5.24.0"


def _models_dir():
    from importlib import metadata

    try:
        version = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        pytest.skip("transformers is not installed (test extra)")
    if version != PINNED:
        pytest.skip(f"the golden list is for transformers {PINNED}, found {version}")
    spec = importlib.util.find_spec("transformers")  # locates the package without importing it
    path = os.path.join(list(spec.submodule_search_locations)[0], "models")
    if not os.path.isdir(path):
        pytest.skip("transformers has no models/ directory")
    return path


def test_transformers_models_findings_unchanged(run_cli, monkeypatch):
    """Rule, file (relative to models/), line and column of every finding. Two jobs keep the
    test near 15 s on two cores; parallel workers run the same per-directory engine."""
    monkeypatch.chdir(_models_dir())
    code, out = run_cli("check", ".", "--no-cache", "--jobs", "2", "--format", "json", "--exit-zero")
    assert code == 0
    got = sorted([f["code"], f["path"], f["line"], f["column"]] for f in json.loads(out)["findings"])
    assert got, "Transformers' models/ has known findings (unused dropout modules and parameters)"
    if os.environ.get("UPDATE_GOLDEN"):
        with open(GOLDEN, "w", encoding="utf-8", newline="\n") as fh:
            json.dump(got, fh, indent=0)
            fh.write("\n")
    with open(GOLDEN, encoding="utf-8") as fh:
        assert got == json.load(fh), f"findings on Transformers' models/ changed; UPDATE_GOLDEN=1 regenerates {GOLDEN}"


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


_MODEL = '''
    import torch.nn as nn
    class Block{n}(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.1)
        def forward(self, x):
            return x
'''


def test_one_tree_at_a_time(tmp_path, monkeypatch):
    """While a code file is checked, no other code file of the directory holds its tree, and
    none does once the directory is done (the flat-directory memory of issue 17)."""
    paths = [_write(tmp_path, f"m{n}.py", _MODEL.format(n=n)) for n in range(5)]
    paths.append(_write(tmp_path, "config.json", '{"model_type": "bert", "hidden_dropout_prob": 0.1}'))
    engine = Engine(Options(root=str(tmp_path)))
    seen, overlaps = [], []
    load, source_pass = engine.load, engine._source_pass

    def loading(path, data=None):
        src = load(path, data)
        if src is not None and src.kind == "python":
            seen.append(src)
        return src

    def checking(src, setups):
        overlaps.extend(o.path for o in seen if o is not src and any(isinstance(f, PyModule) for f in o.facts))
        return source_pass(src, setups)

    monkeypatch.setattr(engine, "load", loading)
    monkeypatch.setattr(engine, "_source_pass", checking)
    found = engine.check_directory(str(tmp_path), sorted(paths))
    assert len(seen) == 5 and overlaps == []
    assert all(not any(isinstance(f, PyModule) for f in s.facts) and s.text == "" for s in seen)
    assert sorted(f.code for f in found) == ["DRP521"] * 5  # each file's own finding survives the release


def test_released_tree_is_freed_without_the_collector(tmp_path, monkeypatch):
    """The engine keeps the cyclic collector off during a code file's pass and relies on
    reference counting to free its tree at the release: nothing the checks cache may hold the
    module in a cycle (the mode flow of a module with train()/eval() did), or every tree of a
    run would wait for a collection that walks all of it."""
    import gc
    import weakref

    from auditor.sources import python_code

    text = _MODEL.format(n=0) + textwrap.indent(
        "model = Block0()\nmodel.eval()\nmodel.train()\nwith torch.no_grad():\n    model(1)\n", "    ")
    paths = [_write(tmp_path, "a.py", text)]
    trees = []
    read = python_code.read

    def reading(path, text):
        src = read(path, text)
        trees.append(weakref.ref(src.facts[0].tree))
        return src

    monkeypatch.setattr(python_code, "read", reading)
    engine = Engine(Options(root=str(tmp_path)))
    was = gc.isenabled()
    gc.disable()
    try:
        engine.check_directory(str(tmp_path), paths)
        assert len(trees) == 1 and trees[0]() is None
    finally:
        if was:
            gc.enable()


def test_released_file_keeps_its_directives(tmp_path):
    """A suppression comment in a code file still hides its finding, and an unused one is still
    reported, after the file's text has been let go."""
    text = _MODEL.format(n=0).replace("nn.Dropout(0.1)", "nn.Dropout(0.1)  # dropout-audit: ignore[DRP521] kept")
    paths = [_write(tmp_path, "a.py", text),
             _write(tmp_path, "b.py", "import torch  # dropout-audit: ignore[DRP600]\nx = torch.nn.Dropout(0.1)\n")]
    found = Engine(Options(root=str(tmp_path))).check_directory(str(tmp_path), sorted(paths))
    assert [(f.code, os.path.basename(f.path), f.suppressed) for f in sorted(found, key=lambda f: f.path)] == [
        ("DRP521", "a.py", True), ("DRP002", "b.py", False)]


def test_fix_run_keeps_text(tmp_path):
    """--fix fingerprints the text it read, so a fixing run keeps it after the pass."""
    paths = [_write(tmp_path, "a.py", _MODEL.format(n=0))]
    engine = Engine(Options(root=str(tmp_path), fingerprints=True))
    kept = []
    release = engine.release

    def releasing(src):
        release(src)
        kept.append(src.text)

    engine.release = releasing
    engine.check_directory(str(tmp_path), paths)
    assert kept and kept[0].startswith("\nimport torch.nn")


def test_setups_do_not_share_linked_artifacts(tmp_path):
    """Two scripts of one directory are alternatives: the config.json one of them loads is an
    artifact of its setup only (they once shared one list, so it leaked into the other's)."""
    from auditor.setup import graph

    _write(tmp_path, "base/config.json", '{"model_type": "bert", "hidden_dropout_prob": 0.1}')
    a = _write(tmp_path, "a.py", 'from transformers import AutoModel\nm = AutoModel.from_pretrained("./base")\n'
                                 "import torch\ntorch.manual_seed(0)\n")
    b = _write(tmp_path, "b.py", "import torch\ntorch.manual_seed(0)\nx = torch.nn.Dropout(0.1)\n")
    engine = Engine(Options(root=str(tmp_path)))
    loaded = engine.load_directory([a, b])
    by_driver = {os.path.basename(s.driver.path): [os.path.basename(x.path) for x in s.artifacts]
                 for s in graph.setups(engine, str(tmp_path), loaded)}
    assert by_driver == {"a.py": ["config.json"], "b.py": []}


def test_line_table_is_the_same_with_and_without_carriage_returns():
    """The line table splits on \\n alone when the text has no \\r (issue 17: no Python step
    per line); line starts, lines and character offsets must match the general \\r\\n|\\r|\\n
    split on the same text."""
    texts = ["", "\n", "a", "a\n", "\n\n", "x = 1\ny = 'é'\n\nz = 3", "é\nü"]
    for text in texts:
        fast = PyModule(None, text)
        general = PyModule(None, text.replace("\n", "\r\n"))
        fast_starts, fast_lines = fast._line_table()
        general_starts, general_lines = general._line_table()
        assert fast_lines == general_lines
        assert fast_starts == [s - i for i, s in enumerate(general_starts)]  # one character less per line end
        assert [fast.line_text(n) for n in range(len(fast_lines) + 2)] == \
            [general.line_text(n) for n in range(len(general_lines) + 2)]
