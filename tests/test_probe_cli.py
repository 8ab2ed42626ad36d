"""The probe command end to end: shared reporters, exit codes, HTML, restoring torch, no torch."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch
import torch.nn.functional as F
from click.testing import CliRunner

import tests.probe_helpers  # noqa: F401  (one thread)
from auditor.probe.command import probe
from auditor.probe.instrument import Instrument

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEAD = os.path.join(REPO, "fixtures", "probe-dead-key", "config.json")
FAULTS = os.path.join(REPO, "tests", "probe_faults.py")


def invoke(*args):
    return CliRunner().invoke(probe, list(args) + ["--steps", "4"], catch_exceptions=False)


def test_json_format_and_exit_code_like_check(tmp_path):
    html = tmp_path / "r.html"
    res = invoke(DEAD, "--json", "--html", str(html))
    assert res.exit_code == 1
    data = json.loads(res.output)
    findings = data["findings"] if isinstance(data, dict) else data
    assert [f["code"] for f in findings] == ["DRP804"]
    assert findings[0]["category"] == "probe" and findings[0]["line"] == 7
    page = html.read_text()
    assert "<svg" in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page
    assert invoke(DEAD, "--json", "--exit-zero").exit_code == 0
    assert invoke(DEAD, "--format", "concise", "--fail-on", "error").exit_code == 0


def test_sarif_from_a_factory(tmp_path):
    out = tmp_path / "probe.sarif"
    res = invoke("--factory", f"{FAULTS}:fault_sdpa_ungated", "--format", "sarif", "-o", str(out))
    assert res.exit_code == 1
    sarif = json.loads(out.read_text())
    ids = {r["ruleId"] for r in sarif["runs"][0]["results"]}
    assert "DRP800" in ids


def test_full_format_prints_the_site_table():
    res = invoke("--factory", f"{FAULTS}:clean_sdpa")
    assert res.exit_code == 0
    assert "sdpa" in res.output and "measured rate" in res.output


def test_usage_errors_exit_2(tmp_path):
    assert invoke().exit_code == 2
    assert invoke(DEAD, "--factory", f"{FAULTS}:clean_mlp").exit_code == 2
    assert invoke(str(tmp_path / "missing.json")).exit_code == 2
    (tmp_path / "config.json").write_text('{"model_type": "no-such-model"}')
    assert invoke(str(tmp_path / "config.json")).exit_code == 2


def test_everything_is_restored_after_an_error():
    from torch.overrides import _get_current_function_mode_stack

    before = (F.dropout, F.dropout2d, F.scaled_dot_product_attention, torch.dropout)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5))
    with pytest.raises(RuntimeError), Instrument(model):
        assert len(_get_current_function_mode_stack()) == 1   # the dropout function mode
        model(torch.randn(2, 5))   # wrong width: raises inside the hooks' scope
    assert (F.dropout, F.dropout2d, F.scaled_dot_product_attention, torch.dropout) == before
    assert not _get_current_function_mode_stack()
    assert not model[0]._forward_hooks and not model[1]._forward_pre_hooks


def test_missing_torch_names_the_extra():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from auditor.cli.commands import main\n"
            "sys.exit(main(['probe', 'x.json']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert out.returncode == 2
    assert "pip install 'dropout-auditor[probe]'" in out.stderr


def test_help_does_not_import_torch():
    code = ("import sys\nfrom auditor.cli.commands import main\n"
            "try:\n    main(['probe', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False,
                         env={**os.environ, "PYTHONPATH": REPO})
    assert out.stdout.strip().endswith("False"), out.stdout
    assert "RUNS FILE.py" in out.stdout


def test_a_refused_model_still_writes_its_report_files_with_the_refusal(tmp_path):
    """--html and --measurements were silently not written for a refused type."""
    config = tmp_path / "config.json"
    config.write_text('{"model_type": "blip_2_vision_model"}')
    html, measured = tmp_path / "r.html", tmp_path / "m.json"
    res = invoke(str(config), "--format", "concise", "--html", str(html), "--measurements", str(measured))
    assert res.exit_code == 2
    data = json.loads(measured.read_text())
    assert data["meta"]["refused"] is True and "blip-2" in data["meta"]["reason"]
    assert [f["code"] for f in data["findings"]] == ["DRP811"]
    page = html.read_text()
    assert "DRP811" in page and "Nothing was measured" in page and "<script" not in page


def test_html_renders_every_summary_as_a_table(tmp_path):
    """The eval, magnitude, loss and key summaries were only in the HTML's raw JSON."""
    import re

    html = tmp_path / "r.html"
    invoke(DEAD, "--format", "concise", "--html", str(html))
    page = html.read_text()
    for heading in ("Parts of the model that ran", "Sites", "Eval mode", "Expected magnitude", "Loss",
                    "Keys (switched off one at a time)", "Module survey (hand-written dropout)"):
        section = page.split(f"<h2>{heading}</h2>", 1)[1].split("<h2>", 1)[0]
        assert section.lstrip().startswith("<table>"), heading
    keys = page.split("<h2>Keys (switched off one at a time)</h2>", 1)[1].split("<h2>", 1)[0]
    assert re.search(r'<tr class="bad"><td>hidden_dropout_prob</td><td>0.3</td><td>no-op</td>', keys)
    assert "<td>two_forwards_equal</td><td>True</td>" in page


def test_a_report_file_that_cannot_be_written_is_one_line_not_a_traceback(tmp_path):
    res = CliRunner().invoke(probe, [DEAD, "--steps", "2", "--format", "concise", "--html",
                                     str(tmp_path / "missing" / "r.html")], catch_exceptions=False)
    assert res.exit_code == 2 and "cannot write the report file" in res.output and "Traceback" not in res.output
