"""Issue 27.4-5: every format writes any file name and any message: valid UTF-8, SARIF valid
against the schema with percent-encoded URIs, JUnit that an XML parser reads, JSON that keeps
the raw bytes of a name, terminals that never receive a raw control character."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.core.model import Edit, Finding, Fix, Span
from auditor.report import FORMATS, write_report
from tests.conftest import SCHEMAS
from tests.reliability_helpers import cli_env

_VALIDATOR = None


def _sarif_validator():
    global _VALIDATOR
    if _VALIDATOR is None:
        import jsonschema

        with open(os.path.join(SCHEMAS, "sarif-schema-2.1.0.json"), encoding="utf-8") as fh:
            schema = json.load(fh)
        _VALIDATOR = jsonschema.validators.validator_for(schema)(schema)
    return _VALIDATOR


_SURROGATE = re.compile("[\ud800-\udfff]")
_URI = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*")
_RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def check_output(fmt: str, text: str, paths: list) -> None:
    """What each format must hold, whatever the names and messages were."""
    data = text.encode("utf-8")  # valid UTF-8: raises on a lone surrogate
    if fmt in ("json", "gitlab", "sarif"):
        doc = json.loads(data)
        assert not _SURROGATE.search(json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
    if fmt == "json":
        for f, path in zip(doc["findings"], paths):
            raw = base64.b64decode(f["path_bytes"]) if "path_bytes" in f else f["path"].encode("utf-8")
            assert raw == os.fsencode(path)
    if fmt == "sarif":
        _sarif_validator().validate(doc)
        for result in doc["runs"][0]["results"]:
            uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            assert _URI.fullmatch(uri), uri
    if fmt == "junit":
        ET.fromstring(data)
    if fmt in ("full", "concise", "github"):
        assert not _RAW_CONTROL.search(text), repr(text)
    if fmt == "github":
        assert all(line.startswith("::") for line in text.splitlines())


def _findings(names, messages) -> list:
    out = []
    for i, (name, message) in enumerate(zip(names, messages)):
        span = Span(1, 1, 1, 2, 0, 1)
        fix = Fix(f"write {message}", (Edit(0, 1, message),)) if i % 2 else None
        out.append(Finding(code="DRP100", name="dropout-out-of-range", category="invalid", severity="error",
                           path=name, span=span, message=message, fix=fix, key=message))
    return out


def _render(fmt, findings):
    from auditor.core import catalogue

    stream = io.StringIO()
    write_report(findings, fmt, stream, root=None, files_checked=len(findings), rules=catalogue.load()[:3],
                 statistics=True, color=False, files=[f.path for f in findings])
    return stream.getvalue()


HOSTILE = ["caf\udce9.yaml", "a\x1b]0;pwned\x07.yaml", "tab\there.yaml", "nl\nline.yaml", "del\x7f.json",
           "\u202eevil.yaml", "x\udcff\udcfe/config.json", "sp ace&<amp>\"'.yaml", "%41.yaml", "c1\x9b31m.yaml"]
MESSAGES = ["NUL \x00 byte", "ANSI \x1b[31mred\x1b[0m", "bell\x07", "lone \ud800 surrogate", "CR\r", "ok",
            "<tag attr=\"x\">&amp;</tag>", "\x0c\x0b form", "esc \udce9 byte", "]]> cdata end"]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_writes_hostile_names_and_messages(fmt):
    assert len(FORMATS) == 7
    findings = _findings(HOSTILE, MESSAGES)
    check_output(fmt, _render(fmt, findings), [f.path for f in findings])


_NAME_CHARS = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(["\x00", "\x1b", "\x07", "\n", "\r", "\x7f", "\x9b", "\u202e", "/", "%", "&", "<", "\""]),
    st.integers(0x80, 0xFF).map(lambda b: chr(0xDC00 + b)),  # a byte surrogateescape kept
)
_NAMES = st.text(_NAME_CHARS, min_size=1, max_size=20).filter(lambda s: "\x00" not in s).map(lambda s: s + ".yaml")
_MESSAGES = st.text(st.one_of(st.characters(), _NAME_CHARS), max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_NAMES, _MESSAGES), min_size=1, max_size=4), st.sampled_from(sorted(FORMATS)))
def test_fuzzed_names_and_messages_in_every_format(pairs, fmt):
    names, messages = zip(*pairs)
    findings = _findings(names, messages)
    check_output(fmt, _render(fmt, findings), list(names))


@pytest.mark.skipif(sys.platform == "darwin", reason="APFS refuses names that are not UTF-8")
def test_a_file_name_that_is_not_utf8_end_to_end(tmp_path):
    """The crash of the issue: SARIF traceback and a 0-byte file; JUnit that does not parse."""
    name = b"r\xe9\x1b[31m.yaml"
    with open(os.path.join(os.fsencode(str(tmp_path)), name), "w") as fh:
        fh.write("base_model: m\nadapter: lora\nlora_dropout: 1.5\n")
    for fmt in sorted(FORMATS):
        target = tmp_path / f"out.{fmt}"
        proc = subprocess.run([sys.executable, "-m", "auditor", "check", ".", "--format", f"{fmt}:{target}",
                               "--format", fmt, "--no-cache"], cwd=tmp_path, env=cli_env(),
                              capture_output=True, timeout=120)
        assert proc.returncode == 1, (fmt, proc.stderr)
        assert b"Traceback" not in proc.stderr
        written = target.read_bytes()
        assert written == proc.stdout and written
        check_output(fmt, written.decode("utf-8"), [name.decode("utf-8", "surrogateescape")])
        if fmt in ("full", "concise"):
            assert b"r\\xe9\\x1b[31m.yaml" in written  # shown escaped


def test_terminal_snippets_show_control_characters_escaped(tmp_path):
    (tmp_path / "train.py").write_bytes(b"import torch.nn as nn\n"
                                        b"layer = nn.LSTM(10, 20, num_layers=1, dropout=0.5)  # \x1b[2J\x1b]0;t\x07\n")
    proc = subprocess.run([sys.executable, "-m", "auditor", "check", "train.py", "--no-cache"], cwd=tmp_path,
                          env=cli_env(), capture_output=True, timeout=120)
    out = proc.stdout.decode("utf-8")
    assert proc.returncode == 1 and "\x1b" not in out and "\x07" not in out
    lines = out.splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.startswith("2 | ")]
    assert lines[at].endswith("dropout=0.5)  # \\x1b[2J\\x1b]0;t\\x07")
    assert lines[at + 1].index("^") == lines[at].index("0.5") and lines[at + 1].count("^") == 3


def test_snippet_caret_stays_under_the_value_after_an_escaped_character():
    from auditor.report import Place
    from auditor.report.full import _excerpt

    text, offset, width = _excerpt(Place("1:9", 0, 1, 9, 1, 12), ["a\x1bb: x: 1.5 end"])
    assert text == "a\\x1bb: x: 1.5 end" and text[offset:offset + width] == "1.5"
