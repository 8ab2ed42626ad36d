"""Issue 15: suppressions and fixes inside notebook cells; a fix edits only the cell's source."""

from __future__ import annotations

import json
import os
import re
import tempfile

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import audit, write_files
from tests.notebook_helpers import code, lines, markdown, notebook

MODULE = ("import torch\n"
          "import torch.nn.functional as F\n"
          "\n"
          "class Head(torch.nn.Module):\n"
          "    def forward(self, x):\n"
          "        return F.dropout(x, 0.1)\n")
FIXED_LINE = "        return F.dropout(x, 0.1, training=self.training)\n"


def _cli(*args):
    from auditor.cli.commands import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_directive_inside_a_cell_suppresses_and_unused_one_is_reported(tmp_path):
    source = MODULE.replace("0.1)\n", "0.1)  # dropout-audit: ignore[DRP600] MC dropout\n")
    nb = notebook(markdown(["# x"]), code(lines(source)), code(["# dropout-audit: ignore[DRP110]\n", "x = 1\n"]))
    found = audit([write_files(tmp_path, [("nb.ipynb", nb)])[0]])
    assert [(f.code, f.suppressed, f.cell[:2]) for f in found] == [("DRP600", True, (2, 6)), ("DRP002", False, (3, 1))]


def test_fix_edits_only_the_cell_source(tmp_path):
    out = [{"output_type": "stream", "name": "stdout", "text": ["F.dropout(x, 0.1)\n"]}]
    nb = notebook(markdown(["F.dropout(x, 0.1)\n"]), code(lines(MODULE), outputs=out), indent=2)
    (path,) = write_files(tmp_path, [("nb.ipynb", nb)])
    code_, diff = _cli("check", "--diff", "--unsafe-fixes", path)
    assert code_ == 1 and re.search(r'\n\+ +"        return F\.dropout\(x, 0\.1, training=self\.training\)\\n"\n', diff)
    _cli("check", "--fix", "--unsafe-fixes", path)
    with open(path, encoding="utf-8", newline="") as fh:
        fixed = fh.read()
    old = json.dumps("        return F.dropout(x, 0.1)\n")
    assert fixed == nb.replace(old, json.dumps(FIXED_LINE))
    assert _cli("check", "--fix", "--unsafe-fixes", path)[0] == 0


def test_fix_refuses_a_notebook_changed_since_the_audit(tmp_path):
    from auditor.run import fix
    from auditor.run.engine import Engine, Options

    (path,) = write_files(tmp_path, [("nb.ipynb", notebook(code(lines(MODULE))))])
    engine = Engine(Options(fingerprints=True))
    findings = list(engine.check_paths([path]))
    planned, refused = fix.plan(findings, engine.fingerprints, unsafe=True)
    assert len(planned) == 1 and refused == []
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(" ")
    planned, refused = fix.plan(findings, engine.fingerprints, unsafe=True)
    assert planned == [] and "changed since it was audited" in refused[0]


OTHER = st.sampled_from(["import os\n", "!pip install -q peft\n", "%matplotlib inline\n", "x = 'café 🤗'\n",
                         "# lora_dropout=0.9 in a comment\n", "print(\"a \\\"quoted\\\" \\\\ path\")\n", "\n"])
OUTPUT = st.sampled_from([[], [{"output_type": "stream", "name": "stdout", "text": ["Dropout(p=0.9)\n", "é\n"]}],
                          [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                            "data": {"text/plain": ["lora_dropout: 0.9"]}}]])


@st.composite
def notebooks(draw):
    cells = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            cells.append(markdown(draw(st.lists(OTHER, max_size=3))))
        else:
            cells.append(code(draw(st.lists(OTHER, max_size=3)), outputs=draw(OUTPUT)))
    before = "".join(draw(st.lists(OTHER, max_size=3)))
    after = "".join(draw(st.lists(OTHER, max_size=3)))
    source = before + MODULE + after
    if draw(st.booleans()):
        source = source.rstrip("\n")
    stored = source if draw(st.booleans()) else lines(source)
    cells.insert(draw(st.integers(0, len(cells))), code(stored, outputs=draw(OUTPUT)))
    return notebook(*cells, indent=draw(st.sampled_from([1, 2, 4, None])), ensure_ascii=draw(st.booleans()),
                    final_newline=draw(st.booleans()))


