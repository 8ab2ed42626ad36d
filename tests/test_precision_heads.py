"""Issue #13.2: a key only a head reads is read only when `architectures` lists that head (or
lists nothing)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import audit, write_files


def _run(tmp_path, **config):
    write_files(tmp_path, [("config.json", json.dumps(config))])
    return [(f.code, f.message) for f in audit([str(tmp_path)], select=("no-op",))]


def test_head_key_on_a_config_whose_architectures_lack_that_head_is_a_no_op(tmp_path):
    found = _run(tmp_path, model_type="llama", architectures=["LlamaForCausalLM"], classifier_dropout=0.1)
    assert [c for c, _ in found] == ["DRP510"]
    assert "only LlamaForTokenClassification reads classifier_dropout" in found[0][1]
    assert "LlamaForCausalLM" in found[0][1]


@pytest.mark.parametrize("architectures", [["LlamaForTokenClassification"], [], None])
def test_head_key_is_read_when_the_head_is_listed_or_nothing_is(tmp_path, architectures):
    config = {"model_type": "llama", "classifier_dropout": 0.1}
    if architectures is not None:
        config["architectures"] = architectures
    assert _run(tmp_path, **config) == []


def test_fallback_key_named_in_a_head_note_follows_the_same_rule(tmp_path):
    """Llama's token-classification head falls back to hidden_dropout, which Llama does not declare."""
    assert _run(tmp_path, model_type="llama", architectures=["LlamaForTokenClassification"], hidden_dropout=0.1) == []
    assert [c for c, _ in _run(tmp_path, model_type="llama", architectures=["LlamaForCausalLM"],
                                hidden_dropout=0.1)] == ["DRP510"]


def test_structured_read_by_list_is_used_when_the_table_has_one(tmp_path, monkeypatch):
    """The generated table may carry read_by per key; any listed head in architectures reads it,
    and a reader that is not a head (an encoder class every model builds) always does."""
    from auditor.knowledge import architectures as arch

    real = arch.lookup("llama")

    def fake(model_type):
        if model_type != "llama":
            return arch.lookup.__wrapped__(model_type)
        entry = {"note": "token classification and QA heads", "read_by": ["LlamaForTokenClassification",
                                                                          "LlamaForQuestionAnswering"]}
        return real.replace(read_undeclared={"classifier_dropout": entry})

    monkeypatch.setattr(arch, "lookup", fake)
    assert _run(tmp_path, model_type="llama", architectures=["LlamaForQuestionAnswering"], classifier_dropout=0.1) == []
    found = _run(tmp_path, model_type="llama", architectures=["LlamaForCausalLM"], classifier_dropout=0.1)
    assert "LlamaForTokenClassification, LlamaForQuestionAnswering" in found[0][1]

    def encoder_reads(model_type):
        record = fake(model_type)
        if model_type == "llama":
            record = record.replace(read_undeclared={"classifier_dropout": {"read_by": ["LlamaEncoder"]}})
        return record

    monkeypatch.setattr(arch, "lookup", encoder_reads)
    assert _run(tmp_path, model_type="llama", architectures=["LlamaForCausalLM"], classifier_dropout=0.1) == []


def test_declared_key_read_only_by_heads_not_in_architectures(tmp_path):
    """bert declares classifier_dropout, but only its classification heads read it (read_by in the table)."""
    found = [(f.code, f.message) for f in audit_no_op(tmp_path, model_type="bert", architectures=["BertForMaskedLM"],
                                                       classifier_dropout=0.2)]
    assert [c for c, _ in found] == ["DRP511"]
    assert "BertForSequenceClassification" in found[0][1] and "BertForMaskedLM" in found[0][1]


@pytest.mark.parametrize("config", [
    {"model_type": "bert", "architectures": ["BertForSequenceClassification"], "classifier_dropout": 0.2},
    {"model_type": "bert", "classifier_dropout": 0.2},
    {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "summary_first_dropout": 0.1},  # its default
    {"model_type": "bert", "architectures": ["MyBertForMaskedLM"], "classifier_dropout": 0.2},  # not measured
])
def test_declared_head_key_quiet_cases(tmp_path, config):
    assert audit_no_op(tmp_path, **config) == []


def audit_no_op(tmp_path, **config):
    write_files(tmp_path, [("config.json", json.dumps(config))])
    return audit([str(tmp_path)], select=("no-op",))
