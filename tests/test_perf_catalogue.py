"""The compiled rule catalogue (build step) and the runtime cache (--rules directories, or a
checkout without a build) are only faster ways to the same rules, never stale ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from auditor.core import catalogue


def _setup(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(catalogue.builtin_dir(), rules)
    monkeypatch.setattr(catalogue, "builtin_dir", lambda: str(rules))
    monkeypatch.setattr(catalogue, "_cache_path", lambda d: str(tmp_path / "pycache" / "rules.marshal"))
    monkeypatch.setattr(catalogue, "compiled_path", lambda: str(tmp_path / "not-built.json"))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return rules


def _view(rules):
    return [(r.code, r.name, r.severity, r.check, r.params, r.summary, r.examples, r.origin) for r in rules]


def test_compiled_copy_is_used_and_equal(tmp_path, monkeypatch):
    _setup(tmp_path, monkeypatch)
    first = _view(catalogue.load())
    assert os.path.exists(tmp_path / "pycache" / "rules.marshal")

    def no_parse(path):
        raise AssertionError(f"parsed {path} although the compiled copy is current")

    monkeypatch.setattr(catalogue, "_read_data", no_parse)
    assert _view(catalogue.load()) == first


def test_edited_rule_file_is_reparsed(tmp_path, monkeypatch):
    rules = _setup(tmp_path, monkeypatch)
    catalogue.load()
    path = rules / "DRP200-dropout-too-high.yaml"
    path.write_text(path.read_text().replace("severity: warning", "severity: error", 1))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert {r.code: r.severity for r in catalogue.load()}["DRP200"] == "error"


def test_damaged_compiled_copy_is_ignored(tmp_path, monkeypatch):
    _setup(tmp_path, monkeypatch)
    first = _view(catalogue.load())
    (tmp_path / "pycache" / "rules.marshal").write_bytes(b"\x00not marshal")
    assert _view(catalogue.load()) == first


def test_not_written_when_bytecode_writing_is_off(tmp_path, monkeypatch):
    _setup(tmp_path, monkeypatch)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    catalogue.load()
    assert not os.path.exists(tmp_path / "pycache" / "rules.marshal")


# --- the catalogue compiled by the build step ------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PROBE_SCRIPT = r"""
import json, sys
import auditor, auditor.core.catalogue as catalogue

def parsed(path):
    raise SystemExit(f"PARSED {path}: the installed package composed built-in rule YAML at run time")

catalogue._read_data = parsed
from auditor.cli.launch import main
sys.argv = ["dropout-audit", "check", "--no-cache", "--format", "json", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"file": auditor.__file__, "code": code,
                  "yaml": sorted(m for m in sys.modules if m.split(".")[0] in ("yaml", "ruamel", "_ruamel_yaml"))}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package as pip installs it from a wheel built by the project's own build step,
    unpacked into a site directory that is then made read-only."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(os.path.join(REPO, name), src / name if src.exists() else _mk(src) / name)
    shutil.copytree(os.path.join(REPO, "rules"), src / "rules")
    shutil.copytree(os.path.join(REPO, "auditor"), src / "auditor",
                    ignore=shutil.ignore_patterns("__pycache__", "_catalogue.json"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "-q", "-w", str(work / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = (work / "dist").glob("*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    for root, dirs, files in os.walk(site):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o555 if name in dirs else 0o444)
    yield site
    for root, dirs, _ in os.walk(site):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)


def _mk(path):
    path.mkdir(parents=True)
    return path


def _run_installed(site, *args, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
    out = subprocess.run([sys.executable, "-c", _PROBE_SCRIPT, *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)
    assert "PARSED" not in out.stdout + out.stderr, out.stdout + out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_installed_package_never_parses_the_builtin_rule_yaml(installed, tmp_path):
    _mk(tmp_path / "code").joinpath("train.py").write_text("import torch\nlayer = torch.nn.Dropout(p=0.1)\n")
    _mk(tmp_path / "yaml").joinpath("recipe.yaml").write_text("base_model: gpt2\nlora_dropout: 1.5\nadapter: lora\n")
    got = _run_installed(installed, "code/train.py", cwd=tmp_path)
    assert got["file"].startswith(str(installed)), got
    assert got["yaml"] == [], f"a check of a Python file imported a YAML parser: {got['yaml']}"
    got = _run_installed(installed, "yaml/recipe.yaml", cwd=tmp_path)
    assert got["code"] == 1, got  # the recipe's finding is reported: rules were loaded, none parsed
    assert not any(p.name == "__pycache__" for p in installed.rglob("*")), "wrote into a read-only install"


def test_wheel_catalogue_matches_the_rules_directory(installed):
    with open(installed / "auditor" / catalogue.COMPILED_NAME, encoding="utf-8") as fh:
        compiled = json.load(fh)
    rules_dir = os.path.join(REPO, "rules")
    assert [f["name"] for f in compiled["files"]] == catalogue.rule_names(rules_dir)
    for f in compiled["files"]:
        assert f["data"] == catalogue._read_data(os.path.join(rules_dir, f["name"])), f["name"]
    assert sorted(os.listdir(installed / "auditor" / "rules")) == catalogue.rule_names(rules_dir)


def test_compiled_copy_is_used_and_a_stale_one_is_not(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(os.path.join(REPO, "rules"), rules)
    monkeypatch.setattr(catalogue, "builtin_dir", lambda: str(rules))
    monkeypatch.setattr(catalogue, "compiled_path", lambda: str(tmp_path / "_catalogue.json"))
    monkeypatch.setattr(catalogue, "_cache_path", lambda d: str(tmp_path / "pycache" / "rules.marshal"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    catalogue.write_compiled(str(rules), str(tmp_path / "_catalogue.json"))
    real_read = catalogue._read_data
    monkeypatch.setattr(catalogue, "_read_data", lambda p: pytest.fail(f"parsed {p} despite a current compiled copy"))
    first = _view(catalogue.load())
    path = rules / "DRP200-dropout-too-high.yaml"
    path.write_text(path.read_text().replace("severity: warning", "severity: error", 1))
    monkeypatch.setattr(catalogue, "_read_data", real_read)
    second = {r.code: r.severity for r in catalogue.load()}
    assert second["DRP200"] == "error"
    assert {c: s for c, *_, s in [(v[0], v[2]) for v in first]}["DRP200"] == "warning"


def test_build_refuses_data_json_would_change(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(os.path.join(REPO, "rules"), rules)
    path = rules / "DRP200-dropout-too-high.yaml"
    path.write_text(path.read_text() + "fix: 2024-01-01\n")
    with pytest.raises(catalogue.RuleError, match="JSON"):
        catalogue.compile_dir(str(rules))
