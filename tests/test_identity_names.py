"""The shipped name table: each reviewed pattern against ids it must and must not match, the
never-guess rule, the generated seed against the pinned Transformers, and its cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from auditor.setup import names

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

with open(names.DATA_FILE, encoding="utf-8") as _fh:
    DOC = json.load(_fh)

MUST = [(p["model_type"], ident) for p in DOC["patterns"] for ident in p["must_match"]]
MUST_NOT = [(p["model_type"], ident) for p in DOC["patterns"] for ident in p["must_not_match"]]


@pytest.mark.parametrize("model_type,ident", MUST)
def test_pattern_matches_its_ids(model_type, ident):
    assert names.match(ident)[0] == model_type


@pytest.mark.parametrize("model_type,ident", MUST_NOT)
def test_pattern_does_not_match_other_ids(model_type, ident):
    assert names.match(ident)[0] != model_type


def test_every_type_in_the_table_exists_in_the_pinned_transformers():
    from auditor.knowledge import architectures

    types = {p["model_type"] for p in DOC["patterns"]} | {t for t in DOC["seed"].values()} \
        | {t for t in DOC["corrections"].values() if t}
    assert sorted(t for t in types if architectures.lookup(t) is None) == []


def test_every_pattern_has_ids_both_ways_and_a_needle_inside_its_matches():
    for p in DOC["patterns"]:
        assert p["must_match"] and p["must_not_match"], p["pattern"]
        for ident in p["must_match"]:
            assert p["needle"] in names.strip_suffixes(ident.lower().rpartition("/")[2]), (p["needle"], ident)


@pytest.mark.parametrize("ident,expected", [
    ("google/gemma-3-1b-it", "gemma3_text"),          # 1B and 270M are text-only
    ("google/gemma-3-270m", "gemma3_text"),
    ("google/gemma-3-4b-it", "gemma3"),               # 4B and up are multimodal (the seed's hint was wrong)
    ("Qwen/Qwen3-30B-A3B", "qwen3_moe"),
    ("Qwen/Qwen3-8B", "qwen3"),
    ("meta-llama/Llama-3.2-11B-Vision-Instruct", "mllama"),
    ("mistralai/Mistral-Small-3.1-24B-Instruct-2503", "mistral3"),
    ("unsloth/Llama-3.2-1B-Instruct-bnb-4bit", "llama"),
    ("TheBloke/Mistral-7B-Instruct-v0.2-AWQ", "mistral"),
    ("gpt2", "gpt2"),
    ("openai/gpt-oss-20b", "gpt_oss"),
])
def test_families_named_in_the_issue(ident, expected):
    assert names.match(ident)[0] == expected


@pytest.mark.parametrize("ident", [
    "acme/atlas-3b", "someone/llama-3-8b-merge", "../../etc/passwd", "/abs/path/model", "org/../x",
    "meta-llama/Llama-Guard-3-8B", "a/b/c", "", "mistralai/Mistral-Small-24B-Instruct-2501",
])
def test_unknown_ids_stay_unknown(ident):
    assert names.match(ident)[0] is None


def test_two_patterns_of_different_types_mean_unknown(monkeypatch):
    table = {"exact": {}, "by_name": {}, "mirrors": frozenset(),
             "patterns": [("atlas", r"atlas-\d+b", "llama", frozenset({"acme"})),
                          ("atlas", r"atlas-3b", "mistral", frozenset({"acme"})),
                          ("atlas", r"atlas-7b", "llama", frozenset({"acme"}))]}
    monkeypatch.setattr(names, "_table", lambda: table)
    assert names.match("acme/atlas-7b")[0] == "llama"   # two patterns, one type
    model_type, how = names.match("acme/atlas-3b")
    assert model_type is None and "several model types" in how


def test_a_correction_can_remove_a_wrong_hint():
    assert DOC["corrections"]["thudm/glm-4-9b-chat"] is None
    assert names.match("THUDM/glm-4-9b-chat")[0] is None


def test_seed_and_class_table_match_the_pinned_transformers():
    out = subprocess.run([sys.executable, "-m", "auditor.generate.names", "--check"], capture_output=True,
                         text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]


def test_concrete_classes_name_their_type():
    from auditor.setup.identity import class_model_type

    assert class_model_type("LlamaForCausalLM") == "llama"
    assert class_model_type("Gemma3ForCausalLM") == "gemma3_text"   # not what its name suggests
    assert class_model_type("AutoModelForCausalLM") is None


def test_table_is_loaded_only_when_a_hub_id_turns_up(tmp_path):
    code = ("import sys, time\n"
            "from auditor.run.engine import Engine, Options\n"
            "from auditor.setup import names\n"
            "e = Engine(Options())\n"
            f"list(e.check_paths([{str(tmp_path / 'a' / 'recipe.yaml')!r}]))\n"
            "assert names._table.cache_info().currsize == 0, 'loaded without a hub id'\n"
            f"list(e.check_paths([{str(tmp_path / 'b' / 'recipe.yaml')!r}]))\n"
            "assert names._table.cache_info().currsize == 1\n"
            "names._table.cache_clear(); names._document.cache_clear()\n"
            "best = 1e9\n"
            "for _ in range(5):\n"
            "    names._table.cache_clear(); names._document.cache_clear()\n"
            "    t = time.perf_counter(); names._table(); names.match('unsloth/Llama-3.2-1B-Instruct')\n"
            "    best = min(best, time.perf_counter() - t)\n"
            "print(f'{best * 1e3:.2f}')\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
            "assert 'huggingface_hub' not in sys.modules\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "recipe.yaml").write_text("base_model: ./nowhere\nadapter: lora\nlora_dropout: 0.05\n")
    (tmp_path / "b" / "recipe.yaml").write_text("base_model: Qwen/Qwen2.5-0.5B\nadapter: lora\nlora_dropout: 0.05\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": REPO}, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert float(out.stdout.strip()) < 25.0  # measured about 1 ms; generous for a shared 2-core machine
