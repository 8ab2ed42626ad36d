"""TRL's trainer facts are generated from the pinned trl source (data/trl.json), never hand-written."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from auditor.generate import trl as build_trl
from auditor.knowledge import frameworks as fw


def _doc() -> dict:
    return json.loads(build_trl.DATA_FILE.read_text(encoding="utf-8"))


def test_data_names_the_trl_it_was_generated_from():
    assert _doc()["trl"] == "1.16.0"


def test_trainers_that_zero_dropout_after_the_peft_wrap():
    t = fw.trl_trainers()
    for name in ("dpo", "kto", "reward", "orpo", "cpo", "online_dpo", "gold", "gkd", "grpo", "rloo"):
        assert t[name]["calls_disable_dropout"], name
        assert t[name]["after_peft_wrap"] is True, name
    assert fw.TRL_DISABLE_DROPOUT_DEFAULT["dpo"] is True
    assert fw.TRL_DISABLE_DROPOUT_DEFAULT["gold"] is True       # experimental trainer, inherits SFTTrainer
    assert fw.TRL_DISABLE_DROPOUT_DEFAULT["grpo"] is False
    assert fw.TRL_DISABLE_DROPOUT_DEFAULT["rloo"] is False
    assert not t["sft"]["calls_disable_dropout"]


def test_trainers_absent_from_the_pinned_trl_get_no_default():
    """BCO, PPO, PRM, Nash-MD and XPO are not in trl 1.16.0: claiming a default would be a guess."""
    for name in ("bco", "ppo", "prm", "nash_md", "xpo"):
        assert name not in fw.TRL_DISABLE_DROPOUT_DEFAULT


def test_hierarchy_is_followed_for_inherited_defaults():
    t = fw.trl_trainers()
    assert t["gold"]["bases"] == ["SFTTrainer"]
    assert t["server_distillation"]["bases"] == ["DistillationTrainer"]
    assert t["server_distillation"]["config_disable_dropout"] is False


def test_scanner_reads_field_defaults_and_peft_order(tmp_path):
    pkg = tmp_path / "trl"
    pkg.mkdir()
    (pkg / "x_config.py").write_text(
        "from dataclasses import dataclass, field\n@dataclass\nclass XConfig(BaseConfig):\n"
        "    disable_dropout: bool = field(default=False)\n")
    (pkg / "x_trainer.py").write_text(
        "class XTrainer(Base):\n    def __init__(self, model, args: XConfig | None = None):\n"
        "        if args.disable_dropout:\n            disable_dropout_in_model(model)\n"
        "        model = get_peft_model(model, cfg)\n")
    raw = build_trl.scan(pkg)
    assert raw["configs"]["XConfig"]["disable_dropout"] is False
    facts = build_trl.resolved(raw)["XTrainer"]
    assert facts["config"] == "XConfig" and facts["calls_disable_dropout"]
    assert facts["after_peft_wrap"] is False     # zeroed before the wrap: LoRA dropout survives


def test_no_drift_from_the_installed_trl():
    try:
        version = importlib.metadata.version("trl")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("trl not installed (knowledge extra)")
    if version != _doc()["trl"]:
        pytest.skip(f"trl {version} installed, data generated from {_doc()['trl']}")
    assert build_trl._dump(build_trl.build()) == build_trl.DATA_FILE.read_text(encoding="utf-8"), \
        "data/trl.json is stale: python -m auditor.generate.trl"


def test_trainers_absent_from_trl_are_not_judged_in_code(tmp_path):
    """Regression (#16): BCO and PPO were taken to keep dropout on; trl 1.16.0 has neither class,
    so DRP702 claims nothing about them, while GRPO (generated default False) is still judged."""
    from tests.conftest import audit, write_files

    write_files(tmp_path, [
        ("bco/train.py", "from trl import BCOConfig, BCOTrainer\nfrom peft import LoraConfig\n"
                         "cfg = LoraConfig(r=8, lora_dropout=0.1)\ntrainer = BCOTrainer(model=m, args=BCOConfig(output_dir='o'), peft_config=cfg)\n"),
        ("grpo/train.py", "from trl import GRPOConfig, GRPOTrainer\nfrom peft import LoraConfig\n"
                          "cfg = LoraConfig(r=8, lora_dropout=0.1)\ntrainer = GRPOTrainer(model=m, args=GRPOConfig(output_dir='o'), peft_config=cfg)\ntrainer.train()\n"),
    ])
    hits = [f.path for f in audit([str(tmp_path)]) if f.code == "DRP702"]
    assert [p.split("/")[-2] for p in hits] == ["grpo"]
