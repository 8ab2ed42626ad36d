"""Where model references come from (each dialect, adapters, Python, shell), the user's
`models` mapping, the plan's model object and sites, and the fixtures of each source."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, audit, write_files


def identities(tmp_path, files, models=None):
    from auditor.run.engine import Engine, Options
    from auditor.setup import resolve

    paths = write_files(str(tmp_path), files)
    engine = Engine(Options(models=models or {}))
    setups = resolve.group(str(tmp_path), engine.load_directory(paths), models)
    return {os.path.basename(s.driver.path if s.driver else s.root): s.model for s in setups}


@pytest.mark.parametrize("name,text,ref,model_type,source", [
    ("recipe.yaml", "base_model: NousResearch/Llama-2-7b-hf\nadapter: lora\nlora_dropout: 0.05\n",
     "NousResearch/Llama-2-7b-hf", "llama", "name-table"),
    ("recipe.yaml", "base_model: acme/weights\nbase_model_config: Qwen/Qwen2.5-7B\nadapter: lora\nlora_dropout: 0.1\n",
     "Qwen/Qwen2.5-7B", "qwen2", "name-table"),
    ("lf.yaml", "stage: sft\nfinetuning_type: lora\nmodel_name_or_path: Qwen/Qwen3-8B\nlora_dropout: 0.1\n",
     "Qwen/Qwen3-8B", "qwen3", "name-table"),
    ("trl.yaml", "model_name_or_path: google/gemma-3-1b-it\nuse_peft: true\nlora_dropout: 0.1\n",
     "google/gemma-3-1b-it", "gemma3_text", "name-table"),
    ("litgpt.yaml", "checkpoint_dir: checkpoints/microsoft/phi-2\nout_dir: out\nlora_dropout: 0.05\n",
     "checkpoints/microsoft/phi-2", "phi", "name-table"),
    ("tt.yaml", "model:\n  _component_: torchtune.models.qwen2_5.lora_qwen2_5_0_5b\n  lora_dropout: 0.0\n"
     "tokenizer:\n  _component_: x\n", "torchtune.models.qwen2_5.lora_qwen2_5_0_5b", "qwen2", "torchtune-builder"),
    ("adapter_config.json", '{"peft_type": "LORA", "base_model_name_or_path": "unsloth/mistral-7b-v0.3-bnb-4bit", '
     '"lora_dropout": 0.05}', "unsloth/mistral-7b-v0.3-bnb-4bit", "mistral", "name-table"),
    ("run.sh", "python train.py --model_name_or_path microsoft/phi-2 --lora_dropout 0.1\n",
     "microsoft/phi-2", "phi", "name-table"),
    ("run2.sh", "accelerate launch x.py --base_model=google/gemma-2-9b --lora_dropout 0.1\n",
     "google/gemma-2-9b", "gemma2", "name-table"),
])
def test_references_from_each_dialect(tmp_path, name, text, ref, model_type, source):
    model = identities(tmp_path, [(name, text)])[name if name != "adapter_config.json" else os.path.basename(str(tmp_path))]
    assert (model.ref, model.model_type, model.source) == (ref, model_type, source)


@pytest.mark.parametrize("body,ref,model_type,source", [
    ('m = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B")\n', "Qwen/Qwen2.5-0.5B", "qwen2", "name-table"),
    ('NAME = "Qwen/Qwen2.5-0.5B"\nm = AutoModelForCausalLM.from_pretrained(NAME)\n',
     "Qwen/Qwen2.5-0.5B", "qwen2", "name-table"),
    ('def main():\n    name = "google/gemma-2-2b"\n    m = AutoModelForCausalLM.from_pretrained(name)\n',
     "google/gemma-2-2b", "gemma2", "name-table"),
    ('m = LlamaForCausalLM.from_pretrained("acme/private")\n', "acme/private", "llama", "class-name"),
    ('m, t = FastLanguageModel.from_pretrained(model_name="unsloth/Llama-3.2-1B-Instruct")\n',
     "unsloth/Llama-3.2-1B-Instruct", "llama", "name-table"),
    ('t = AutoTokenizer.from_pretrained("gpt2")\nm = AutoModelForCausalLM.from_pretrained("Qwen/Qwen3-8B")\n',
     "Qwen/Qwen3-8B", "qwen3", "name-table"),
])
def test_references_from_python(tmp_path, body, ref, model_type, source):
    model = identities(tmp_path, [("train.py", "from transformers import *\nfrom peft import LoraConfig\n"
                                                "cfg = LoraConfig(lora_dropout=0.1)\n" + body)])["train.py"]
    assert (model.ref, model.model_type, model.source) == (ref, model_type, source)


def test_a_name_bound_twice_is_no_reference(tmp_path):
    body = ('name = "Qwen/Qwen3-8B"\nname = "google/gemma-2-2b"\nm = AutoModelForCausalLM.from_pretrained(name)\n'
            "LoraConfig(lora_dropout=0.1)\n")
    assert identities(tmp_path, [("train.py", body)])["train.py"] is None


@pytest.mark.parametrize("ref", ["${BASE_MODEL}", "<YOUR_CHECKPOINT_DIR>", "{{ model }}", "null"])
def test_templates_are_no_reference(tmp_path, ref):
    found = audit(write_files(str(tmp_path), [("recipe.yaml", f"base_model: {ref}\nadapter: lora\nlora_dropout: 0.1\n")]))
    assert [f.code for f in found if f.code == "DRP310"] == []


def test_a_local_path_is_read_relative_to_the_file(tmp_path):
    model = identities(tmp_path, [("ckpt/config.json", '{"model_type": "bert", "hidden_dropout_prob": 0.2}'),
                                  ("recipe.yaml", "base_model: ./ckpt\nadapter: lora\nlora_dropout: 0.1\n")])["recipe.yaml"]
    assert (model.model_type, model.source) == ("bert", "local-path") and model.config is not None


def test_user_models_map_to_a_type_or_a_config(tmp_path):
    cfg = tmp_path / "cfgs" / "atlas.json"
    cfg.parent.mkdir()
    cfg.write_text('{"model_type": "phi3", "resid_pdrop": 0.1}')
    files = [("recipe.yaml", "base_model: acme/atlas-3b\nadapter: lora\nlora_dropout: 0.1\n")]
    assert identities(tmp_path, files, {"acme/atlas-3b": "mistral"})["recipe.yaml"].model_type == "mistral"
    model = identities(tmp_path, files, {"acme/atlas-3b": str(cfg)})["recipe.yaml"]
    assert (model.model_type, model.source) == ("phi3", "user")


def _cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "auditor", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": REPO})


def test_models_in_the_configuration_file_are_validated(tmp_path):
    write_files(str(tmp_path), [("recipe.yaml", "base_model: acme/atlas-3b\nadapter: lora\nlora_dropout: 0.1\n"
                                                "overrides_of_model_config:\n  hidden_dropout_prob: 0.1\n")])
    (tmp_path / ".dropout-audit.toml").write_text('[models]\n"acme/atlas-3b" = "mistral"\n')
    out = _cli(["check", "recipe.yaml", "--format", "concise"], tmp_path)
    assert out.returncode == 1 and "DRP510" in out.stdout and "mistral" in out.stdout
    for bad, words in (('"acme/atlas-3b" = "mistrall"', "neither a model type"), ('"acme/atlas-3b" = 3', "models"),
                       ('"acme/atlas-3b" = "missing/config.json"', "neither a model type")):
        (tmp_path / ".dropout-audit.toml").write_text(f"[models]\n{bad}\n")
        for command in (["check", "recipe.yaml"], ["plan", "recipe.yaml"]):
            out = _cli(command, tmp_path)
            assert out.returncode == 2 and words in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_plan_json_has_the_model_and_every_site(tmp_path):
    write_files(str(tmp_path), [
        ("a/recipe.yaml", "base_model: meta-llama/Llama-3.2-1B\nadapter: lora\nlora_dropout: 0.05\n"
                          "overrides_of_model_config:\n  hidden_dropout_prob: 0.1\n"),
        ("b/recipe.yaml", "base_model: acme/atlas-3b\nadapter: lora\nlora_dropout: 0.05\n"),
        ("c/config.json", '{"model_type": "gpt2", "attn_pdrop": 0.1}')])
    out = _cli(["plan", "--format", "json", "."], tmp_path)
    assert out.returncode == 0, out.stderr
    plans = {os.path.dirname(p["driver"] or p["setup"] + "/x"): p for p in json.loads(out.stdout)}
    a, b, c = plans["a"], plans["b"], plans["c"]
    assert {k: a["model"][k] for k in ("ref", "model_type", "source")} == \
        {"ref": "meta-llama/Llama-3.2-1B", "model_type": "llama", "source": "name-table"}
    assert a["model"]["detail"].startswith("family pattern")   # how it was decided
    sites = {e["site"]: e for e in a["entries"]}
    assert sites["overrides_of_model_config.hidden_dropout_prob"]["effective"] is None
    assert sites["attention_dropout"]["effective"] == 0.0 and sites["attention_dropout"]["source"] == "default of llama"
    assert {k: b["model"][k] for k in ("ref", "model_type", "source")} == \
        {"ref": "acme/atlas-3b", "model_type": None, "source": "unknown"}
    assert c["model"]["model_type"] == "gpt2" and c["model"]["source"] == "config.json"
    c_sites = {e["site"]: e["effective"] for e in c["entries"]}
    assert c_sites["attn_pdrop"] == 0.1 and c_sites["resid_pdrop"] == 0.1   # the second from gpt2's default


def test_functional_dropout_rule_uses_the_resolved_model(tmp_path):
    found = audit(write_files(str(tmp_path), [(
        "recipe.yaml", "base_model: Qwen/Qwen2.5-0.5B\nrl: dpo\nadapter: lora\nlora_dropout: 0.0\n"
                       "overrides_of_model_config:\n  attention_dropout: 0.1\ndatasets: []\n")]))
    assert [f.code for f in found] == ["DRP790"]


@pytest.mark.parametrize("folder,codes", [
    ("hub-id-tutorial", ["DRP124", "DRP516"]), ("hub-id-axolotl-overrides", ["DRP510"]), ("hub-id-clean", []),
    ("hub-id-unknown", ["DRP310"]), ("hub-id-user-models", ["DRP510"]), ("hub-id-local-path", ["DRP510"]),
    ("hub-id-hf-cache", ["DRP310"])])
def test_fixtures_of_each_source(folder, codes):
    target = os.path.join(REPO, "fixtures", folder)
    if folder == "hub-id-user-models":
        out = _cli(["check", target, "--format", "json"], REPO)
        found = sorted(f["code"] for f in json.loads(out.stdout)["findings"])
    else:
        found = sorted(f.code for f in audit([target]))
    assert found == codes


def test_plan_lists_the_sub_config_sites_of_a_composite_model(tmp_path):
    write_files(str(tmp_path), [("recipe.yaml", "base_model: google/gemma-3-4b-it\nadapter: lora\nlora_dropout: 0.05\n")])
    out = _cli(["plan", "--format", "json", "recipe.yaml"], tmp_path)
    sites = {e["site"]: (e["effective"], e["source"]) for e in json.loads(out.stdout)[0]["entries"]}
    assert sites["text_config.attention_dropout"] == (0.0, "default of gemma3_text")
    assert "attention_dropout" not in sites   # gemma3 itself declares no top-level dropout key


def test_cached_findings_are_not_reused_when_the_model_knowledge_changes(tmp_path, monkeypatch):
    """The findings cache key covers the user's models mapping and what the HF cache holds."""
    from auditor.run.cache import salt_for
    from auditor.run.engine import Engine, Options

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    plain = salt_for(Engine(Options()))
    assert salt_for(Engine(Options(models={"acme/atlas-3b": "mistral"}))) != plain
    (tmp_path / "hub" / "models--acme--atlas-3b" / "refs").mkdir(parents=True)
    assert salt_for(Engine(Options())) != plain
