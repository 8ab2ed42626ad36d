"""Issue #13.1 and #16.6: "extreme" is judged against the architecture's default and only in
setups that fine-tune a pretrained model."""

from __future__ import annotations

import json

import pytest

from tests.conftest import audit, write_files


def _codes(tmp_path, files, select=("extreme",)):
    write_files(tmp_path, files)
    return [(f.code, f.severity, f.message) for f in audit([str(tmp_path)], select=select)]


def _config(**keys):
    return ("config.json", json.dumps(keys))


@pytest.mark.parametrize("model_type,key,value", [
    ("efficientnet", "dropout_rate", 0.5),
    ("mobilenet_v1", "classifier_dropout_prob", 0.999),
    ("mobilenet_v2", "classifier_dropout_prob", 0.8),
])
def test_architecture_default_is_not_extreme(tmp_path, model_type, key, value):
    assert _codes(tmp_path, [_config(model_type=model_type, **{key: value})]) == []


def test_raised_well_above_a_high_default_fires_and_states_the_default(tmp_path):
    found = _codes(tmp_path, [_config(model_type="mobilenet_v2", classifier_dropout_prob=0.95)])
    assert [c for c, _, _ in found] == ["DRP200"]
    assert "mobilenet_v2's default is 0.8" in found[0][2]


def test_slightly_above_a_high_default_is_quiet(tmp_path):
    assert _codes(tmp_path, [_config(model_type="efficientnet", dropout_rate=0.55)]) == []


def test_above_the_role_limit_where_the_default_is_below_it(tmp_path):
    found = _codes(tmp_path, [_config(model_type="bert", hidden_dropout_prob=0.4)])
    assert [c for c, _, _ in found] == ["DRP200"]
    assert "above 0.3; bert's default is 0.1" in found[0][2]


SCRATCH = "import argparse\np = argparse.ArgumentParser()\np.add_argument('--dropout', type=float, default={v})\n"


def test_from_scratch_script_is_info_and_names_the_role(tmp_path):
    found = _codes(tmp_path, [("train.py", SCRATCH.format(v=0.6))])
    assert [(c, s) for c, s, _ in found] == [("DRP202", "info")]
    assert "hidden dropout" in found[0][2]


def test_from_scratch_half_is_quiet(tmp_path):
    """A graph network's 0.5 (the GCN paper's value) was a DRP200 warning (issue #16)."""
    assert _codes(tmp_path, [("train.py", SCRATCH.format(v=0.5))]) == []


@pytest.mark.parametrize("loader", [
    "from transformers import AutoModel\nm = AutoModel.from_pretrained('bert-base-uncased')\n",
    "import timm\nm = timm.create_model('vit_base_patch16_224', pretrained=True)\n",
    "import torchvision\nm = torchvision.models.resnet50(weights='IMAGENET1K_V2')\n",
])
def test_script_that_loads_pretrained_weights_is_judged_as_a_fine_tune(tmp_path, loader):
    found = _codes(tmp_path, [("train.py", loader + SCRATCH.format(v=0.5))])
    assert [(c, s) for c, s, _ in found] == [("DRP200", "warning")]
