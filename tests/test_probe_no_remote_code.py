"""The probe runs a config's own code only with --trust-remote-code (issue 8): a config.json
whose auto_map points at a module that would leave a marker file must leave none."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


def _custom_config_dir(tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "configuration_evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import PretrainedConfig\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil'\n")
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "evil", "architectures": ["EvilForCausalLM"], "attention_dropout": 0.1,
        "auto_map": {"AutoConfig": "configuration_evil.EvilConfig"}}))
    return marker


def test_custom_code_config_is_refused_without_trust_remote_code(tmp_path, run_cli):
    marker = _custom_config_dir(tmp_path)
    code, out = run_cli("probe", str(tmp_path / "config.json"), "--device", "cpu", "--steps", "2")
    assert code == 2, out
    assert "--trust-remote-code" in out
    assert not marker.exists(), "the config's own code ran without --trust-remote-code"


def test_static_check_reports_custom_code_and_runs_nothing(tmp_path, run_cli):
    marker = _custom_config_dir(tmp_path)
    code, out = run_cli("check", "--format", "concise", "--no-cache", str(tmp_path))
    assert "DRP003" in out
    assert not marker.exists()
