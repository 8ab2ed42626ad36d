"""Link extraction (auditor/setup/links.py): every kind, and the paths that must not be followed."""

from __future__ import annotations

import os

import pytest

from auditor.setup import links as L
from tests.conftest import write_files


def _links(tmp_path, files, name):
    from auditor.run.engine import Engine, Options

    write_files(tmp_path, files)
    engine = Engine(Options(root=str(tmp_path)))
    src = engine.load(os.path.join(str(tmp_path), name))
    assert src is not None, f"{name} was not read"
    return L.of_source(src, str(tmp_path))


def _one(found, kind):
    got = [link for link in found if link.kind == kind]
    assert len(got) == 1, [link.describe() for link in found]
    return got[0]


def test_model_path_links_to_config_json_with_the_call_kwargs(tmp_path):
    found = _links(tmp_path, [
        ("train.py", "from transformers import AutoModel\nm = AutoModel.from_pretrained('./ckpt/base', attn_implementation='sdpa')\n"),
        ("ckpt/base/config.json", '{"model_type": "llama"}'),
    ], "train.py")
    link = _one(found, L.MODEL_PATH)
    assert link.exists and link.target.endswith(os.path.join("ckpt", "base", "config.json"))
    assert (link.span.line, link.span.column) == (2, 31)
    assert "attn_implementation" in link.detail


def test_a_hub_id_is_not_a_link_unless_that_directory_exists(tmp_path):
    found = _links(tmp_path, [("train.py", "from transformers import AutoModel\nm = AutoModel.from_pretrained('Qwen/Qwen2.5-0.5B')\n")],
                   "train.py")
    assert not [link for link in found if link.kind == L.MODEL_PATH]
    found = _links(tmp_path, [("train.py", "from transformers import AutoModel\nm = AutoModel.from_pretrained('org/local')\n"),
                              ("org/local/config.json", '{"model_type": "gpt2"}')], "train.py")
    assert _one(found, L.MODEL_PATH).exists


def test_a_module_constant_and_os_path_join_of_literals_are_followed(tmp_path):
    found = _links(tmp_path, [
        ("train.py", "import os\nfrom transformers import AutoModel\nBASE = './base'\n"
                     "m = AutoModel.from_pretrained(BASE)\nm.save_pretrained(os.path.join('out', 'lora'))\n"),
        ("base/config.json", '{"model_type": "gpt2"}'),
    ], "train.py")
    assert _one(found, L.MODEL_PATH).exists
    saved = _one(found, L.SAVED_ADAPTER)
    assert saved.target.endswith(os.path.join("out", "lora", "adapter_config.json")) and not saved.exists


@pytest.mark.parametrize("expr", ["os.environ['MODEL']", "sys.argv[1]", "f'./runs/{run}'", "os.getenv('M', './x')"])
def test_run_time_paths_are_unknown_links_never_guessed(tmp_path, expr):
    found = _links(tmp_path, [("train.py", f"import os, sys\nfrom transformers import AutoModel\nrun = 1\n"
                                           f"m = AutoModel.from_pretrained({expr})\n")], "train.py")
    link = _one(found, L.MODEL_PATH)
    assert link.target is None and link.reason == "run-time"


