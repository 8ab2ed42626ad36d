"""--jobs N prints exactly what a serial run prints, in the same order."""

from __future__ import annotations

import json

from auditor.core import catalogue
from auditor.run import parallel
from auditor.run.discover import discover
from auditor.run.engine import Engine, Options
from tests.conftest import write_files


def _example_tree(base, copies=6):
    """Every rule's bad and good examples, several times, one example per directory."""
    files = []
    n = 0
    for rule in catalogue.load():
        for kind in ("bad", "good"):
            for ex in rule.examples.get(kind) or []:
                for c in range(copies):
                    for f in ex.get("files") or [ex]:
                        files.append((f"d{n:04d}-{c}/{f['file']}", f["text"]))
                    n += 1
    return write_files(base, files)


def _findings(root, jobs, cache=None):
    engine = Engine(Options())
    paths = discover([root], engine.suffixes).files
    found = [f.to_dict() for f in engine.check_paths(paths, jobs=jobs, cache=cache)]
    return found, engine.files_checked


def test_jobs_output_is_identical_to_serial(tmp_path, monkeypatch):
    _example_tree(tmp_path)
    monkeypatch.setattr(parallel, "CHUNK_FILES", 4)  # small chunks: many tasks, the pool is used
    serial = _findings(str(tmp_path), 1)
    assert serial[0]
    assert _findings(str(tmp_path), 2) == serial
    assert _findings(str(tmp_path), 3) == serial


def test_jobs_with_the_cache_cold_and_warm(tmp_path, monkeypatch):
    from auditor.run.cache import Cache

    src = tmp_path / "src"
    _example_tree(src, copies=3)
    monkeypatch.setattr(parallel, "CHUNK_FILES", 4)
    serial = _findings(str(src), 1)
    engine = Engine(Options())
    cold = Cache.for_engine(engine, str(tmp_path / "cache"))
    assert _findings(str(src), 2, cold) == serial and cold.hits == 0
    warm = Cache.for_engine(engine, str(tmp_path / "cache"))
    assert _findings(str(src), 2, warm) == serial and warm.misses == 0


def test_small_runs_do_not_start_a_pool(tmp_path, monkeypatch):
    write_files(tmp_path, [("r.yaml", "base_model: m\nadapter: lora\nlora_dropout: 2\ndatasets: []\n")])

    def no_pool(*a, **k):
        raise AssertionError("a pool was started for one file")

    monkeypatch.setattr("concurrent.futures.ProcessPoolExecutor", no_pool)
    assert _findings(str(tmp_path), 8)[0]


def test_cli_jobs_flag(tmp_path, run_cli, monkeypatch):
    _example_tree(tmp_path, copies=2)
    monkeypatch.setattr(parallel, "CHUNK_FILES", 4)
    from click.testing import CliRunner

    from auditor.cli.commands import cli

    # stdout only: the tree holds DRP002's example of a suppression naming no rule, which
    # exits 2 with its error on stderr (issue 27)
    one, two = (CliRunner().invoke(cli, ["check", "--no-cache", "--jobs", jobs, "--format", "json", str(tmp_path)])
                for jobs in ("1", "2"))
    assert one.exit_code == two.exit_code == 2 and "unknown rule selector: 'DRP999'" in one.stderr
    assert json.loads(one.stdout) == json.loads(two.stdout)
    code, _ = run_cli("check", "--jobs", "0", str(tmp_path))
    assert code == 2


def test_files_checked_is_counted_once_in_every_mode(tmp_path, monkeypatch):
    from auditor.run.cache import Cache

    _example_tree(tmp_path / "src", copies=1)
    root = str(tmp_path / "src")
    expected = _findings(root, 1)
    for chunk in (4, 10_000):  # with a pool, and too small a run for one
        monkeypatch.setattr(parallel, "CHUNK_FILES", chunk)
        assert _findings(root, 2) == expected
        for _ in range(2):  # cold, then warm
            engine = Engine(Options())
            assert _findings(root, 2, Cache.for_engine(engine, str(tmp_path / f"c{chunk}"))) == expected
