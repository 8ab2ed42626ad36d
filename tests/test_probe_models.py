"""The probe on tiny Transformers models (CPU, seconds each): verdicts on clean setups, and the
key map on real architectures."""

import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from tests.probe_helpers import codes, probe_config, write_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLAMA_LORA = os.path.join(REPO, "fixtures", "probe-llama-lora")
DEAD_KEY = os.path.join(REPO, "fixtures", "probe-dead-key", "config.json")


def rows_by_kind(result):
    out = {}
    for r in result.rows:
        out.setdefault(r.kind.split("@")[0], []).append(r)
    return out


def test_llama_lora_fixture_sites_live_in_train_and_off_in_eval():
    res = probe_config(os.path.join(LLAMA_LORA, "config.json"), os.path.join(LLAMA_LORA, "adapter_config.json"))
    assert codes(res) == set()
    kinds = rows_by_kind(res)
    attn, lora = kinds["sdpa"], kinds["Dropout"]
    assert len(attn) == 2 and all(r.p == pytest.approx(0.1) and r.key == "attention_dropout" for r in attn)
    assert len(lora) == 4 and all(r.p == pytest.approx(0.05) and r.key == "lora_dropout" for r in lora)
    for r in attn + lora:
        assert r.train_verdict == "ok" and r.eval_verdict == "off" and r.eval_dropped == 0
        assert r.ci[0] <= r.p <= r.ci[1]
        assert r.scale == pytest.approx(1 / (1 - r.p), rel=1e-5)
    assert res.eval["two_forwards_equal"] and res.eval["equals_identity"]
    assert res.losses[-1] < res.losses[0]


def test_llama_eager_attention_is_functional_dropout(tmp_path):
    cfg = write_config(tmp_path, "llama", {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
                                           "attention_dropout": 0.2, "_attn_implementation": "eager"})
    res = probe_config(cfg)
    assert codes(res) == set()
    fn = rows_by_kind(res)["F.dropout"]
    assert len(fn) == 2 and all(r.p == pytest.approx(0.2) and r.train_verdict == "ok" for r in fn)
    assert res.meta["attn_implementation"] == "eager"


def test_dead_key_fixture_is_a_measured_noop():
    res = probe_config(DEAD_KEY)
    dead = [f for f in res.findings if f.code == "DRP804"]
    assert len(dead) == 1 and dead[0].key == "hidden_dropout_prob"
    assert (dead[0].span.line, dead[0].span.column) == (7, 3)
    assert codes(res) == {"DRP804"}


def test_bert_module_and_functional_sites(tmp_path):
    cfg = write_config(tmp_path, "bert", {"model_type": "bert", "architectures": ["BertForSequenceClassification"],
                                          "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.15,
                                          "_attn_implementation": "eager"})
    res = probe_config(cfg)
    assert codes(res) == set()
    kinds = rows_by_kind(res)
    assert {r.key for r in kinds["Dropout"]} == {"hidden_dropout_prob"}   # incl. the classifier head
    assert all(r.p == pytest.approx(0.15) and r.key == "attention_probs_dropout_prob" for r in kinds["F.dropout"])
    # BERT's attention.self.dropout module is never called: it is no site
    assert not any(r.path.endswith("attention.self.dropout") for r in res.rows)


def test_gpt2_three_keys_and_a_stock_noop(tmp_path):
    cfg = write_config(tmp_path, "gpt2", {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
                                          "attn_pdrop": 0.1, "embd_pdrop": 0.1, "resid_pdrop": 0.1,
                                          "summary_first_dropout": 0.1})
    res = probe_config(cfg)
    assert codes(res) == set()
    verdicts = {k["key"]: k["verdict"] for k in res.keys}
    assert verdicts == {"attn_pdrop": "live", "embd_pdrop": "live", "resid_pdrop": "live",
                        "summary_first_dropout": "no-op"}   # the LM head never reads it; stock value


def test_t5_and_bart_are_clean(tmp_path):
    t5 = write_config(tmp_path, "t5", {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"],
                                       "dropout_rate": 0.1, "decoder_start_token_id": 0})
    bart = write_config(tmp_path, "bart", {"model_type": "bart", "architectures": ["BartForConditionalGeneration"],
                                           "dropout": 0.1, "attention_dropout": 0.1, "activation_dropout": 0.1})
    for cfg in (t5, bart):
        res = probe_config(cfg)
        assert codes(res) == set(), [f.message for f in res.findings]
        assert all(k["verdict"] == "live" for k in res.keys)
        assert all(r.train_verdict in ("ok", "-") and r.eval_verdict in ("off", "not run") for r in res.rows)


def test_undeclared_key_on_bart_head_and_hardcoded_head(tmp_path):
    cfg = write_config(tmp_path, "llama-tok", {"model_type": "llama", "architectures": ["LlamaForTokenClassification"],
                                               "attention_dropout": 0.1})
    res = probe_config(cfg)
    unexplained = [f for f in res.findings if f.code == "DRP805"]
    assert len(unexplained) == 1 and "dropout" in unexplained[0].message and unexplained[0].severity == "info"


def test_recipe_naming_a_local_model_dir_brings_its_lora(tmp_path):
    recipe = tmp_path / "axolotl.yaml"
    recipe.write_text(f"base_model: {LLAMA_LORA}\nadapter: lora\nlora_r: 4\nlora_alpha: 8\n"
                      "lora_dropout: 0.1\nlora_target_modules:\n  - q_proj\n  - v_proj\n")
    res = probe_config(recipe)
    assert codes(res) == set()
    lora = rows_by_kind(res)["Dropout"]
    assert len(lora) == 4 and all(r.p == pytest.approx(0.1) and r.key == "lora_dropout" for r in lora)
    key = next(k for k in res.keys if k["key"] == "lora_dropout")
    assert key["file"] == str(recipe) and key["line"] == 5


def test_recipe_naming_an_unknown_hub_model_is_refused(tmp_path):
    """A hub id the model identity knows is built from its type (tests/test_identity_probe.py);
    one it does not know cannot be, and nothing is downloaded."""
    from auditor.probe.targets import TargetError, resolve_target

    recipe = tmp_path / "r.yaml"
    recipe.write_text("base_model: acme/private-model\nadapter: lora\n")
    with pytest.raises(TargetError, match="never downloads"):
        resolve_target(str(recipe))


def test_layerdrop_is_live_and_leaves_the_exact_magnitude_check_undecided(tmp_path):
    cfg = write_config(tmp_path, "bart-ld", {"model_type": "bart", "architectures": ["BartForConditionalGeneration"],
                                             "dropout": 0.1, "encoder_layerdrop": 0.3})
    for seed in range(3):
        res = probe_config(cfg, seed=seed)
        assert codes(res) == set()
        assert {k["key"]: k["verdict"] for k in res.keys}["encoder_layerdrop"] == "live"
        assert not res.magnitude.identity_deterministic and "random" in res.magnitude.skipped
