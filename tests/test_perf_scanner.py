"""The fast path must read every file exactly as the pure-Python path does.

The fast path is the byte pre-scan, then libyaml (PyYAML's C parser), then ruamel's safe
scanner, with the round-trip scanner for errors. The pure-Python path, the reference, is
ruamel's round-trip scanner alone with no pre-scan. They are compared on the full findings
of the whole engine over fixtures/ and the shared corpus and, Source by Source, on the rule
examples and deterministic mutations of them (broken files must keep their error message and
position); and the fast path must work, with the same findings, where PyYAML is missing.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

from auditor.core import catalogue
from auditor.sources import nodes, prescan, structured
from tests.conftest import REPO, audit

FIXTURES = os.path.join(REPO, "fixtures")

MUTATIONS = (":", "[", "]", "{", '"', "'", "\t", "&a ", "*a", "\n---\n", "#", " ", "\n", "- ", "!!str ", "|",
             "%", "`", ",", "? ", ": #x", "  # c\n", "\n#\n  ", " #")


def _reference(text, path):
    return nodes._compose(text, "rt")


def _pure(monkeypatch):
    monkeypatch.setattr(nodes, "compose", _reference)
    monkeypatch.setattr(nodes, "USE_LIBYAML", False)
    monkeypatch.setattr(prescan, "ENABLED", False)


def _signature(src):
    if src is None:
        return None
    return (src.kind, src.dialect,
            [(s.key, s.key_path, s.raw, repr(s.value), s.p, s.reason, s.key_span, s.value_span, s.role)
             for s in src.settings],
            sorted((k, repr(f.value), f.span) for k, f in src.fields.items()), src.problems)


def _texts():
    for rule in catalogue.load():
        for kind in ("bad", "good"):
            for ex in rule.examples.get(kind) or []:
                for f in ex.get("files") or [ex]:
                    yield f["file"], f["text"]


def _mutants(seed=0, per_text=8):
    rng = random.Random(seed)
    for name, text in _texts():
        yield name, text
        for _ in range(per_text):
            i = rng.randrange(len(text) + 1)
            op = rng.random()
            if op < 0.5:
                yield name, text[:i] + rng.choice(MUTATIONS) + text[i:]
            elif op < 0.8:
                yield name, text[:i] + text[i + rng.randint(1, 5):]
            else:
                yield name, text[:i]


def test_sources_match_the_round_trip_scanner_on_examples_and_mutants(monkeypatch):
    cases = list(_mutants())
    fast = [_signature(structured.read(name, text)) for name, text in cases]
    _pure(monkeypatch)
    slow = [_signature(structured.read(name, text)) for name, text in cases]
    diffs = [(cases[i], fast[i], slow[i]) for i in range(len(cases)) if fast[i] != slow[i]]
    assert not diffs, diffs[:3]
    assert any(s is not None and s[0] == "unreadable" for s in slow)  # errors were exercised


def test_fast_path_was_exercised():
    assert nodes._libyaml_loader() is not None, "PyYAML with libyaml is a dependency; the fast path is untested"
    doc = nodes.compose("lora_dropout: 0.1\n", "r.yaml")[0]
    assert type(doc).__module__ == "yaml.nodes"


def test_corpus_findings_match_the_pure_path(corpus_dir, monkeypatch):
    fast = [f.to_dict() for f in audit([corpus_dir])]
    _pure(monkeypatch)
    slow = [f.to_dict() for f in audit([corpus_dir])]
    assert fast and fast == slow


def test_fixture_findings_match_the_pure_path(monkeypatch):
    fast = [f.to_dict() for f in audit([FIXTURES])]
    _pure(monkeypatch)
    slow = [f.to_dict() for f in audit([FIXTURES])]
    assert fast and fast == slow


def test_same_findings_without_pyyaml(tmp_path):
    """Where PyYAML (or its libyaml binding) is missing, ruamel reads everything, silently."""
    script = ("import sys; sys.modules['yaml'] = None; sys.modules['yaml._yaml'] = None\n"
              "from auditor.cli.launch import main; sys.exit(main())")
    env = dict(os.environ, NO_COLOR="1")
    runs = []
    for cmd in ([sys.executable, "-c", script], [sys.executable, "-m", "auditor"]):
        out = subprocess.run([*cmd, "check", "--no-cache", "--format", "json", FIXTURES], env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
        runs.append(json.loads(out.stdout)["findings"])
    assert runs[0] and runs[0] == runs[1]
