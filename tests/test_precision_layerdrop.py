"""Issue #13.5: layer drop that skips whole layers, under DDP that expects every gradient."""

from __future__ import annotations

import json

import pytest

from tests.conftest import audit, write_files

ARGS = "model_name_or_path: facebook/bart-base\noutput_dir: out\nper_device_train_batch_size: 8\n"


def _run(tmp_path, files):
    write_files(tmp_path, files)
    return [(f.code, f.path.rsplit("/", 1)[-1], f.span.line, f.message)
            for f in audit([str(tmp_path)], select=("DRP430",))]


def _config(model_type="bart", **keys):
    return ("config.json", json.dumps({"model_type": model_type, **keys}))


@pytest.mark.parametrize("args,cited", [
    ("ddp_find_unused_parameters: false\n", "ddp_find_unused_parameters: false at train.yaml:4"),
    ("gradient_checkpointing: true\n", "gradient_checkpointing: true at train.yaml:4 makes the Trainer pass find_unused_parameters=False"),
    ("activation_checkpointing: true\n", "activation_checkpointing: true at train.yaml:4 makes the Trainer pass"),
])
def test_trainer_args_that_make_ddp_expect_every_gradient(tmp_path, args, cited):
    found = _run(tmp_path, [_config(encoder_layerdrop=0.1), ("train.yaml", ARGS + args)])
    assert [(c, p, line) for c, p, line, _ in found] == [("DRP430", "config.json", 1)]
    message = found[0][3]
    assert cited in message
    assert "Set encoder_layerdrop to 0.0, or let DDP find unused parameters" in message


@pytest.mark.parametrize("files", [
    [_config(encoder_layerdrop=0.0), ("train.yaml", ARGS + "ddp_find_unused_parameters: false\n")],
    [_config(encoder_layerdrop=0.1), ("train.yaml", ARGS + "gradient_checkpointing: true\n"
                                                           "ddp_find_unused_parameters: true\n")],
    [_config(encoder_layerdrop=0.1), ("train.yaml", ARGS)],
    [_config("convnext", drop_path_rate=0.3), ("train.yaml", ARGS + "ddp_find_unused_parameters: false\n")],
])
def test_quiet_when_either_side_is_fine(tmp_path, files):
    assert _run(tmp_path, files) == []


W2V = "from transformers import Wav2Vec2ForCTC\nmodel = Wav2Vec2ForCTC.from_pretrained('m', layerdrop=0.05)\n"


@pytest.mark.parametrize("tail,fires", [
    ("from torch.nn.parallel import DistributedDataParallel as DDP\nmodel = DDP(model)\n", True),
    ("import torch\nmodel = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=False)\n", True),
    ("import torch\nmodel = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)\n", False),
    ("from transformers import TrainingArguments\nargs = TrainingArguments('o', gradient_checkpointing=True)\n", True),
    ("from transformers import TrainingArguments\n"
     "args = TrainingArguments('o', gradient_checkpointing=True, ddp_find_unused_parameters=True)\n", False),
    ("from transformers import Trainer\nmodel.gradient_checkpointing_enable()\nTrainer(model=model)\n", True),
    ("from transformers import Trainer\nTrainer(model=model)\n", False),
])
def test_ddp_settings_in_code(tmp_path, tail, fires):
    found = _run(tmp_path, [("train.py", W2V + tail)])
    assert bool(found) is fires, found
    if fires:
        assert found[0][2] == 2 and "wav2vec2 skip whole layers" in found[0][3]


def test_auto_class_uses_the_key_when_every_reader_skips(tmp_path):
    code = ("from transformers import AutoModel\nfrom torch.nn.parallel import DistributedDataParallel as DDP\n"
            "model = AutoModel.from_pretrained('m', encoder_layerdrop=0.1)\nmodel = DDP(model)\n")
    found = _run(tmp_path, [("train.py", code)])
    assert len(found) == 1 and "every model type that reads encoder_layerdrop" in found[0][3]


def test_trainer_default_is_what_the_rule_says():
    """The rule relies on Trainer passing find_unused_parameters = not checkpointing when
    ddp_find_unused_parameters is unset; this fails when the pinned Transformers changes that."""
    transformers = pytest.importorskip("transformers")
    import inspect

    source = inspect.getsource(transformers.Trainer._build_accelerator_args)
    assert "find_unused = not (self.model.is_activation_checkpointing or self.args.activation_checkpointing)" in source


def test_layer_skipping_data_matches_the_pinned_libraries():
    transformers = pytest.importorskip("transformers")
    from auditor.knowledge import layer_skipping

    with open(layer_skipping.DATA_FILE, encoding="utf-8") as handle:
        doc = json.load(handle)
    assert doc["versions"]["transformers"] == transformers.__version__
    assert layer_skipping.skips("wav2vec2", "layerdrop") and layer_skipping.skips("bart", "decoder_layerdrop")
    assert not layer_skipping.skips("convnext", "drop_path_rate")
