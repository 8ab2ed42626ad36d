"""How `probe --nproc` seeds its ranks: the per-framework rules (knowledge/data/rank_seeding.json)
are checked against the pinned sources they cite, and a recipe picks its rule by dialect and
trainer. No process group here: these are the fast halves of tests/test_runtime_distributed.py."""

import importlib
import importlib.metadata
import os
import re

import pytest

pytest.importorskip("torch")

from auditor.knowledge import rank_seeding
from auditor.probe.distributed import seeding_of

# (package, file inside it, line, text the line must hold)
CITED = [
    ("transformers", "trainer.py", 419, "set_seed(self.args.seed)"),
    ("transformers", "trainer_utils.py", 180, "def set_seed(seed: int"),
    ("transformers", "training_args.py", 1293, "seed: int = field(default=42"),
    ("trl", "trainer/sft_trainer.py", 681, "set_seed(args.seed)"),
    ("trl", "trainer/dpo_trainer.py", 559, "set_seed(args.seed)"),
    ("trl", "trainer/kto_trainer.py", 613, "set_seed(args.seed)"),
    ("trl", "trainer/reward_trainer.py", 383, "set_seed(args.seed)"),
    ("trl", "trainer/grpo_trainer.py", 1103, "set_seed(args.seed, device_specific=True)"),
    ("trl", "trainer/rloo_trainer.py", 748, "set_seed(args.seed, device_specific=True)"),
    ("accelerate", "utils/random.py", 40, "def set_seed(seed: int, device_specific: bool = False"),
    ("accelerate", "utils/random.py", 53, "seed += AcceleratorState().process_index"),
    ("lightning_fabric", "utilities/seed.py", 65, "torch.manual_seed(seed)"),
]
DISTRIBUTION = {"lightning_fabric": "pytorch-lightning"}


@pytest.mark.parametrize(("package", "file", "line", "text"), CITED)
def test_each_cited_source_line_says_what_the_rule_claims(package, file, line, text):
    module = pytest.importorskip(package)
    path = os.path.join(os.path.dirname(module.__file__), file)
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert text in lines[line - 1], (path, line, lines[line - 1])


def test_every_rule_cites_lines_this_test_checks_at_the_pinned_versions():
    checked = {(f, n) for _, f, n, _ in CITED}
    for name, rule in rank_seeding.table()["rules"].items():
        cites = {(f, int(n)) for f, n in re.findall(r"([\w/]+\.py):(\d+)", rule["source"])}
        assert cites and cites <= checked, (name, cites - checked)
        for package, version in re.findall(r"(\w+) (\d+\.\d+\.\d+)", rule["source"]):
            installed = importlib.metadata.version(DISTRIBUTION.get(package, package).replace("_", "-"))
            if package == "lightning_fabric":
                installed = importlib.import_module("lightning_fabric").__version__
            assert installed == version, (name, package, installed)


def test_the_sft_dpo_kto_reward_trainers_seed_with_transformers_set_seed():
    """Their set_seed is transformers' (no rank term), not accelerate's: the import decides."""
    trl = pytest.importorskip("trl")
    for file in ("sft_trainer.py", "dpo_trainer.py", "kto_trainer.py", "reward_trainer.py"):
        with open(os.path.join(os.path.dirname(trl.__file__), "trainer", file), encoding="utf-8") as fh:
            head = fh.read().split("\nclass ", 1)[0]
        block = head[head.index("from transformers import ("):]
        assert "set_seed" in block[: block.index(")")], file


def _recipe(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_dpo_recipe_seeds_every_rank_alike_and_points_at_its_seed(tmp_path):
    path = _recipe(tmp_path, "dpo.yaml", "model_name_or_path: ./model\nbeta: 0.1\nseed: 3\n")
    s = seeding_of(path, None, 0)
    assert (s.rule, s.base, s.rank_term, s.verified) == ("trl.dpo", 3, False, True)
    assert [s.seed_for(r) for r in range(3)] == [3, 3, 3]
    assert s.place[0] == path and s.place[1].line == 3


def test_a_grpo_recipe_adds_the_rank(tmp_path):
    s = seeding_of(_recipe(tmp_path, "grpo.yaml", "model_name_or_path: ./model\nnum_generations: 4\n"), None, 0)
    assert (s.rule, s.base, s.rank_term) == ("trl.grpo", 42, True)   # TRL's default seed, plus the rank
    assert [s.seed_for(r) for r in range(3)] == [42, 43, 44]


def test_trainer_arguments_use_the_trainer_rule_and_its_default_seed(tmp_path):
    s = seeding_of(_recipe(tmp_path, "args.yaml", "output_dir: out\nlearning_rate: 1.0e-4\n"), None, 0)
    assert (s.rule, s.base, s.rank_term, s.verified) == ("transformers.Trainer", 42, False, True)


def test_no_verified_rule_is_an_assumption(tmp_path):
    axolotl = seeding_of(_recipe(tmp_path, "a.yaml", "base_model: ./model\nadapter: lora\nseed: 9\n"), None, 5)
    assert (axolotl.rule, axolotl.base, axolotl.verified) == ("assumed", 5, False)
    assert "axolotl" in axolotl.how
    bare = seeding_of(None, None, 1)
    assert bare.verified is False and "bare model config" in bare.how
    factory = seeding_of(None, "f.py:make", 1)
    assert factory.by_factory and factory.verified


def test_nproc_refuses_html_and_a_bad_count(tmp_path):
    from click.testing import CliRunner

    from auditor.probe.command import probe

    runner = CliRunner()
    res = runner.invoke(probe, ["--factory", "f.py:make", "--nproc", "2", "--html", str(tmp_path / "r.html")])
    assert res.exit_code == 2 and "--html is not available with --nproc" in res.output
    res = runner.invoke(probe, ["--factory", "f.py:make", "--nproc", "0"])
    assert res.exit_code == 2 and "--nproc" in res.output
