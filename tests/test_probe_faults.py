"""Planted faults must be caught and clean models must pass, over 20 fixed seeds each.

The longer sweep that measures false-alarm and miss rates is bench/probe_seeds.py.
"""

import os

import pytest

pytest.importorskip("torch")

from tests.probe_faults import CLEAN, FAULTS
from tests.probe_helpers import codes, probe_config, probe_factory

SEEDS = range(20)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("name", CLEAN)
def test_clean_factories_never_flagged(name):
    flagged = {s: sorted(codes(probe_factory(name, seed=s))) for s in SEEDS}
    assert all(not c for c in flagged.values()), flagged


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_planted_faults_always_caught(name):
    missed = {}
    for s in SEEDS:
        found = codes(probe_factory(name, seed=s))
        if not FAULTS[name] <= found:
            missed[s] = sorted(found)
    assert not missed, missed


def test_dead_key_caught_on_every_seed():
    pytest.importorskip("transformers")
    path = os.path.join(REPO, "fixtures", "probe-dead-key", "config.json")
    for s in SEEDS:
        res = probe_config(path, seed=s, steps=3, magnitude_forwards=4)
        assert "DRP804" in codes(res), s


def test_clean_llama_lora_never_flagged():
    pytest.importorskip("peft")
    d = os.path.join(REPO, "fixtures", "probe-llama-lora")
    for s in SEEDS:
        res = probe_config(os.path.join(d, "config.json"), os.path.join(d, "adapter_config.json"), seed=s, steps=4,
                           magnitude_forwards=8, key_forwards=4)
        assert codes(res) == set(), (s, [f.message for f in res.findings])


def test_ungated_functional_dropout_is_located_in_user_code():
    res = probe_factory("fault_functional_no_flag")
    f = next(f for f in res.findings if f.code == "DRP800")
    assert f.path.endswith("probe_faults.py") and f.span.line > 1
    assert "training=True" in f.message


def test_eval_rescale_message_names_the_textbook_bug():
    res = probe_factory("fault_eval_rescale")
    f = next(f for f in res.findings if f.code == "DRP803")
    assert "1/(1-p) for p=0.1" in f.message


def test_drp800_points_at_the_dropout_call_not_the_forward():
    """Issue 27: it pointed at `def forward`; it must point at the F.dropout call itself."""
    import linecache

    res = probe_factory("fault_functional_no_flag")
    f = next(f for f in res.findings if f.code == "DRP800")
    line = linecache.getline(os.path.join(REPO, "tests", "probe_faults.py"), f.span.line)
    assert "F.dropout(h, P)" in line and "def forward" not in line
    assert line[f.span.column - 1:f.span.end_column - 1] == "F.dropout"


def test_model_level_findings_point_at_the_model_not_1_1(tmp_path):
    """Issue 27: DRP808/DRP809 pointed at 1:1 of a file; they point at the model's forward (a
    factory) or the config's model_type key."""
    import linecache

    from auditor.core.model import Span
    from auditor.probe import checks
    from tests.probe_faults import _MLP

    path, span = checks.model_location("factory", _MLP("clean"), "x.json", None)
    assert path.endswith("probe_faults.py") and "def forward" in linecache.getline(
        os.path.join(REPO, "tests", "probe_faults.py"), span.line)
    at = Span(3, 5, 3, 17, 20, 32)
    assert checks.model_location("config", None, "config.json", at) == ("config.json", at)
    found = checks.eval_output_checks(False, 1.0, False, 1.0, "config.json", at)
    assert [(f.code, f.span) for f in found] == [("DRP808", at)]  # #32: a random eval is not compared with identity
    found = checks.eval_output_checks(True, 0.0, False, 1.0, "config.json", at)
    assert [(f.code, f.span) for f in found] == [("DRP809", at)]
