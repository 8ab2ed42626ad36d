"""The compiled rule catalogue is only a faster way to the same rules, never a stale one."""

from __future__ import annotations

import os
import shutil
import sys

from auditor import catalogue


def _setup(tmp_path, monkeypatch):
    rules = tmp_path / "rules"
    shutil.copytree(catalogue.builtin_dir(), rules)
    monkeypatch.setattr(catalogue, "builtin_dir", lambda: str(rules))
    monkeypatch.setattr(catalogue, "_compiled_path", lambda d: str(tmp_path / "pycache" / "rules.marshal"))
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
