"""The fast scanner must read every file exactly as the round-trip scanner did.

nodes.compose uses ruamel's safe scanner and falls back to the round-trip one on errors; the
round-trip scanner alone is the reference. Both are compared on the shared corpus (findings
of the whole engine) and, Source by Source, on the rule examples and deterministic mutations
of them (broken files must keep their error message and position).
"""

from __future__ import annotations

import random

from auditor import catalogue
from auditor.sources import nodes, structured
from tests.conftest import audit

MUTATIONS = (":", "[", "]", "{", '"', "'", "\t", "&a ", "*a", "\n---\n", "#", " ", "\n", "- ", "!!str ", "|",
             "%", "`", ",", "? ", ": #x", "  # c\n", "\n#\n  ", " #")


def _reference(text, path):
    return nodes._compose(text, "rt")


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
    monkeypatch.setattr(nodes, "compose", _reference)
    slow = [_signature(structured.read(name, text)) for name, text in cases]
    diffs = [(cases[i], fast[i], slow[i]) for i in range(len(cases)) if fast[i] != slow[i]]
    assert not diffs, diffs[:3]
    assert any(s is not None and s[0] == "unreadable" for s in slow)  # errors were exercised


def test_corpus_findings_match_the_round_trip_scanner(corpus_dir, monkeypatch):
    fast = [f.to_dict() for f in audit([corpus_dir])]
    monkeypatch.setattr(nodes, "compose", _reference)
    slow = [f.to_dict() for f in audit([corpus_dir])]
    assert fast == slow
