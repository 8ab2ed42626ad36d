"""The family lexicon (auditor/setup/families.py, data/model_families.json): each entry against
the ids it must and must not decide, the rules that keep it from guessing (vetoes, outer families,
disagreeing tokens, folders), custom-code orgs with trust_remote_code, other libraries, the token
that decided, and that it is read only when a hub id the name table does not know turns up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from auditor.setup import families
from tests.conftest import REPO

with open(families.DATA_FILE, encoding="utf-8") as _fh:
    DOC = json.load(_fh)


def _verdict(v) -> str | None:
    if v.kind == "transformers":
        return v.model_type
    if v.kind == "non-transformers":
        return f"non-transformers:{v.library}"
    return v.kind


EXAMPLES = [(f["family"], f["verdict"], ident) for f in DOC["families"] for ident in f["examples"]]
COUNTER = [(f["family"], f["verdict"], ident) for f in DOC["families"] for ident in f.get("counter", ())]


@pytest.mark.parametrize("family,verdict,ident", EXAMPLES)
def test_each_family_decides_its_examples(family, verdict, ident):
    assert _verdict(families.classify(ident)) == verdict, (family, families.classify(ident).detail)


@pytest.mark.parametrize("family,verdict,ident", COUNTER)
def test_each_family_leaves_its_counter_examples_alone(family, verdict, ident):
    assert _verdict(families.classify(ident)) != verdict, family


def test_every_entry_is_sourced_and_every_type_exists_in_the_pinned_transformers():
    from auditor.knowledge import architectures

    for f in DOC["families"]:
        assert f["source"] and f["examples"], f["family"]
        verdict = f["verdict"]
        if verdict != "custom-code" and not verdict.startswith("non-transformers:"):
            assert architectures.lookup(verdict) is not None, (f["family"], verdict)
        assert f["needles"] and all(len(n) >= 2 for n in f["needles"]), f["family"]
        for ident in f["examples"]:  # one needle must be in every name the token matches
            assert any(n in ident.rpartition("/")[2].lower() for n in f["needles"]), (f["family"], ident)
    for table in ("custom_code_orgs", "non_transformers_orgs"):
        assert all(entry["source"] for entry in DOC[table].values())


@pytest.mark.parametrize("ident,expected,token", [
    ("allenai/Llama-3.1-Tulu-3-8B-SFT", "llama", "Llama-3.1"),           # the examples
    ("lmsys/vicuna-13b-v1.5", "llama", "vicuna"),
    ("HuggingFaceH4/zephyr-7b-alpha", "mistral", "zephyr-7b"),
    ("teknium/OpenHermes-2.5-Mistral-7B", "mistral", "Mistral-7B"),
    ("01-ai/Yi-34B-Chat", "llama", "Yi-34B"),
    ("HuggingFaceTB/SmolLM2-360M-Instruct", "llama", None),              # a reviewed pattern decides first
    ("loubnabnl/smollm2-1.7B-sft", "llama", "smollm2-1.7B"),
    ("bigcode/starcoder2-15b", "starcoder2", "starcoder2-15b"),
    ("Qwen/Qwen1.5-MoE-A2.7B-Chat", "qwen2_moe", "Qwen1.5-MoE-A2.7B"),
    ("openai/clip-vit-large-patch14-336", "clip", "clip-vit-large-patch14-336"),
    ("google/siglip-so400m-patch14-384", "siglip", "siglip-so400m-patch14"),
    ("trl-internal-testing/tiny-Qwen3MoeForCausalLM", "qwen3_moe", "Qwen3MoeForCausalLM"),  # a class name
])
def test_the_plan_can_say_which_token_decided(ident, expected, token):
    v = families.classify(ident)
    assert v.model_type == expected
    if token is not None:
        assert v.token == token and token in v.detail


@pytest.mark.parametrize("ident", [
    "xtuner/llava-llama-3-8b-v1_1",             # a LLaVA checkpoint around a Llama 3
    "someone/Llama-3.2-11B-Vision-ft",          # vision
    "BAAI/Bunny-Llama-3-8B-V",                  # a `-V` model
    "someone/Qwen3-30B-A3B-sft",                # a3b: the MoE, not the dense qwen3 token alone... see next
    "someone/llama-3-8b-moe-4x",                # a mixture of experts built from llama
    "someone/Mistral-7B-GGUF",                  # llama.cpp files
    "HuggingFaceM4/llama-7b-tokenizer",         # a tokenizer repository
    "nvidia/OpenMath2-Llama3.1-8B",             # NVIDIA ships NeMo files under such names: its own ids only
    "someone/mistral-7b-llama-3-merge",         # two families: unknown
    "output_models/finetuned_llama2_7b",        # a local folder, not an org
    "acme/atlas-3b",
])
def test_what_the_lexicon_leaves_unknown(ident):
    v = families.classify(ident)
    if ident == "someone/Qwen3-30B-A3B-sft":
        assert v.model_type == "qwen3_moe"   # the longer MoE token holds the a3b, so it decides
        return
    assert v.kind is None, v.detail


def test_two_families_name_the_disagreement():
    v = families.classify("someone/mistral-7b-llama-3-merge")
    assert v.kind is None and "disagree" in v.detail and "mistral" in v.detail and "llama" in v.detail


def test_an_outer_family_wins_over_the_base_it_names():
    assert families.classify("THUDM/cogvlm2-llama3-chat-19B").kind == "custom-code"
    assert families.classify("MAGAer13/mplug-owl2-llama2-7b").kind == "custom-code"
    assert families.classify("HuggingFaceM4/Idefics3-8B-Llama3").model_type == "idefics3"


def test_an_org_known_for_custom_code_needs_trust_remote_code_unless_it_ships_nothing_else():
    assert families.classify("THUDM/glm-4-9b-chat").kind is None            # a correction says ambiguous
    custom = families.classify("THUDM/glm-4-9b-chat", remote_code=True)
    assert custom.kind == "custom-code" and "trust_remote_code" in custom.detail and "THUDM" in custom.detail
    assert families.classify("acme/glm-4-9b-chat", remote_code=True).kind is None   # not a known org
    only = families.classify("x-plug/x_plug-llama-7b")                      # mPLUG-Owl: the name says llama
    assert only.kind == "custom-code" and "only custom code" in only.detail


@pytest.mark.parametrize("ref,library", [
    ("runwayml/stable-diffusion-v1-5", "diffusers"),
    ("black-forest-labs/FLUX.1-dev", "diffusers"),
    ("Wan-AI/Wan2.1-T2V-14B-Diffusers", "diffusers"),
    ("timm/resnet18.a1_in1k", "timm"),
    ("hf-hub:timm/resnet18.a1_in1k", "timm"),
    ("hf-hub:laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K", "open_clip"),
    ("state-spaces/mamba-2.8b", "mamba_ssm"),    # the seed's hint was wrong: mamba_ssm's own format
    ("nvidia/stt_en_conformer_ctc_small", "nemo"),
    ("nvidia/Llama2-70B-SteerLM-Chat", "nemo"),  # a .nemo file, though the name says llama
])
def test_other_libraries_are_named(ref, library):
    v = families.classify(ref)
    assert (v.kind, v.library) == ("non-transformers", library), v.detail


def test_a_version_continues_a_token():
    assert families.classify("someone/Qwen3.6-27B-sft").kind is None       # not qwen3, a later release
    assert families.classify("someone/Qwen3-8B-sft").model_type == "qwen3"


def test_the_lexicon_is_read_only_for_a_hub_id_the_name_table_does_not_know(tmp_path):
    code = ("import sys, time\n"
            "from auditor.run.engine import Engine, Options\n"
            "from auditor.setup import families\n"
            "e = Engine(Options())\n"
            f"list(e.check_paths([{str(tmp_path / 'a' / 'recipe.yaml')!r}]))\n"
            "assert families.document.cache_info().currsize == 0, 'read for an id the table knows'\n"
            f"list(e.check_paths([{str(tmp_path / 'b' / 'recipe.yaml')!r}]))\n"
            "assert families.document.cache_info().currsize == 1\n"
            "best = 1e9\n"
            "for _ in range(7):\n"
            "    families.document.cache_clear(); families._lexicon.cache_clear(); families._token.cache_clear()\n"
            "    t = time.perf_counter(); families.identify('allenai/Llama-3.1-Tulu-3-8B-SFT')\n"
            "    best = min(best, time.perf_counter() - t)\n"
            "print(f'{best * 1e3:.2f}')\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "recipe.yaml").write_text("base_model: Qwen/Qwen2.5-0.5B\nadapter: lora\nlora_dropout: 0.05\n")
    (tmp_path / "b" / "recipe.yaml").write_text("base_model: allenai/Llama-3.1-Tulu-3-8B-SFT\nadapter: lora\n"
                                                "lora_dropout: 0.05\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": REPO}, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert float(out.stdout.strip()) < 20.0  # about 1 ms (bench/identity_lexicon.py); generous for a shared machine