def _token(text: str, at: int) -> tuple:
    """The JSON string token around offset `at` (start at its opening quote, end after its closing one)."""
    start = at
    while not (text[start] == '"' and not _escaped(text, start)):
        start -= 1
    end = at
    while not (text[end] == '"' and not _escaped(text, end)):
        end += 1
    return start, end + 1


def _escaped(text: str, i: int) -> bool:
    n = 0
    while text[i - 1 - n] == "\\":
        n += 1
    return n % 2 == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notebooks())
def test_property_notebook_fix_changes_only_the_edited_source_string(nb):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "nb.ipynb")
        with open(path, "w", encoding="utf-8", newline="") as fh:
            fh.write(nb)
        _cli("check", "--fix", "--unsafe-fixes", "--no-progress", path)
        with open(path, encoding="utf-8", newline="") as fh:
            fixed = fh.read()
        start, end = _token(nb, nb.index("F.dropout(x"))
        tail = len(nb) - end
        assert fixed[:start] == nb[:start] and fixed[len(fixed) - tail:] == nb[end:], "bytes outside the source changed"
        before, after = json.loads(nb), json.loads(fixed)
        k = next(i for i, c in enumerate(before["cells"]) if "F.dropout(x" in "".join(c["source"]))
        old_source, new_source = before["cells"][k].pop("source"), after["cells"][k].pop("source")
        assert before == after
        assert type(old_source) is type(new_source)
        old_text, new_text = "".join(old_source), "".join(new_source)
        assert new_text == old_text.replace("F.dropout(x, 0.1)", "F.dropout(x, 0.1, training=self.training)")
        if isinstance(new_source, list):
            assert new_source == lines(new_text)
        _cli("check", "--fix", "--unsafe-fixes", "--no-progress", path)
        with open(path, encoding="utf-8", newline="") as fh:
            assert fh.read() == fixed, "a second --fix changed the file"
        assert re.search(r"training=self\.training", fixed)


def test_multiline_edit_splits_into_source_strings_with_the_file_separator():
    from auditor.core.model import Edit, Finding, Fix, Span
    from auditor.run import fix
    from auditor.sources import notebook as nbreader

    nb = notebook(markdown(["m"]), code(lines(MODULE)), indent=2)
    src = nbreader.read("nb.ipynb", nb)
    at = src.text.index("0.1)")
    edit = Edit(at, at + 3, "0.1,\n            0.2")
    f = Finding("DRP600", "n", "eval-mode", "warning", "nb.ipynb", Span(6, 29, 6, 32, at, at + 3), "m",
                fix=Fix("split", (edit,)))
    src.facts[-1].relocate([f])
    assert f.cell == (2, 6, 29, 6, 32) and nb[f.span.start:f.span.end] == "0.1"
    new_text, applied, _ = fix.apply_edits(nb, [f])
    assert applied == [f]
    doc = json.loads(new_text)
    assert doc["cells"][1]["source"] == lines(MODULE.replace("0.1)", "0.1,\n            0.2)"))
    assert new_text.count('\n        "') == nb.count('\n        "') + 1  # the list's own indentation


def test_directive_on_the_last_line_of_a_cell_does_not_reach_the_next_cell(tmp_path):
    args = "from transformers import TrainingArguments\nargs = TrainingArguments(output_dir='o', dropout=0.1)\n"
    for first in (["x = 1\n", "# dropout-audit: ignore[DRP110]\n"], ["x = 1\n", "# dropout-audit: ignore[DRP110]"]):
        nb = notebook(code(first), code(["args = TrainingArguments(output_dir='o', dropout=0.1)\n"]),
                      code(lines(args)))
        found = audit([write_files(tmp_path, [("nb.ipynb", nb)])[0]])
        assert [(f.code, f.suppressed, f.cell[:2]) for f in found] == [
            ("DRP002", False, (1, 2)), ("DRP110", False, (2, 1)), ("DRP110", False, (3, 2))]
