"""The language server's parts that need no client: positions, the edits of code actions,
notebook documents as .ipynb text, the unsaved-buffer seam in sources.text, the session's
choice of what to check and re-check, and the hover text. None of them imports pygls."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from auditor.core.model import Edit, Fix
from auditor.server import actions, hover, notebooks
from auditor.server.audit import Audit
from auditor.server.positions import Lines
from auditor.sources import text as source_text
from auditor.sources.text import FileProblem, read_text
from tests.conftest import REPO, write_files

# --- positions ----------------------------------------------------------------------------


def test_columns_are_utf16_units_and_come_back_to_the_same_offset():
    text = "a: 1\nemoji: \U0001F600 x\r\nlast"
    lines = Lines(text)
    x = text.index("x")
    assert lines.position(x) == (1, 10)  # the emoji is two UTF-16 units
    assert lines.offset(1, 10) == x
    assert Lines(text, "utf-32").position(x) == (1, 9)
    assert Lines(text, "utf-8").position(x) == (1, 12)
    assert lines.offset(1, 8) == text.index("\U0001F600")  # inside the pair: its start
    assert lines.position(text.index("last")) == (2, 0)  # after a CRLF
    assert lines.offset_of(2, 99) == text.index("\r\n")  # a column past the line: its end
    assert lines.offset(9, 0) == len(text)


# --- the edits of code actions ------------------------------------------------------------

def _apply(text, edit):
    a, b, rep = edit
    return text[:a] + rep + text[b:]


def test_ignore_writes_a_trailing_directive():
    text = "base_model: m\nlora_dropout: 5e-2   \nr: 8\n"
    assert _apply(text, actions.ignore_edit(text, 2, "DRP103")) == \
        "base_model: m\nlora_dropout: 5e-2  # dropout-audit: ignore[DRP103]\nr: 8\n"


def test_ignore_extends_a_directive_that_covers_the_line():
    trailing = "lora_dropout: 0.6  # dropout-audit: ignore[DRP201] sweep\n"
    assert _apply(trailing, actions.ignore_edit(trailing, 1, "DRP501")) == \
        "lora_dropout: 0.6  # dropout-audit: ignore[DRP201, DRP501] sweep\n"
    above = "# dropout-audit: ignore[DRP201]\nlora_dropout: 0.6\n"
    assert _apply(above, actions.ignore_edit(above, 2, "DRP501")) == \
        "# dropout-audit: ignore[DRP201, DRP501]\nlora_dropout: 0.6\n"


def test_ignore_above_a_backslash_continuation_and_keeps_crlf():
    text = "x = F.dropout(h, 0.1) + \\\r\n    y\r\n"
    assert _apply(text, actions.ignore_edit(text, 1, "DRP600")) == \
        "# dropout-audit: ignore[DRP600]\r\nx = F.dropout(h, 0.1) + \\\r\n    y\r\n"


def test_the_written_directives_are_the_ones_the_engine_reads(tmp_path):
    from tests.conftest import audit

    text = "base_model: m\nadapter: lora\nlora_dropout: 5e-2\n"
    (path,) = write_files(tmp_path, [("recipe.yaml", text)])
    (finding,) = audit([path])
    ignored = _apply(text, actions.ignore_edit(text, finding.span.line, finding.code))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(ignored)
    found = audit([path])
    assert [f.code for f in found if not f.suppressed] == []
    assert [f.code for f in found if f.suppressed] == ["DRP103"]


def test_json_takes_no_comment():
    assert not actions.takes_comments("config.json")
    assert actions.takes_comments("recipe.YAML") and actions.takes_comments("train.py")


# --- notebook documents -------------------------------------------------------------------

CELLS = [
    notebooks.Cell("c0", notebooks.MARKUP, "markdown", "# Title with \"quotes\" and é"),
    notebooks.Cell("c1", notebooks.CODE, "python", "import torch.nn.functional as F\nimport torch.nn as nn\n"),
    notebooks.Cell("c2", notebooks.CODE, "python",
                   "class Block(nn.Module):\n    def forward(self, x):\n        return F.dropout(x, p=0.1)\n"),
    notebooks.Cell("c3", notebooks.CODE, "r", "library(x)\n"),
]


def test_a_notebook_document_is_read_as_its_ipynb_and_placed_back_in_its_cells(tmp_path):
    nb = notebooks.NotebookText(CELLS)
    doc = json.loads(nb.text)
    assert [c["cell_type"] for c in doc["cells"]] == ["markdown", "code", "code", "raw"]
    assert [c["source"] for c in doc["cells"]] == [c.text for c in CELLS]
    path = str(tmp_path / "nb.ipynb")  # never written: the buffer is all there is
    audit = Audit(str(tmp_path))
    audit.set_buffer(path, nb.text)
    try:
        found = audit.check(path)[path]
    finally:
        audit.set_buffer(path, None)
    (f,) = [f for f in found if f.code == "DRP600"]
    assert f.cell[:3] == (3, 3, 16)  # cell 3, its line 3, at F.dropout
    edits = nb.cell_edits(f.fix)
    assert list(edits) == [2]
    new = CELLS[2].text
    for a, b, rep in sorted(edits[2], reverse=True):
        new = new[:a] + rep + new[b:]
    assert "F.dropout(x, p=0.1, training=self.training)" in new
    assert all(len(rep) < 40 for _, _, rep in edits[2])  # the smallest edit, not the whole cell


def test_an_edit_that_is_not_a_whole_cell_source_is_never_guessed():
    nb = notebooks.NotebookText(CELLS)
    assert nb.cell_edits(Fix("x", (Edit(0, 1, "y"),))) is None


def test_smallest_edit():
    assert notebooks.smallest_edit("lora_dropout=0.1,", "lora_dropout=0,") == (14, 16, "")
    assert notebooks.smallest_edit("abc", "abc") == (3, 3, "")
    assert notebooks.smallest_edit("aa", "aaa") == (2, 2, "a")


# --- unsaved buffers ----------------------------------------------------------------------

def test_a_buffer_is_read_instead_of_the_disk_until_it_is_dropped(tmp_path):
    (path,) = write_files(tmp_path, [("recipe.yaml", "on: disk\n")])
    try:
        source_text.set_buffer(path, "in: editor\n")
        assert read_text(path) == "in: editor\n"
        assert read_text(os.path.relpath(path)) == "in: editor\n"  # however the path is spelled
        with pytest.raises(FileProblem, match="limit"):
            read_text(path, max_size=4)
        source_text.set_buffer(path, "\x00binary")
        with pytest.raises(FileProblem, match="NUL"):
            read_text(path)
    finally:
        source_text.set_buffer(path, None)
    assert read_text(path) == "on: disk\n"
    assert source_text.buffer_of(path) is None


# --- the session --------------------------------------------------------------------------

@pytest.fixture
def session(tmp_path):
    audit = Audit(str(tmp_path))
    yield audit
    for path in list(audit.buffers):
        audit.set_buffer(path, None)


def test_a_change_reaches_the_documents_whose_setups_read_it(tmp_path, session):
    script, config, other = write_files(tmp_path, [
        ("train.py", "from transformers import AutoModelForCausalLM\n\n"
                     "model = AutoModelForCausalLM.from_pretrained(\"./base\", hidden_dropout_prob=0.1)\n"),
        ("base/config.json", '{"model_type": "llama"}\n'),
        ("other/recipe.yaml", "base_model: m\nadapter: lora\nlora_dropout: 0.1\n"),
    ])
    for path in (script, config, other):
        session.set_buffer(path, open(path, encoding="utf-8").read())
        session.check(path)
    assert session.dependents(config) == [script]  # the script reads it; the recipe does not
    assert [f.code for f in session.check(script)[script]] == ["DRP124"]
    session.set_buffer(config, '{"model_type": "bert"}\n')
    assert session.check(script)[script] == []


def test_the_configuration_is_rebuilt_when_its_file_changes(tmp_path, session):
    recipe, pyproject = write_files(tmp_path, [("recipe.yaml", "base_model: m\nadapter: lora\nlora_dropout: 5e-2\n"),
                                               ("pyproject.toml", '[tool.dropout-audit]\nignore = ["DRP103"]\n')])
    session.set_buffer(recipe, open(recipe, encoding="utf-8").read())
    assert session.check(recipe)[recipe] == []
    with open(pyproject, "w", encoding="utf-8") as fh:
        fh.write('[tool.dropout-audit]\nignore = []\nexclude = ["nothing/"]\n')  # another size: a new stamp
    assert [f.code for f in session.check(recipe)[recipe]] == ["DRP103"]
    with open(pyproject, "w", encoding="utf-8") as fh:
        fh.write('[tool.dropout-audit]\nexclude = ["recipe.yaml"]\n')
    assert session.check(recipe)[recipe] == []  # excluded files are not reported
    with open(pyproject, "w", encoding="utf-8") as fh:
        fh.write('[tool.dropout-audit]\nselect = 3\n')
    assert [f.code for f in session.check(recipe)[recipe]] == ["DRP103"]  # the defaults, and it is said
    assert any("select" in p for p in session.problems)


def test_plans_explain_a_setting_of_the_file(tmp_path, session):
    (recipe,) = write_files(tmp_path, [("recipe.yaml", "base_model: m\nadapter: lora\nrl: dpo\nlora_dropout: 0.1\n")])
    session.set_buffer(recipe, open(recipe, encoding="utf-8").read())
    source, plans = session.plans(recipe)
    assert source is not None and len(plans) == 1
    offset = source.text.index("lora_dropout") + 2
    text = hover.describe(plans, lambda p: os.path.abspath(p) == recipe, offset, [])
    assert "trains with **0**" in text and "disable_dropout" in text
    assert hover.describe(plans, lambda p: os.path.abspath(p) == recipe, 3, []) is None


def test_running_only_the_reported_files_own_rules_reports_the_same_findings():
    """`given_source_rules` (the server's engines) skips the file rules of the files a check
    reads only for their setups: for every shipped fixture file checked alone, as `check FILE`
    reads it, the findings are the same as without it (the same held on the 362 corpus files)."""
    from auditor.cli import checkrun
    from auditor.core.model import finding_identity
    from auditor.run.discover import discover
    from auditor.run.engine import Engine, Options

    fixtures = os.path.join(REPO, "fixtures")
    plain, fast = Engine(Options(root=fixtures)), Engine(Options(root=fixtures, given_source_rules=True))
    files = discover([fixtures], plain.suffixes).files
    assert len(files) > 50
    differ, skipped = [], 0
    for path in files:
        group = checkrun.with_linkers(checkrun.siblings([path], plain.suffixes), checkrun.linkers([path], fixtures))
        skipped += len(group) > 1
        found = []
        for engine in (plain, fast):
            engine.options.only_given = frozenset([os.path.normpath(path)])
            found.append(sorted((finding_identity(f), f.suppressed) for f in engine.check_paths(group)))
        if found[0] != found[1]:
            differ.append(path)
    assert skipped > 30  # most files have neighbours whose own rules were skipped
    assert differ == []


# --- the command --------------------------------------------------------------------------

def test_the_server_command_says_what_is_missing_without_the_extra():
    code = ("import sys; sys.modules['pygls'] = None; sys.modules['pygls.lsp'] = None\n"
            "from auditor.cli.launch import main\nsys.exit(main(['server']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert done.returncode == 2
    assert "pip install 'dropout-auditor[server]'" in done.stderr


def test_the_server_never_imports_the_probe_stack(tmp_path):
    """The server checks scripts and notebooks as `check` does: torch, transformers and peft
    stay out of its process (a fresh interpreter: this one has imported everything)."""
    pytest.importorskip("pygls")
    write_files(tmp_path, [("train.py", "import torch\nfrom peft import LoraConfig\n\n"
                                        "config = LoraConfig(r=8, lora_dropout=0.1)\n"),
                           ("recipe.yaml", "base_model: m\nadapter: lora\nlora_dropout: 0.1\n")])
    code = ("import json, os, sys\nimport auditor.server.lsp\nfrom auditor.server.audit import Audit\n"
            "audit = Audit('.')\n"
            "for name in ('train.py', 'recipe.yaml'):\n"
            "    path = os.path.abspath(name)\n"
            "    audit.set_buffer(path, open(path).read())\n"
            "    audit.check(path)\n    audit.plans(path)\n"
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=REPO), check=True)
    mods = {m.split(".")[0] for m in json.loads(done.stdout)}
    assert "pygls" in mods and "auditor" in mods
    assert not mods & {"torch", "transformers", "peft"}
