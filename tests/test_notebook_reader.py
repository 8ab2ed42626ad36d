"""Issue 15: notebooks are read as their code cells, in order, as one module."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from auditor.core.model import Span
from tests.conftest import REPO, audit, write_files
from tests.notebook_helpers import code, lines, markdown, notebook

UNSLOTH = ("from unsloth import FastLanguageModel\n"
           "model, tok = FastLanguageModel.from_pretrained(model_name=\"unsloth/llama-3-8b-bnb-4bit\")\n"
           "model = FastLanguageModel.get_peft_model(model, r=16, lora_dropout=0.1, bias=\"none\")\n")
ARGS = "from transformers import TrainingArguments\nargs = TrainingArguments(output_dir=\"out\", dropout=0.1)\n"


def _check(tmp_path, text, name="nb.ipynb", **options):
    (path,) = write_files(tmp_path, [(name, text)])
    return [f for f in audit([str(tmp_path)], **options) if not f.suppressed]


def _codes(findings):
    return [(f.code, f.cell[:3] if f.cell else None) for f in findings]


def test_finding_in_third_cell_has_cell_relative_location(tmp_path):
    nb = notebook(markdown(["# Title\n", "TrainingArguments(dropout=0.1) in prose\n"]), code(["import os"]),
                  code(lines(ARGS)))
    (f,) = _check(tmp_path, nb)
    assert (f.code, f.cell) == ("DRP110", (3, 2, 44, 2, 55))
    raw = nb.splitlines()[f.span.line - 1]
    assert "dropout=0.1" in raw and raw[f.span.column - 1:f.span.end_column - 1] == "dropout=0.1"


def test_markdown_raw_cells_and_outputs_are_not_code(tmp_path):
    out = [{"output_type": "stream", "name": "stdout", "text": ["args = TrainingArguments(dropout=0.1)\n"]}]
    nb = notebook(markdown(lines(ARGS)), {"cell_type": "raw", "metadata": {}, "source": lines(ARGS)},
                  code(["print('training')\n"], outputs=out))
    assert _check(tmp_path, nb) == []


def test_cells_are_one_flow_in_order(tmp_path):
    """The model comes from cell 1, the LoRA dropout from cell 3: one Unsloth setup."""
    first, second = UNSLOTH.splitlines(keepends=True)[:2], UNSLOTH.splitlines(keepends=True)[2:]
    nb = notebook(code(first), markdown(["text"]), code(second))
    assert _codes(_check(tmp_path, nb)) == [("DRP410", (3, 1, 68))]


def test_drp410_on_get_peft_model_in_a_script(tmp_path):
    (path,) = write_files(tmp_path, [("train.py", UNSLOTH)])
    found = audit([path])
    assert [(f.code, f.span.line, f.span.column) for f in found] == [("DRP410", 3, 68)]
    write_files(tmp_path, [("train.py", UNSLOTH.replace("lora_dropout=0.1", "lora_dropout=0"))])
    assert audit([path]) == []
    # without Unsloth the same call is ordinary PEFT
    write_files(tmp_path, [("train.py", UNSLOTH.replace("FastLanguageModel", "Auto").replace("unsloth/", "org/"))])
    # no DRP410, and no DRP310: org/llama-3-8b-bnb-4bit names its Llama 3 base (#28's family tokens)
    assert [f.code for f in audit([path])] == []


def test_cell_magics_and_line_magics(tmp_path):
    nb = notebook(
        code(["%%bash\n", "python -c 'TrainingArguments(output_dir=1, dropout=0.1)'\n"]),
        code(["%%writefile train.py\n"] + lines(ARGS)),
        code(["%%time\n"] + lines(ARGS)),
        code(["!pip install x\n", "%load_ext autoreload\n", "files = !ls\n", "pip install y\n", "model?\n"]
             + lines(ARGS)),
    )
    assert _codes(_check(tmp_path, nb)) == [("DRP110", (3, 3, 44)), ("DRP110", (4, 7, 44))]


def test_unparsable_cell_is_located_and_others_are_checked(tmp_path):
    nb = notebook(code(["x = (1,\n", "y = 2\n"]), markdown(["m"]), code(lines(ARGS)))
    found = _check(tmp_path, nb)
    assert _codes(found) == [("DRP000", (1, 1, 5)), ("DRP110", (3, 2, 44))]
    assert "the other cells are checked" in found[0].message


def test_pep701_fstring_names_the_python_it_needs(tmp_path):
    nb = notebook(code(["d = {'a': 1}\n", "print(f\"{d[\"a\"]}\")\n"]), code(lines(ARGS)))
    found = _check(tmp_path, nb)
    msg = found[0].message
    assert found[0].cell[:2] == (1, 2)
    if sys.version_info < (3, 12):  # valid Python 3.12: skipped at info, never an error (#25)
        assert [f.code for f in found] == ["DRP004", "DRP110"]
        assert "Python 3.12+" in msg and "PEP 701" in msg and "cannot parse" not in msg


def test_bad_notebooks_get_located_drp000_drp001(tmp_path):
    assert [(f.code, f.span.line) for f in _check(tmp_path, '{\n "cells": [\n  {,}\n ]\n}\n')] == [("DRP000", 3)]
    assert [f.code for f in _check(tmp_path, '{"cells": [], "nbformat": 4}')] == ["DRP001"]
    found = _check(tmp_path, '{"worksheets": [], "nbformat": 3}')
    assert [f.code for f in found] == ["DRP001"] and "nbformat 3" in found[0].message
    assert [f.code for f in _check(tmp_path, '[1, 2]')] == ["DRP001"]
    assert [f.code for f in _check(tmp_path, '{"cells": [{"cell_type": "code", "source": 3}]}')] == ["DRP001"]


def test_bad_notebook_cli_exits_1_without_traceback(tmp_path, run_cli):
    write_files(tmp_path, [("nb.ipynb", '{"cells": [')])
    code_, out = run_cli("check", "--format", "concise", str(tmp_path))
    assert code_ == 1 and "nb.ipynb:1:12: DRP000" in out and "Traceback" not in out


def test_notebook_without_dropout_code_is_skipped_quietly(tmp_path):
    assert _check(tmp_path, notebook(code(["print(1)\n"]), markdown(["dropout=0.9"]))) == []


def test_unicode_and_string_sources_map_to_the_stored_line(tmp_path):
    src = "# café 🤗\n" + ARGS
    for ensure_ascii in (False, True):
        nb = notebook(code(src), ensure_ascii=ensure_ascii)  # source as one string
        (f,) = _check(tmp_path, nb)
        assert f.cell == (1, 3, 44, 3, 55)
        assert nb[f.span.start:f.span.end] == "dropout=0.1"


def test_formats_point_into_cells(tmp_path, run_cli):
    write_files(tmp_path, [("nb.ipynb", notebook(markdown(["x"]), code(["import os\n"]), code(lines(ARGS))))])
    path = os.path.join(str(tmp_path), "nb.ipynb")
    _, out = run_cli("check", "--format", "concise", str(tmp_path))
    assert f"{path}:cell 3:2:44: DRP110" in out
    _, out = run_cli("check", "--format", "full", "--no-progress", str(tmp_path))
    assert f"{path}:cell 3:2:44: DRP110" in out and '2 | args = TrainingArguments(output_dir="out", dropout=0.1)' in out
    _, out = run_cli("check", "--format", "json", str(tmp_path))
    (f,) = json.loads(out)["findings"]
    assert (f["cell"], f["line"], f["column"]) == (3, 2, 44)
    _, out = run_cli("check", "--format", "sarif", "--root", str(tmp_path), str(tmp_path))
    (r,) = json.loads(out)["runs"][0]["results"]
    raw_line = notebook(markdown(["x"]), code(["import os\n"]), code(lines(ARGS))).splitlines()
    region = r["locations"][0]["physicalLocation"]["region"]
    assert "dropout=0.1" in raw_line[region["startLine"] - 1] and "(notebook cell 3, line 2)" in r["message"]["text"]
    for fmt in ("github", "gitlab", "junit"):
        _, out = run_cli("check", "--format", fmt, str(tmp_path))
        assert "notebook cell 3, line 2" in out, fmt


def test_cache_carries_the_cell(tmp_path):
    from auditor.run import cache

    write_files(tmp_path, [("nb.ipynb", notebook(code(lines(ARGS))))])
    (f,) = audit([str(tmp_path)])
    (back,) = cache.decode(cache.encode([f]))
    assert back == f and back.cell == (1, 2, 44, 2, 55)


def test_python_and_yaml_cold_start_does_not_load_the_notebook_reader(tmp_path):
    paths = write_files(tmp_path, [("train.py", ARGS), ("recipe.yaml", "adapter: lora\nlora_dropout: 0.1\n")])
    for path in paths:
        probe = ("import sys; from auditor.cli.commands import cli\n"
                 f"try:\n    cli(['check', {path!r}, '--no-progress'])\nexcept SystemExit:\n    pass\n"
                 "print('LOADED' if 'auditor.sources.notebook' in sys.modules else 'NOT LOADED')")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO,
                             env={**os.environ, "PYTHONPATH": REPO}).stdout
        assert out.strip().endswith("NOT LOADED"), out


def _settings(src):
    return [(s.key, s.key_path, s.role, s.value, s.p, s.reason) for s in src.settings]


def _field_values(src):
    """Field values, with the spans that model references carry inside their value left out
    (a notebook's spans are in its joined cells, a script's in the script)."""
    def plain(v):
        return [tuple(x for x in ref if not isinstance(x, Span)) for ref in v] if isinstance(v, list) else v
    return {k: plain(f.value) for k, f in src.fields.items()}


def test_a_notebook_gives_the_source_a_script_gives(tmp_path):
    """Setups and model identity are built from Source facts: a notebook must produce the same
    kind, settings and fields as the script made of its cells, and the same findings."""
    from auditor.sources import notebook as reader
    from auditor.sources import python_code

    with open(os.path.join(REPO, "fixtures", "script-eval-bugs", "train.py"), encoding="utf-8") as fh:
        script = fh.read()
    extra = ("import argparse\nparser = argparse.ArgumentParser()\n"
             "parser.add_argument('--lora_dropout', type=float, default=0.05)\n\n", UNSLOTH)
    chunks = [c + "\n\n" for c in script.split("\n\n\n")] + list(extra)  # top-level blocks, one per cell
    nb = notebook(*[code(lines(c)) for c in chunks])
    as_script = python_code.read("train.py", "".join(chunks))
    as_notebook = reader.read("train.ipynb", nb)
    assert (as_notebook.kind, as_notebook.dialect) == (as_script.kind, as_script.dialect) == ("python", "python")
    assert _settings(as_notebook) == _settings(as_script) and as_script.settings
    assert _field_values(as_notebook) == _field_values(as_script)
    # one cell holding the whole script: the same findings at the same lines and columns
    paths = write_files(tmp_path, [("a/train.py", script), ("b/train.ipynb", notebook(code(lines(script))))])
    py = [(f.code, f.span.line, f.span.column) for f in audit([paths[0]])]
    ipynb = [(f.code, f.cell[1], f.cell[2]) for f in audit([paths[1]])]
    assert py and sorted(ipynb) == sorted(py)


def test_notebook_joins_the_setup_of_its_folder(tmp_path):
    """A notebook is the driver beside the adapter it saved: cross-file rules compare them."""
    cell = "from peft import LoraConfig\ncfg = LoraConfig(r=8, lora_dropout=0.1)\n"
    adapter = '{"peft_type": "LORA", "base_model_name_or_path": "m", "lora_dropout": 0.05}'
    py = write_files(tmp_path / "py", [("train.py", cell), ("adapter_config.json", adapter)])
    nb = write_files(tmp_path / "nb", [("train.ipynb", notebook(code(lines(cell)))), ("adapter_config.json", adapter)])
    from_py = sorted((f.code, os.path.basename(f.path)) for f in audit([os.path.dirname(py[0])]))
    from_nb = sorted((f.code, os.path.basename(f.path).replace(".ipynb", ".py")) for f in audit([os.path.dirname(nb[0])]))
    assert from_py and from_nb == from_py


def test_odd_but_valid_json_never_crashes(tmp_path):
    odd = ['{"cells": [{"cell_type": "code"}], "nbformat": "4"}', '{"cells": {}, "nbformat": "3"}',
           '{"cells": [{"cell_type": "code", "source": []}], "nbformat": 4}', '{"cells": [{}]}',
           '{"nbformat": true}', '"cells"', '{"cells": [{"cell_type": "code", "source": ["import torch\\r\\n",'
           ' "torch.nn.Dropout(0.5)\\r\\n", "%%bash"]}]}', '{"cells": [null]}',
           '{"cells": [{"cell_type": "code", "source": "x = \\"\\ud83e\\udd17\\"; y = F.dropout(x, 0.5)"}]}']
    for text in odd:
        for f in _check(tmp_path, text):
            assert f.code in ("DRP000", "DRP001", "DRP600") and f.message, (text, f)


def _fuzz_cases():
    from hypothesis import strategies as st

    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                     st.sampled_from(["%%bash\n", "!ls\n", "F.dropout(x, 0.5)\n", "x?\n", "def f(:\n", "é🤗\n"]))
    values = st.recursive(leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
                          max_leaves=12)
    cell = st.fixed_dictionaries({"cell_type": st.sampled_from(["code", "markdown", "raw", 3]),
                                  "source": st.one_of(st.lists(leaf, max_size=5), leaf)},
                                 optional={"outputs": values, "metadata": values})
    return st.fixed_dictionaries({"cells": st.lists(cell, max_size=4)}, optional={"nbformat": values})


def test_property_reader_never_raises():
    from hypothesis import HealthCheck, given, settings

    from auditor.sources import notebook as reader

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_fuzz_cases(), st_indent())
    def run(doc, indent):
        text = json.dumps(doc, indent=indent)
        src = reader.read("nb.ipynb", text)
        if src is not None:
            for fact in src.facts:
                if hasattr(fact, "relocate"):
                    from auditor.core.model import Finding, Span

                    f = Finding("DRP000", "n", "invalid", "error", "nb.ipynb", Span(1, 1, 1, 1, 0, 0), "m")
                    fact.relocate([f])
                    assert f.cell and f.cell[0] >= 1
    run()


def st_indent():
    from hypothesis import strategies as st

    return st.sampled_from([None, 1, 2])