def test_absolute_and_escaping_paths_are_not_followed(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    write_files(tmp_path, [("outside/config.json", '{"model_type": "gpt2"}')])
    found = _links(root, [("train.py", "from transformers import AutoModel\n"
                                       f"a = AutoModel.from_pretrained({str(tmp_path / 'outside')!r})\n"
                                       "b = AutoModel.from_pretrained('../outside')\n")], "train.py")
    reasons = sorted(link.reason for link in found if link.kind == L.MODEL_PATH)
    assert reasons == ["absolute", "outside-root"]
    assert all(link.target is None for link in found)


def test_a_symlinked_directory_pointing_outside_is_not_followed(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    write_files(tmp_path, [("outside/base/config.json", '{"model_type": "gpt2"}')])
    os.symlink(str(tmp_path / "outside"), str(root / "models"))
    found = _links(root, [("train.py", "from transformers import AutoModel\nm = AutoModel.from_pretrained('./models/base')\n")],
                   "train.py")
    assert _one(found, L.MODEL_PATH).reason == "outside-root"


def test_recipe_output_dir_links_the_saved_adapter_and_its_own_directory_is_a_loop(tmp_path):
    found = _links(tmp_path, [("r.yaml", "adapter: lora\nlora_dropout: 0.1\noutput_dir: out/x\n")], "r.yaml")
    link = _one(found, L.SAVED_ADAPTER)
    assert link.target.endswith(os.path.join("out", "x", "adapter_config.json")) and (link.span.line, link.span.column) == (3, 13)
    found = _links(tmp_path, [("r2.yaml", "adapter: lora\nlora_dropout: 0.1\noutput_dir: ./\n")], "r2.yaml")
    assert _one(found, L.SAVED_ADAPTER).reason == "loop"
    found = _links(tmp_path, [("r3.yaml", "adapter: lora\nlora_dropout: 0.1\noutput_dir: ${OUT}/lora\n")], "r3.yaml")
    assert _one(found, L.SAVED_ADAPTER).reason == "run-time"


@pytest.mark.parametrize("command,written,via,overrides", [
    ("axolotl train cfg/a.yml --lora_dropout 0.0", "cfg/a.yml", "axolotl train", ["lora_dropout=0.0"]),
    ("CUDA_VISIBLE_DEVICES=0 llamafactory-cli train cfg/a.yaml lora_dropout=0.0", "cfg/a.yaml", "llamafactory-cli train",
     ["lora_dropout=0.0"]),
    ("tune run --nproc_per_node 2 lora_finetune_distributed --config cfg/a.yaml lora_dropout=0.0", "cfg/a.yaml",
     "tune run --config", ["lora_dropout=0.0"]),
    ("accelerate launch -m axolotl.cli.train cfg/a.yml", "cfg/a.yml", "-m axolotl.cli.train", []),
    ("python train.py --config cfg/a.yaml --lora_dropout=0.0", "cfg/a.yaml", "train.py --config", ["lora_dropout=0.0"]),
])
def test_launch_commands_make_the_recipe_the_driver(tmp_path, command, written, via, overrides):
    found = _links(tmp_path, [("run.sh", f"#!/bin/bash\n{command}\n")], "run.sh")
    link = _one(found, L.LAUNCH_RECIPE)
    assert (link.written, link.via) == (written, via)
    assert [f"{k}={v}" for k, v, _ in link.overrides] == overrides
    assert link.span.line == 2


def test_launchers_link_the_script_with_its_flags(tmp_path):
    text = "torchrun --nproc_per_node 8 \\\n  run_clm.py --output_dir out \\\n  --lora_dropout 0.1\n" \
           "deepspeed --num_gpus 2 train.py --deepspeed ds.json\naccelerate launch --config_file acc.yaml sft.py\n"
    found = _links(tmp_path, [("run.sh", text)], "run.sh")
    scripts = [link for link in found if link.kind == L.LAUNCH_SCRIPT]
    assert [link.written for link in scripts] == ["run_clm.py", "train.py", "sft.py"]
    assert [(f, s.line) for f, s in scripts[0].flags] == [("--output_dir", 2), ("--lora_dropout", 3)]
    assert not [link for link in found if link.kind == L.LAUNCH_RECIPE]  # --config_file is accelerate's own


def test_a_command_naming_itself_and_a_variable_recipe_are_not_followed(tmp_path):
    found = _links(tmp_path, [("run.sh", "python run.sh\naxolotl train $CONFIG\naxolotl train \"${CFG}.yml\"\n")], "run.sh")
    assert [link.reason for link in found] == ["run-time", "run-time"]


def test_self_link_is_no_edge(tmp_path):
    link = L.Link(L.LAUNCH_RECIPE, os.path.join(str(tmp_path), "a.yaml"), None, "a.yaml")
    (tmp_path / "a.yaml").write_text("x: 1\n")
    assert L.locate(link, str(tmp_path)).reason == "same-file" and link.target is None


def test_shell_script_without_dropout_is_read_for_its_links_only(tmp_path):
    from auditor.run.engine import Engine, Options

    write_files(tmp_path, [("run.sh", "axolotl train a.yml\n"), ("notes.sh", "echo hello\n")])
    engine = Engine(Options(root=str(tmp_path)))
    src = engine.load(os.path.join(str(tmp_path), "run.sh"))
    assert src.kind == L.LINKER
    assert engine.load(os.path.join(str(tmp_path), "notes.sh")) is None


def test_links_and_framework_recognition_read_the_same_commands(tmp_path):
    """One shell parser: a launch line's script link sits on the program word `launches()`
    finds, wrappers and environment assignments skipped, a quoted flag value unquoted."""
    from auditor.sources import shell

    text = ("#!/bin/bash\nexport X=1\nCUDA_VISIBLE_DEVICES=0 nohup uv run train.py \\\n"
            "  --lora_dropout \"0.1\" # axolotl train not.yml\ncd x && accelerate launch sft.py --bf16\n")
    found = _links(tmp_path, [("run.sh", text)], "run.sh")
    scripts = [link for link in found if link.kind == L.LAUNCH_SCRIPT]
    launched = [la for la in shell.launches(text) if la.program.endswith(".py")]
    assert [(link.written, link.span) for link in scripts] == [(la.program, la.span) for la in launched]
    assert [w for w, _ in scripts[0].detail] == ["--lora_dropout", "0.1"]
    assert (scripts[0].flags[0][1].line, scripts[1].via) == (4, "accelerate")
    assert not [link for link in found if link.kind == L.LAUNCH_RECIPE]  # the comment launches nothing
    assert not hasattr(shell, "commands") and not hasattr(shell, "logical_lines")
