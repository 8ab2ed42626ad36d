"""The rules on a model named by reference, each verified against the pinned Transformers with a
tiny local model (no hub): the library does what the finding says, and the auditor says it
about the same script."""

from __future__ import annotations

import os

import pytest

from tests.conftest import audit

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny Llama and GPT-2 saved locally, so from_pretrained runs without the network."""
    base = tmp_path_factory.mktemp("tiny")
    llama = transformers.LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, num_key_value_heads=2, vocab_size=64)
    transformers.LlamaForCausalLM(llama).save_pretrained(base / "llama")
    gpt2 = transformers.GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=64, n_positions=32)
    transformers.GPT2LMHeadModel(gpt2).save_pretrained(base / "gpt2")
    return base


def _script(tmp_path, body):
    path = tmp_path / "train.py"
    path.write_text("from transformers import AutoConfig, AutoModelForCausalLM\n" + body)
    return str(path)


def test_config_kwarg_undeclared_is_dropped(tiny_models, tmp_path):
    ref = str(tiny_models / "llama")
    config = transformers.AutoConfig.from_pretrained(ref, hidden_dropout_prob=0.1, attention_dropout=0.2)
    assert not hasattr(config, "hidden_dropout_prob") and config.attention_dropout == 0.2
    found = audit([_script(tmp_path, f"c = AutoConfig.from_pretrained({ref!r}, hidden_dropout_prob=0.1, "
                                     "attention_dropout=0.2)\n")])
    assert [(f.code, f.span.line) for f in found] == [("DRP515", 2)]


def test_model_kwarg_undeclared_raises_typeerror(tiny_models, tmp_path):
    for name, key in (("llama", "hidden_dropout_prob"), ("gpt2", "hidden_dropout_prob"), ("llama", "dropout")):
        ref = str(tiny_models / name)
        with pytest.raises(TypeError, match=key):
            transformers.AutoModelForCausalLM.from_pretrained(ref, **{key: 0.1})
        found = audit([_script(tmp_path, f"m = AutoModelForCausalLM.from_pretrained({ref!r}, {key}=0.1)\n")])
        assert [(f.code, f.severity) for f in found] == [("DRP124", "error")], (name, key, found)


def test_model_kwarg_declared_is_applied(tiny_models, tmp_path):
    ref = str(tiny_models / "llama")
    model = transformers.AutoModelForCausalLM.from_pretrained(ref, attention_dropout=0.2)
    assert model.model.layers[0].self_attn.attention_dropout == 0.2
    assert audit([_script(tmp_path, f"m = AutoModelForCausalLM.from_pretrained({ref!r}, attention_dropout=0.2)\n")]) == []


def test_config_attribute_unread_is_kept_and_ignored(tiny_models, tmp_path):
    ref = str(tiny_models / "llama")
    config = transformers.AutoConfig.from_pretrained(ref)
    config.hidden_dropout_prob = 0.1
    model = transformers.AutoModelForCausalLM.from_config(config)
    assert config.hidden_dropout_prob == 0.1
    assert not [m for m in model.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]
    assert all(layer.self_attn.attention_dropout == 0.0 for layer in model.model.layers)
    body = (f"config = AutoConfig.from_pretrained({ref!r})\n"
            "config.hidden_dropout_prob = 0.1\n"
            "model = AutoModelForCausalLM.from_config(config)\n"
            "model.config.resid_pdrop = 0.1\n")
    found = audit([_script(tmp_path, body)])
    assert ("DRP516", 3) in [(f.code, f.span.line) for f in found]
    assert not [f for f in found if f.code == "DRP516" and f.span.line == 5]  # after the build: DRP523's case


def test_config_attribute_read_by_the_type_is_not_flagged(tiny_models, tmp_path):
    ref = str(tiny_models / "gpt2")
    body = (f"config = AutoConfig.from_pretrained({ref!r})\n"
            "config.resid_pdrop = 0.2\n"
            "model = AutoModelForCausalLM.from_pretrained(" + repr(ref) + ", config=config)\n")
    assert audit([_script(tmp_path, body)]) == []


def test_the_tutorial_fixture(tiny_models):
    from tests.conftest import REPO

    found = audit([os.path.join(REPO, "fixtures", "hub-id-tutorial")])
    assert [(f.code, f.span.line) for f in found] == [("DRP516", 8), ("DRP124", 12)]


def test_trust_remote_code_loads_are_not_judged(tmp_path):
    """The repository's own config and model classes may declare any key: no finding."""
    body = ('c = AutoConfig.from_pretrained("meta-llama/Llama-3.2-1B", trust_remote_code=True, hidden_dropout_prob=0.1)\n'
            'm = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-1B", trust_remote_code=True, '
            'hidden_dropout_prob=0.1)\n')
    assert audit([_script(tmp_path, body)]) == []
    body = body.replace("trust_remote_code=True", "trust_remote_code=False")
    assert sorted(f.code for f in audit([_script(tmp_path, body)])) == ["DRP124", "DRP515"]
