"""Readers and value parsing: exact spans, YAML 1.1 vs 1.2, switches that are not rates."""

from __future__ import annotations

import pytest

from auditor.core import probability
from auditor.knowledge import dropout_keys
from auditor.sources import structured


@pytest.mark.parametrize("key", ["lora_dropout", "hidden_dropout_prob", "attn_pdrop", "layerdrop", "drop_path_rate",
                                 "hidden-dropout", "encoder_layerdrop", "adapter_dropout", "drop_rate"])
def test_rate_keys(key):
    assert dropout_keys.is_rate_key(key)


@pytest.mark.parametrize("key", ["bias_dropout_add_fusion", "drop_last", "dataloader_drop_last", "token_dropout",
                                 "rank_dropout_scale", "disable_dropout", "normalize_router_prob_before_dropping",
                                 "dropdown", "backdrop"])
def test_switches_and_lookalikes_are_not_rates(key):
    assert not dropout_keys.is_rate_key(key)


@pytest.mark.parametrize("key,role", [("attention_probs_dropout_prob", "attention"), ("lora_dropout", "lora"),
                                      ("hidden_dropout_prob", "hidden"), ("embd_pdrop", "embedding"),
                                      ("activation_dropout", "activation"), ("classifier_dropout", "classifier"),
                                      ("drop_path_rate", "stochastic-depth"), ("encoder_layerdrop", "layerdrop"),
                                      ("dropout", "hidden"), ("resid_pdrop", "hidden")])
def test_roles(key, role):
    assert dropout_keys.role_of(key) == role


@pytest.mark.parametrize("text,expected", [("5e-2", True), ("1e-4", True), ("1.0e-4", False), ("0.05", False),
                                           ("1.0e5", True), ("0", False), ("10", False), (".5", False)])
def test_yaml11_float_strings(text, expected):
    assert probability.yaml11_reads_as_string(text) is expected


def test_classify_reasons():
    assert probability.classify(None, quoted=False) == (None, "null")
    assert probability.classify(True, quoted=False) == (None, "bool")
    assert probability.classify("0.1", quoted=True) == (None, "numeric-string")
    assert probability.classify("${X}", quoted=False) == (None, "template")
    assert probability.classify("{{ p }}", quoted=True) == (None, "template")
    assert probability.classify(0.1, quoted=False) == (0.1, None)


def test_spans_are_exact_in_yaml_and_json():
    text = "model:\n  lora_dropout: 0.05   # comment\n"
    src = structured.read("recipe.yaml", text)
    (s,) = src.settings
    assert (s.value_span.line, s.value_span.column, s.value_span.end_column) == (2, 17, 21)
    assert text[s.value_span.start:s.value_span.end] == "0.05" and s.key_path == ("model", "lora_dropout")
    text = '{\n  "model_type": "bert",\n  "hidden_dropout_prob": 0.1\n}'
    (s,) = structured.read("config.json", text).settings
    assert (s.key_span.line, s.key_span.column, s.value_span.column) == (3, 3, 26) and s.p == 0.1


def test_empty_value_is_placed_after_the_colon():
    src = structured.read("recipe.yaml", "base_model: m\nadapter:\nlora_dropout:\n")
    (s,) = src.settings
    assert s.reason == "null" and (s.value_span.line, s.value_span.column) == (3, 14)


def test_python_tags_are_never_constructed(tmp_path):
    marker = tmp_path / "marker"
    text = f"lora_dropout: !!python/object/apply:os.system ['touch {marker}']\nadapter: lora\nbase_model: m\n"
    structured.read("recipe.yaml", text)
    assert not marker.exists()


def test_alias_bomb_is_not_expanded():
    lines = ["a0: &a0 [lora_dropout, 0.1]"]
    for i in range(1, 30):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i-1}"] * 9) + "]")
    lines.append("lora_dropout: 0.1")
    src = structured.read("bomb.yaml", "\n".join(lines) + "\n")
    assert [s.key for s in src.settings] == ["lora_dropout"]


def test_tokenizer_files_are_not_configs():
    assert structured.read("tokenizer.json", '{"added_tokens": [], "model": {"type": "BPE", "dropout": null}}') is None


def test_dialects_are_recognised():
    cases = {
        "base_model: m\nadapter: lora\n": "axolotl",
        "stage: sft\nfinetuning_type: lora\nmodel_name_or_path: m\nlora_dropout: 0.1\n": "llamafactory",
        "model:\n  _component_: torchtune.models.x\n  lora_dropout: 0.0\n": "torchtune",
        "num-layers: 2\nhidden-dropout: 0.1\n": "gpt-neox",
        "trainer: {}\nmodel: {hidden_dropout: 0.1}\nexp_manager: {}\n": "nemo",
        "checkpoint_dir: x\nlora_dropout: 0.05\n": "litgpt",
        "model_name_or_path: m\nuse_peft: true\nlora_dropout: 0.05\n": "trl",
        "model:\n  dropout: 0.1\n": "generic",
    }
    for text, dialect in cases.items():
        assert structured.read("r.yaml", text).dialect == dialect, text
