"""The setup graph end to end: cross-directory setups, plan, pre-commit, cache, --jobs, probe."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import REPO, audit, write_files

FIXTURES = os.path.join(REPO, "fixtures")

# fixture -> the codes it must report (exactly); the good ones report nothing.
EXPECTED = {
    "graph-saved-adapter-bad": ["DRP400", "DRP400"],
    "graph-saved-adapter-good": [],
    "graph-model-path-bad": ["DRP121"],
    "graph-model-path-good": [],
    "graph-hfargs-file-bad": ["DRP132"],
    "graph-hfargs-file-good": [],
    "graph-hfargs-flags-bad": ["DRP133"],
    "graph-hfargs-flags-good": [],
    "graph-launch-recipe-bad": ["DRP005", "DRP501"],
    "graph-launch-recipe-good": [],
    "graph-bad-links": [],
    "graph-probe-script": [],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_graph_fixtures(run_cli, name):
    code, out = run_cli("check", "--format", "json", "--no-cache", "--fail-on", "info", os.path.join(FIXTURES, name))
    found = sorted(f["code"] for f in json.loads(out)["findings"])
    assert found == EXPECTED[name], json.loads(out)["findings"]
    assert code == (1 if found else 0)


def test_adapter_saved_in_another_directory_is_compared(tmp_path):
    write_files(tmp_path, [
        ("configs/sft.yaml", "adapter: lora\nlora_dropout: 0.1\noutput_dir: runs/a\n"),
        ("runs/a/adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.0}'),
    ])
    found = [f for f in audit([str(tmp_path)]) if f.code == "DRP400"]
    assert [(os.path.relpath(f.path, tmp_path), f.span.line) for f in found] == [("configs/sft.yaml", 2)]


def test_finding_on_a_linked_file_of_another_directory_is_reported_once(tmp_path):
    write_files(tmp_path, [
        ("a/run.sh", "axolotl train ../cfg/r.yml\n"), ("b/run.sh", "axolotl train ../cfg/r.yml\n"),
        ("cfg/r.yml", "base_model: m\nrl: dpo\nadapter: lora\nlora_dropout: 0.1\n"),
    ])
    found = [f for f in audit([str(tmp_path)]) if f.code == "DRP501"]
    assert len(found) == 1 and found[0].path.endswith(os.path.join("cfg", "r.yml"))


def test_plan_json_lists_driver_links_and_launch_overrides(run_cli):
    code, out = run_cli("plan", "--format", "json", os.path.join(FIXTURES, "graph-launch-recipe-bad"))
    doc = json.loads(out)
    launched = [p for p in doc if p["launched_by"]]
    assert len(launched) == 1
    plan = launched[0]
    assert plan["driver"].endswith(os.path.join("configs", "qwen_lora.yaml"))
    assert {link["kind"] for link in plan["links"]} == {"launch-recipe", "saved-adapter"}
    (entry,) = [e for e in plan["entries"] if e["site"] == "lora_dropout"]
    assert entry["effective"] == 0.0 and "overridden by" in entry["why"][-1]


def test_plan_text_names_the_links(run_cli):
    code, out = run_cli("plan", os.path.join(FIXTURES, "graph-saved-adapter-bad"))
    assert "link saved-adapter" in out and "outputs/lora/adapter_config.json" in out


def test_precommit_reads_linked_files_and_reports_only_staged_ones(tmp_path, run_cli, monkeypatch):
    write_files(tmp_path, [
        ("train.py", "from transformers import HfArgumentParser, TrainingArguments\n"
                     "p = HfArgumentParser(TrainingArguments)\n(a,) = p.parse_yaml_file('cfg/sft.yaml')\n"),
        ("cfg/sft.yaml", "output_dir: o\nlora_dropuot: 0.1\n"),
        ("recipe.yaml", "adapter: lora\nlora_dropout: 0.1\noutput_dir: out\n"),
        ("out/adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.0}'),
    ])
    monkeypatch.chdir(tmp_path)
    code, out = run_cli("check", "--format", "json", "--no-cache", "recipe.yaml")
    codes = [(f["code"], f["path"]) for f in json.loads(out)["findings"]]
    assert codes == [("DRP400", "recipe.yaml")]
    code, out = run_cli("check", "--format", "json", "--no-cache", "train.py")
    assert json.loads(out)["findings"] == []  # DRP132 is at cfg/sft.yaml, which is not staged


def test_cache_misses_when_a_linked_file_changes(tmp_path, run_cli, monkeypatch):
    write_files(tmp_path, [
        ("recipe.yaml", "adapter: lora\nlora_dropout: 0.1\noutput_dir: out\n"),
        ("out/adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.1}'),
    ])
    monkeypatch.chdir(tmp_path)
    args = ("check", "--format", "json", "--cache-dir", str(tmp_path / ".c"), "recipe.yaml")
    assert json.loads(run_cli(*args)[1])["findings"] == []
    write_files(tmp_path, [("out/adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.0}')])
    assert [f["code"] for f in json.loads(run_cli(*args)[1])["findings"]] == ["DRP400"]


def test_jobs_gives_the_same_findings_as_serial(tmp_path):
    from auditor.run.discover import discover
    from auditor.run.engine import Engine, Options

    for i in range(30):
        write_files(tmp_path, [
            (f"s{i}/run.sh", f"axolotl train ../cfg{i}/r.yml\n"),
            (f"cfg{i}/r.yml", "base_model: m\nrl: dpo\nadapter: lora\nlora_dropout: 0.1\noutput_dir: ../out\n"),
        ])
    write_files(tmp_path, [("out/adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.0}')])
    files = discover([str(tmp_path)], Engine(Options()).suffixes).files
    serial = list(Engine(Options(root=str(tmp_path))).check_paths(files))
    parallel = list(Engine(Options(root=str(tmp_path))).check_paths(files, jobs=2))
    key = lambda f: (f.code, f.path, f.span.line)  # noqa: E731
    assert sorted(map(key, serial)) == sorted(map(key, parallel))
    assert {f.code for f in serial} >= {"DRP400", "DRP501"}


def test_probe_target_of_a_directory_takes_the_adapter_beside_the_config(tmp_path):
    from auditor.probe.targets import resolve_target

    write_files(tmp_path, [("config.json", '{"model_type": "llama", "attention_dropout": 0.1}'),
                           ("adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.05}')])
    target = resolve_target(str(tmp_path))
    assert target.adapter_path == os.path.join(str(tmp_path), "adapter_config.json")
    assert {k.key_path[-1] for k in target.keys} >= {"attention_dropout", "lora_dropout"}


def test_check_sources_called_twice_reports_twice():
    """Regression: cross-directory dedupe lived in the engine between calls, so a second
    check_sources of the same file (as --fix re-audits and the fuzz tests do) lost findings."""
    from auditor.run.engine import Engine, Options
    from auditor.sources import structured

    engine = Engine(Options())
    text = "base_model: m\nadapter: lora\nlora_dropout: 5\n"
    first = engine.check_sources(".", [structured.read("recipe.yaml", text)])
    second = engine.check_sources(".", [structured.read("recipe.yaml", text)])
    assert first and [f.code for f in first] == [f.code for f in second]


def test_plan_shows_a_recipe_launched_from_another_folder_once_as_launched(tmp_path, run_cli):
    write_files(tmp_path, [
        ("scripts/run.sh", "axolotl train ../cfg/r.yml --lora_dropout 0.0\n"),
        ("cfg/r.yml", "base_model: m\nadapter: lora\nlora_dropout: 0.1\n"),
        ("other/alone.yml", "base_model: m\nadapter: lora\nlora_dropout: 0.2\n"),
    ])
    code, out = run_cli("plan", "--format", "json", str(tmp_path))
    drivers = [(os.path.relpath(p["driver"], tmp_path), bool(p["launched_by"])) for p in json.loads(out)]
    assert sorted(drivers) == [(os.path.join("cfg", "r.yml"), True), (os.path.join("other", "alone.yml"), False)]
    code, out = run_cli("plan", "--format", "json", str(tmp_path / "cfg"))  # not launched in this run: shown alone
    assert [bool(p["launched_by"]) for p in json.loads(out)] == [False]


PROBE_FIXTURE = os.path.join(FIXTURES, "graph-probe-script")


@pytest.mark.parametrize("name", ["train.py", "run.sh"])
def test_probe_target_of_a_script_follows_its_links(name):
    from auditor.probe.targets import resolve_target

    target = resolve_target(os.path.join(PROBE_FIXTURE, name))
    assert target.config_path == os.path.join(PROBE_FIXTURE, "checkpoints", "base", "config.json")
    assert target.adapter_path == os.path.join(PROBE_FIXTURE, "outputs", "lora", "adapter_config.json")
    assert {(k.key_path[-1], k.value) for k in target.keys} == {("attention_dropout", 0.1), ("lora_dropout", 0.05)}
    assert "train.py:4" in target.config_origin and ("run.sh:2" in target.config_origin) == (name == "run.sh")


def test_probe_target_of_a_recipe_takes_the_adapter_of_its_output_dir_only_without_lora_keys(tmp_path, monkeypatch):
    from auditor.probe.targets import resolve_target

    monkeypatch.chdir(tmp_path)  # links are followed within the working directory, as `check` does

    write_files(tmp_path, [
        ("base/config.json", '{"model_type": "llama", "attention_dropout": 0.1}'),
        ("cfg/plain.yaml", "model_name_or_path: ../base\noutput_dir: ../out\n"),
        ("cfg/lora.yaml", "base_model: ../base\nadapter: lora\nlora_dropout: 0.2\noutput_dir: ../out\n"),
        ("out/adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.05}'),
    ])
    plain = resolve_target(str(tmp_path / "cfg" / "plain.yaml"))
    assert plain.adapter_path == str(tmp_path / "out" / "adapter_config.json")
    lora = resolve_target(str(tmp_path / "cfg" / "lora.yaml"))  # the recipe's own keys are what it trains
    assert lora.adapter_path == str(tmp_path / "cfg" / "lora.yaml") and lora.adapter["lora_dropout"] == 0.2


def test_probe_target_of_a_script_without_a_local_model_is_a_usage_error(tmp_path):
    from auditor.probe.targets import TargetError, resolve_target

    write_files(tmp_path, [("t.py", "from transformers import AutoModel\nm = AutoModel.from_pretrained('gpt2')\n")])
    with pytest.raises(TargetError, match="links to no local config.json"):
        resolve_target(str(tmp_path / "t.py"))


def test_probe_of_a_script_measures_the_linked_config_and_adapter():
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from click.testing import CliRunner

    import tests.probe_helpers  # noqa: F401  (one thread)
    from auditor.probe.command import probe

    res = CliRunner().invoke(probe, [os.path.join(PROBE_FIXTURE, "train.py"), "--steps", "4"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "with adapter" in res.output and "lora_dropout=0.05 live" in res.output
    assert "attention_dropout=0.1 live" in res.output


def test_a_finding_on_a_linked_file_of_another_directory_honours_its_inline_directive(tmp_path):
    script = ("from dataclasses import dataclass\n\nfrom transformers import HfArgumentParser, TrainingArguments\n\n\n"
              "@dataclass\nclass ModelArguments:\n    model_name_or_path: str = 'gpt2'\n    lora_dropout: float = 0.05\n\n\n"
              "parser = HfArgumentParser((ModelArguments, TrainingArguments))\n"
              "model_args, training_args = parser.parse_yaml_file('../configs/sft.yaml')\n")
    write_files(tmp_path, [
        ("scripts/train.py", script),
        ("configs/sft.yaml", "output_dir: out\nlora_dropuot: 0.1  # dropout-audit: ignore[DRP132] read by a fork\n"
                             "lora_rnak: 8\n"),
    ])
    found = [f for f in audit([str(tmp_path / "scripts")], root=str(tmp_path)) if f.code == "DRP132"]
    assert [(f.key, f.suppressed) for f in found] == [("lora_dropuot", True), ("lora_rnak", False)]
    # the whole tree: the directive is used by the scripts/ setup, so configs/ does not call it unused
    found = [f for f in audit([str(tmp_path)]) if f.code in ("DRP132", "DRP002")]
    assert sorted((f.code, f.key, f.suppressed) for f in found) == [("DRP132", "lora_dropuot", True),
                                                                    ("DRP132", "lora_rnak", False)]


def test_an_unused_directive_beside_a_linked_one_is_still_reported(tmp_path):
    write_files(tmp_path, [("r.yaml", "adapter: lora\nlora_dropout: 0.05  # dropout-audit: ignore[DRP132,DRP201]\n")])
    found = [f for f in audit([str(tmp_path)]) if f.code == "DRP002"]
    assert [f.message.split(":")[0] for f in found] == ["unused suppression of DRP201"]


def test_precommit_finds_the_script_that_links_to_a_staged_file(tmp_path, run_cli, monkeypatch):
    """Staging only the YAML a parent-directory script parses, or the recipe a parent-directory
    launch script runs, still reports what that link makes of it; an unrelated script is not read."""
    write_files(tmp_path, [
        ("train.py", "from transformers import HfArgumentParser, TrainingArguments\n"
                     "parser = HfArgumentParser((TrainingArguments,))\n"
                     "(args,) = parser.parse_yaml_file('cfg/sft.yaml')\n"),
        ("cfg/sft.yaml", "output_dir: o\nlora_dropuot: 0.1\n"),
        ("run.sh", "axolotl train recipes/dpo.yml --lora_dropout 0.0\n"),
        ("recipes/dpo.yml", "base_model: m\nrl: dpo\nadapter: lora\nlora_dropout: 0.1\n"),
        ("other.sh", "python other.py --lora_dropout 0.1\n"),
    ])
    monkeypatch.chdir(tmp_path)
    code, out = run_cli("check", "--format", "json", "--no-cache", os.path.join("cfg", "sft.yaml"))
    assert [(f["code"], f["line"]) for f in json.loads(out)["findings"]] == [("DRP132", 2)]
    code, out = run_cli("check", "--format", "json", "--no-cache", os.path.join("recipes", "dpo.yml"))
    assert "DRP501" in [f["code"] for f in json.loads(out)["findings"]]

    from auditor.cli import checkrun

    assert checkrun.linkers([os.path.join("cfg", "sft.yaml")], ".") == ["train.py"]


def test_library_fields_are_known_at_the_pins_only_so_unknown_flags_are_info(tmp_path):
    """Regression (InternVL, 224 false errors): `--overwrite_output_dir` is gone from transformers
    5's TrainingArguments but is a field in the 4.x the project pins. A flag missing from a library
    class is info naming the versions; one missing from the script's own dataclasses is an error."""
    script = ("from dataclasses import dataclass\nfrom transformers import HfArgumentParser, TrainingArguments\n\n"
              "@dataclass\nclass ModelArguments:\n    lora_dropout: float = 0.05\n\n"
              "args = HfArgumentParser(CLASSES).parse_args_into_dataclasses()\n")
    launch = "torchrun train.py --lora_dropout 0.1 FLAG\n"
    write_files(tmp_path / "lib", [("train.py", script.replace("CLASSES", "(ModelArguments, TrainingArguments)")),
                                   ("run.sh", launch.replace("FLAG", "--overwrite_output_dir"))])
    write_files(tmp_path / "own", [("train.py", script.replace("CLASSES", "(ModelArguments,)")),
                                   ("run.sh", launch.replace("FLAG", "--lora_dropuot 0.1"))])
    lib = [f for f in audit([str(tmp_path / "lib")]) if f.code == "DRP133"]
    own = [f for f in audit([str(tmp_path / "own")]) if f.code == "DRP133"]
    assert [(f.severity, f.key) for f in lib] == [("info", "--overwrite_output_dir")]
    assert "transformers 5.24" in lib[0].message
    assert [(f.severity, f.key) for f in own] == [("error", "--lora_dropuot")]
