"""Issue #13.4: dropout values that are not numbers at all are errors that say what they are."""

from __future__ import annotations

import time

import pytest

from tests.conftest import audit, write_files

HEAD = "base_model: m\nadapter: lora\n"
LAUGHS = "a: &a [" + ", ".join(["lol"] * 9) + "]\n" + "".join(
    f"{c}: &{c} [" + ", ".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefg", "bcdefgh"))


def _findings(tmp_path, name, text):
    write_files(tmp_path, [(name, text)])
    return [(f.code, f.message) for f in audit([str(tmp_path)], select=("invalid",))]


@pytest.mark.parametrize("value,what", [
    ("[0.1, 0.2]", "a list of 2 items"),
    ("{p: 0.1}", "a mapping"),
    ("!!python/object/apply:os.system [\"true\"]", "a !!python/object/apply tag (os.system), which safe loaders reject"),
    ("!!python/name:os.system", "a !!python/name tag (os.system), which safe loaders reject"),
])
def test_value_that_is_not_a_number_is_one_error_naming_it(tmp_path, value, what):
    found = _findings(tmp_path, "r.yaml", f"{HEAD}lora_dropout: {value}\n")
    assert found == [("DRP106", f"lora_dropout is {what}; " + ("loading this file fails" if "tag" in what
                                                                  else "a dropout rate is one number"))]


def test_alias_to_a_billion_laughs_list_is_named_not_expanded(tmp_path):
    assert LAUGHS.startswith("a: &a [lol,")
    start = time.perf_counter()
    found = _findings(tmp_path, "r.yaml", HEAD + LAUGHS + "lora_dropout: *h\n")
    assert time.perf_counter() - start < 5
    assert found == [("DRP106", "lora_dropout is an alias to &h, a sequence; a dropout rate is one number")]
    finding = audit([str(tmp_path)], select=("DRP106",))[0]
    assert (finding.span.line, finding.span.column, finding.span.end_column) == (11, 15, 17)


def test_alias_to_a_number_is_a_number(tmp_path):
    assert _findings(tmp_path, "r.yaml", f"{HEAD}d: &d 0.05\nlora_dropout: *d\n") == []


def test_adapter_config_list(tmp_path):
    found = _findings(tmp_path, "adapter_config.json", '{"peft_type": "LORA", "lora_dropout": [0.1, 0.2]}')
    assert [c for c, _ in found] == ["DRP106"]


def test_generic_yaml_sweep_is_not_judged(tmp_path):
    assert _findings(tmp_path, "sweep.yaml", "parameters:\n  lora_dropout: {values: [0.05, 0.1]}\n"
                                             "  dropout: [0.1, 0.2]\n") == []


def test_config_list_where_the_architecture_declares_a_list(tmp_path):
    assert _findings(tmp_path, "config.json", '{"model_type": "cvt", "drop_path_rate": [0.0, 0.0, 0.1]}') == []
    found = _findings(tmp_path, "config.json", '{"model_type": "bert", "hidden_dropout_prob": {"p": 0.1}}')
    assert found == [("DRP106", "hidden_dropout_prob is a mapping; a dropout rate is one number")]


def test_torchtune_layer_dropout_section_is_not_a_value(tmp_path):
    """Found on the corpus (torchtune recipes/dev/7B_full_early_exit.yaml): a section, not a rate."""
    text = ("model:\n  _component_: torchtune.models.llama2.llama2_7b\n"
            "layer_dropout:\n  prob: 0.2\n  layers: \":\"\n  layers_scale: \"exp\"\n")
    assert _findings(tmp_path, "7B_full_early_exit.yaml", text) == []
