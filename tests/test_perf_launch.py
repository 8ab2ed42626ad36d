"""A plain `check PATHS` runs without click, and means exactly what click would make of it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from auditor.cli import checkrun, launch
from auditor.cli import commands as cli
from tests.conftest import REPO, write_files


def _captured(monkeypatch, entry, args) -> checkrun.Request:
    seen = []

    def fake_run(req):
        seen.append(req)
        return 0

    monkeypatch.setattr(checkrun, "run", fake_run)
    try:
        rc = entry(args)
    except SystemExit as exc:  # click's command exits with run's status
        rc = exc.code
    assert rc == 0
    (req,) = seen
    return req


FAST_LINES = [
    ["check"], ["check", "a.yaml"], ["check", "x/config.json", "y", "z.py"],
    ["check", "--format", "github", "--select", "DRP1", "r.yaml"],
    ["check", "r.yaml", "--format=json", "--select=DRP1,DRP2", "--select", "no-op"],
    ["check", "--format", "sarif:out.sarif", "--format", "github", "-o", "x.txt", "."],
    ["check", "--fix", "a.yaml", "--output-file", "o.txt", "--output-file=p.txt"],
    ["check", "--format", "concise", "--fix", "--select", "lora-dropout-too-high"],
]


@pytest.mark.parametrize("args", FAST_LINES)
def test_fast_path_builds_the_request_click_builds(monkeypatch, args):
    assert launch.fast_request(args[1:]) is not None
    assert _captured(monkeypatch, launch.main, args) == _captured(monkeypatch, cli.main, args)


@pytest.mark.parametrize("args", [
    ["check", "--no-cache", "a.yaml"], ["check", "--", "a.yaml"], ["check", "-", "--stdin-filename", "a.yaml"],
    ["check", "--fix=yes"], ["check", "--format"], ["check", "-o=x"], ["check", "-h"], ["check", "--formats", "x"],
])
def test_other_options_go_through_click(monkeypatch, args):
    assert launch.fast_request(args[1:]) is None


def test_options_go_through_click(monkeypatch):
    req = _captured(monkeypatch, launch.main, ["check", "--no-cache", "a.yaml"])
    assert req.no_cache and req.paths == ("a.yaml",)


def _run(entry: str, *args, cwd):
    code = (f"import sys\nfrom auditor.{entry} import main\ntry:\n    rc = main(sys.argv[1:])\n"
            "except SystemExit as exc:\n    rc = exc.code\n"
            "print('CLICK' if 'click' in sys.modules else 'NOCLICK', file=sys.stderr)\nsys.exit(rc)\n")
    env = dict(os.environ, PYTHONPATH=REPO, NO_COLOR="1")
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=120)
    return out.returncode, out.stdout, out.stderr


def test_plain_check_does_not_import_click_and_prints_the_same(tmp_path):
    write_files(tmp_path, [("r/recipe.yaml", "base_model: m\nadapter: lora\nlora_dropout: 1.5\ndatasets: []\n")])
    fast = _run("cli.launch", "check", "--", cwd=tmp_path)  # `--` is an option-shaped argument: click's path
    assert fast[0] == 1 and fast[2].splitlines()[-1] == "CLICK"
    fast = _run("cli.launch", "check", "r/recipe.yaml", cwd=tmp_path)
    slow = _run("cli.commands", "check", "r/recipe.yaml", cwd=tmp_path)
    assert fast[0] == slow[0] == 1
    assert fast[1] == slow[1] and "DRP" in fast[1]
    assert fast[2].splitlines()[-1] == "NOCLICK" and slow[2].splitlines()[-1] == "CLICK"


def test_common_options_do_not_import_click_and_print_the_same(tmp_path):
    write_files(tmp_path, [("r/recipe.yaml", "base_model: m\nadapter: lora\nlora_dropout: 1.5\n")])
    line = ("check", "--format", "github", "--select", "DRP1", "r/recipe.yaml")
    fast = _run("cli.launch", *line, cwd=tmp_path)
    slow = _run("cli.commands", *line, cwd=tmp_path)
    assert fast[0] == slow[0] == 1 and fast[1] == slow[1] and "::error file=r/recipe.yaml" in fast[1]
    assert fast[2].splitlines()[-1] == "NOCLICK" and slow[2].splitlines()[-1] == "CLICK"
    fast = _run("cli.launch", "check", "--format", "json", "-o", "out.json", "--fix", "r/recipe.yaml", cwd=tmp_path)
    assert fast[2].splitlines()[-1] == "NOCLICK" and (tmp_path / "out.json").is_file()


def test_usage_problem_on_the_plain_path_is_worded_by_click(tmp_path):
    rc, out, err = _run("cli.launch", "check", "missing.yaml", cwd=tmp_path)
    assert rc == 2 and "path does not exist: missing.yaml" in err and "Usage:" in err and "Traceback" not in err
