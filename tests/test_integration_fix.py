"""--fix and --diff: exact span edits, safe writes, idempotence.

The property test builds recipes from segments (comments, blank lines, keys, values with
known fixes) so that it knows where every value is; after --fix the file must match the
same segments byte for byte with only the value slots changed, each to the number the
value meant, and a second --fix must change nothing.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
import tempfile

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from auditor.core.model import Edit, Finding, Fix, Span
from auditor.run import fix
from tests.conftest import write_files

RECIPE = "base_model: m\nadapter: lora\nlora_dropout: \"0.1\"  # quoted\nhidden_dropout: 5e-2\n"


def _cli(*args):
    from click.testing import CliRunner

    from auditor.cli.commands import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def _read(path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def test_fix_rewrites_only_values_and_reports_what_remains(tmp_path):
    (path,) = write_files(tmp_path, [("recipe.yaml", RECIPE)])
    code, out = _cli("check", "--fix", "--format", "concise", str(tmp_path))
    assert _read(path) == b"base_model: m\nadapter: lora\nlora_dropout: 0.1  # quoted\nhidden_dropout: 0.05\n"
    assert "Fixed 2 findings (0 remaining)" in out
    assert code == 0


def test_diff_writes_nothing_and_exits_1(tmp_path):
    (path,) = write_files(tmp_path, [("recipe.yaml", RECIPE)])
    code, out = _cli("check", "--diff", str(tmp_path))
    assert code == 1
    assert '-lora_dropout: "0.1"  # quoted\n' in out and "+lora_dropout: 0.1  # quoted\n" in out
    assert "+hidden_dropout: 0.05\n" in out
    assert _read(path) == RECIPE.encode()


def test_unsafe_fix_needs_the_flag(tmp_path):
    (path,) = write_files(tmp_path, [("recipe.yaml", "base_model: m\nadapter: lora\nlora_dropout: 10\n")])
    _, out = _cli("check", "--fix", str(tmp_path))
    assert "1 more with --unsafe-fixes" in out
    assert b"lora_dropout: 10\n" in _read(path)
    _cli("check", "--fix", "--unsafe-fixes", str(tmp_path))
    assert b"lora_dropout: 0.1\n" in _read(path)


def test_crlf_bom_no_final_newline_and_permissions_survive(tmp_path):
    path = tmp_path / "recipe.yaml"
    original = codecs.BOM_UTF8 + RECIPE.replace("\n", "\r\n").rstrip("\r\n").encode()
    path.write_bytes(original)
    os.chmod(path, 0o640)
    _cli("check", "--fix", str(tmp_path))
    data = _read(path)
    assert data == codecs.BOM_UTF8 + b"base_model: m\r\nadapter: lora\r\nlora_dropout: 0.1  # quoted\r\nhidden_dropout: 0.05"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_symlink_is_edited_at_its_target(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    target = real / "recipe.yaml"
    target.write_text(RECIPE)
    link = tmp_path / "recipe.yaml"
    link.symlink_to(target)
    _cli("check", "--fix", str(link))
    assert os.path.islink(link)
    assert "lora_dropout: 0.1  # quoted" in target.read_text()


def test_file_changed_since_audit_is_not_written(tmp_path, monkeypatch):
    (path,) = write_files(tmp_path, [("recipe.yaml", RECIPE)])
    real_plan = fix.plan

    def edit_then_plan(findings, fingerprints, unsafe):
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("# an editor saved meanwhile\n")
        return real_plan(findings, fingerprints, unsafe)

    monkeypatch.setattr(fix, "plan", edit_then_plan)
    _, out = _cli("check", "--fix", str(tmp_path))
    assert "changed since it was audited; not fixed" in out
    assert _read(path) == (RECIPE + "# an editor saved meanwhile\n").encode()


def test_atomic_replace_refuses_when_content_differs(tmp_path):
    from auditor.run.atomic_write import FileChanged, replace

    path = tmp_path / "f.yaml"
    path.write_bytes(b"a: 1\n")
    with pytest.raises(FileChanged):
        replace(str(path), b"a: 2\n", expected=b"a: 0\n")
    assert path.read_bytes() == b"a: 1\n"


def test_python_code_fix_contract(tmp_path):
    """Code rules (another module) attach an insertion; the fixer applies it like any edit."""
    src = "import torch.nn.functional as F\n\n\ndef forward(self, x):\n    return F.dropout(x, p=0.1)\n"
    (path,) = write_files(tmp_path, [("model.py", src)])
    at = src.index("p=0.1") + len("p=0.1")
    finding = Finding(code="DRP600", name="functional-dropout-always-on", category="eval-mode", severity="error",
                      path=path, span=Span(5, 12, 5, 31, src.index("F.dropout"), at + 1), message="m",
                      fix=Fix("pass training=self.training", (Edit(at, at, ", training=self.training"),)))
    fingerprints = {path: (fix.text_digest(src), os.stat(path).st_size, os.stat(path).st_mtime_ns)}
    fixes, refused = fix.plan([finding], fingerprints, unsafe=False)
    assert not refused and not fix.write(fixes)
    assert _read(path).decode() == src.replace("p=0.1)", "p=0.1, training=self.training)")


def test_overlapping_fixes_apply_once_and_duplicates_merge():
    text = "lora_dropout: '0.1'\n"
    span = Span(1, 15, 1, 20, 14, 19)
    mk = lambda code, rep: Finding(code=code, name=code, category="invalid", severity="error", path="p", span=span,
                                   message="m", fix=Fix("d", (Edit(14, 19, rep),)))
    out, applied, deferred = fix.apply_edits(text, [mk("A", "0.1"), mk("B", "0.1"), mk("C", "0.10")])
    assert out == "lora_dropout: 0.1\n"
    assert [f.code for f in applied] == ["A", "B"] and [f.code for f in deferred] == ["C"]


# ---------------------------------------------------------------- the property test

COMMENT = st.text(alphabet="abcdefghij klmnop:#'\"-_=.,()[]{}0123456789éü", max_size=30)
YAML_KEYS = ["lora_dropout", "hidden_dropout", "attention_dropout", "embedding_dropout", "resid_dropout",
             "ffn_dropout", "classifier_dropout", "activation_dropout"]
JSON_KEYS = ["hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout", "attention_dropout",
             "activation_dropout", "dropout"]


@st.composite
def yaml_value(draw):
    """(raw text, the probability a fix may write, or None when no fix applies)."""
    kind = draw(st.sampled_from(["quoted", "single", "yaml11", "percent", "plain"]))
    p = draw(st.integers(min_value=1, max_value=40)) / 100
    if kind == "quoted":
        return f'"{p}"', p
    if kind == "single":
        return f"'{p}'", p
    if kind == "yaml11":
        mantissa = draw(st.integers(min_value=1, max_value=9))
        return f"{mantissa}e-2", mantissa / 100
    if kind == "percent":
        n = draw(st.integers(min_value=2, max_value=60))
        return str(n), n / 100
    return str(p), None


@st.composite
def yaml_recipe(draw):
    """Segments: ("lit", text) or ("val", raw, expected)."""
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    segs = []
    if draw(st.booleans()):
        segs.append(("lit", f"# {draw(COMMENT)}{nl}"))
    segs.append(("lit", f"base_model: m{nl}adapter: lora{nl}"))
    keys = draw(st.lists(st.sampled_from(YAML_KEYS), min_size=1, max_size=5, unique=True))
    nested = draw(st.booleans())
    if nested:
        segs.append(("lit", f"model_config:   # nested block{nl}"))
    for key in keys:
        raw, expected = draw(yaml_value())
        indent = "  " if nested else ""
        if draw(st.booleans()):
            segs.append(("lit", f"{indent}# {draw(COMMENT)}{nl}"))
        segs.append(("lit", f"{indent}{key}:{draw(st.sampled_from([' ', '  ', '   ']))}"))
        segs.append(("val", raw, expected))
        trailing = draw(st.sampled_from(["", "  # " + draw(COMMENT), " #x"]))
        segs.append(("lit", f"{trailing}{nl}" if trailing.strip() else nl))
        if draw(st.booleans()):
            segs.append(("lit", nl))
    if draw(st.booleans()):  # no final newline
        last = segs[-1]
        segs[-1] = ("lit", last[1][:-len(nl)] if last[1].endswith(nl) else last[1])
    return segs, draw(st.booleans())


@st.composite
def json_config(draw):
    nl = draw(st.sampled_from(["\n", "\r\n", ""]))
    indent = draw(st.sampled_from(["", "  ", "\t"]))
    segs = [("lit", "{" + nl + indent + '"model_type": "bert"')]
    for key in draw(st.lists(st.sampled_from(JSON_KEYS), min_size=1, max_size=4, unique=True)):
        segs.append(("lit", "," + nl + indent + f'"{key}":' + draw(st.sampled_from(["", " ", "  "]))))
        p = draw(st.integers(min_value=1, max_value=40)) / 100
        if draw(st.booleans()):
            segs.append(("val", f'"{p}"', p))
        else:
            segs.append(("val", str(p), None))
    segs.append(("lit", nl + "}" + draw(st.sampled_from(["\n", "", "\r\n"]))))
    return segs, draw(st.booleans())


# Value fixes are the property under test; DRP510's unsafe key rename changes a key on purpose
# and has its own test (test_unsafe_fix_renames_a_key_the_architecture_does_not_read).
_VALUE_FIXES_ONLY = ("--ignore", "DRP510")


def _check_property(name, segs, bom):
    original = "".join(s[1] for s in segs)
    pattern = "".join(re.escape(s[1]) if s[0] == "lit" else r"(\S+?)" for s in segs)
    values = [s for s in segs if s[0] == "val"]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        with open(path, "wb") as fh:
            fh.write((codecs.BOM_UTF8 if bom else b"") + original.encode("utf-8"))
        _cli("check", "--fix", "--unsafe-fixes", "--no-progress", *_VALUE_FIXES_ONLY, path)
        data = _read(path)
        assert data.startswith(codecs.BOM_UTF8) == bom
        fixed = data[3:].decode() if bom else data.decode()
        m = re.fullmatch(pattern, fixed, flags=re.S)
        assert m, f"bytes outside the values changed:\n{original!r}\n{fixed!r}"
        for (_, raw, expected), got in zip(values, m.groups()):
            if got != raw:
                assert expected is not None, f"{raw} changed to {got} though no fix applies"
                assert float(got) == pytest.approx(expected) and 0 <= float(got) < 1
        _cli("check", "--fix", "--unsafe-fixes", "--no-progress", *_VALUE_FIXES_ONLY, path)
        assert _read(path) == data, "a second --fix changed the file"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_recipe())
def test_property_yaml_fix_touches_only_values_and_is_idempotent(case):
    segs, bom = case
    _check_property("recipe.yaml", segs, bom)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_config())
@example(case=([("lit", '{\n"model_type": "bert"'), ("lit", ',\n"attention_dropout":'), ("val", "0.01", None),
                ("lit", "\n}\n")], False))  # a key DRP510 would rename: only value fixes are under test
def test_property_json_fix_touches_only_values_and_is_idempotent(case):
    segs, bom = case
    _check_property("config.json", segs, bom)


def test_unsafe_fix_renames_a_key_the_architecture_does_not_read(tmp_path):
    """DRP510: Qwen2 reads attention_dropout, not BERT's attention_probs_dropout_prob; the unsafe
    fix renames the key in place (quoting and the rest of the file kept) and only with
    --unsafe-fixes; a config that already has attention_dropout is left for a person to merge."""
    import subprocess
    import sys

    from tests.conftest import REPO

    text = '{\n  "model_type": "qwen2",\n  "attention_probs_dropout_prob": 0.1,\n  "hidden_size": 64\n}\n'
    cfg = tmp_path / "config.json"
    cfg.write_text(text)
    env = {**__import__("os").environ, "PYTHONPATH": REPO}
    base = [sys.executable, "-m", "auditor", "check", "--no-cache", "--format", "concise", str(tmp_path)]
    subprocess.run(base + ["--fix"], env=env, capture_output=True, text=True)
    assert cfg.read_text() == text  # safe fixes only: nothing renamed
    subprocess.run(base + ["--fix", "--unsafe-fixes"], env=env, capture_output=True, text=True)
    assert cfg.read_text() == text.replace('"attention_probs_dropout_prob"', '"attention_dropout"')

    both = '{"model_type": "qwen2", "attention_dropout": 0.0, "attention_probs_dropout_prob": 0.1}\n'
    cfg.write_text(both)
    subprocess.run(base + ["--fix", "--unsafe-fixes"], env=env, capture_output=True, text=True)
    assert cfg.read_text() == both
