"""Issue 8, fuzzing: hypothesis properties for every parser and every fixer.

No unhandled exception on any text; every span lies inside the text it points into; a fix
applied twice gives what applying it once gives, and leaves the text outside its edit
untouched. Examples per property: 200 in CI (a few seconds each); raise by hand with
DROPOUT_AUDIT_FUZZ_EXAMPLES=20000.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from auditor.sources import nodes, structured
from auditor.sources.text import FileProblem, read_text

EXAMPLES = int(os.environ.get("DROPOUT_AUDIT_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("DROPOUT_AUDIT_FUZZ_EXAMPLES"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])

KEYS = ["lora_dropout", "hidden_dropout", "attention_dropout", "dropout", "hidden_dropout_prob", "attn_pdrop",
        "base_model", "adapter", "model_type", "peft_type", "auto_map", "stage", "finetuning_type",
        "_component_", "model", "trainer", "disable_dropout", "use_peft", "model_name_or_path", "rl", "x"]
VALUES = ["0.1", "1.5", "10", "'0.1'", '"5e-2"', "5e-2", "1e5", ".nan", "-.inf", "~", "null", "true", "no",
          "${P}", "'{{ p }}'", "", "[0.1, 0.2]", "{a: 0.1}", "&a 0.1", "*a", "!!float 0.1", "!!python/none ''",
          "lora", "full", "0x10", "1_000", "'\\u00e9'", "\"\\ud800\"", "|\n  0.1", ">-\n  x", "NaN", "Infinity"]
INDENTS = ["", "  ", "    ", "- ", "  - "]


@st.composite
def yamlish(draw):
    """Text close to real recipes, so the fuzzer reaches the dialect and settings code."""
    lines = draw(st.lists(st.tuples(st.sampled_from(INDENTS), st.sampled_from(KEYS), st.sampled_from(VALUES)),
                          max_size=12))
    body = "\n".join(f"{ind}{key}: {val}" for ind, key, val in lines)
    noise = draw(st.sampled_from(["", "\n---\n", "\n# c\n", "\ufeff", "{", "]", "\t", "\r\n", "\x85", ":", "%YAML 1.1\n"]))
    at = draw(st.integers(0, len(body)))
    return body[:at] + noise + body[at:]


@st.composite
def jsonish(draw):
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=8))
    vals = draw(st.lists(st.sampled_from(["0.1", "1.5", "10", "\"0.1\"", "NaN", "-Infinity", "null", "true",
                                          "[]", "{}", "1" + "0" * 30, "1e400", "\"lora\"", "\"LORA\"",
                                          "{\"a\": 0.1}", "\"\\u0000\""]), min_size=len(keys), max_size=len(keys)))
    text = "{" + ", ".join(f'"{k}": {v}' for k, v in zip(keys, vals)) + "}"
    cut = draw(st.one_of(st.none(), st.integers(0, len(text))))
    return text if cut is None else text[:cut]


def _spans_inside(src, text):
    for s in src.settings:
        for span in (s.key_span, s.value_span):
            assert 0 <= span.start <= span.end <= len(text)
            assert span.line >= 1 and span.column >= 1
        assert text[s.value_span.start:s.value_span.end] == s.raw
    for code, span, message in src.problems:
        assert code.startswith("DRP") and span.line >= 1 and "\n" not in message
        assert 0 <= span.start <= len(text)


def _read(name, text):
    src = structured.read(name, text)
    if src is not None:
        _spans_inside(src, text)
    return src


@FUZZ
@given(st.text(max_size=400))
def test_compose_raises_only_parse_errors(text):
    try:
        nodes.compose(text, "f.yaml")
    except nodes.ParseError as exc:
        assert exc.span.line >= 1


@FUZZ
@given(st.text(max_size=400), st.sampled_from(["recipe.yaml", "config.json", "adapter_config.json", "x.yml"]))
def test_structured_reader_on_any_text(text, name):
    _read(name, text)


@FUZZ
@given(yamlish())
@example("lora_dropout: 0.1\nlora_dropout: |\n  0.1")  # found: a newline in DRP402's message
def test_structured_reader_on_recipe_like_yaml(text):
    _read("recipe.yaml", text)


@FUZZ
@given(jsonish(), st.sampled_from(["config.json", "adapter_config.json", "train.json"]))
def test_structured_reader_on_config_like_json(text, name):
    _read(name, text)


@FUZZ
@given(st.text(alphabet="[]{}\"'#\n -a:,\\", max_size=600))
def test_nesting_precheck_never_raises(text):
    span = nodes._too_deep(text)
    if span is not None:
        assert 0 <= span.start < len(text)


@FUZZ
@given(st.binary(max_size=300))
def test_read_text_on_any_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("b") / "config.json"
    path.write_bytes(data)
    try:
        text = read_text(str(path), max_size=200)
    except FileProblem as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert len(data) <= 200 and isinstance(text, str)


# --- fixers -----------------------------------------------------------------------------------

def _engine():
    from auditor.run.engine import Engine, Options

    if not hasattr(_engine, "cached"):
        _engine.cached = Engine(Options())
    return _engine.cached


def _findings(name, text):
    src = structured.read(name, text)
    return [] if src is None else _engine().check_sources(os.path.dirname(name) or ".", [src])


def _apply(text, findings):
    """Apply every fix's edits, last first, skipping overlaps (how a fixer must behave)."""
    edits = sorted((e for f in findings if f.fix for e in f.fix.edits), key=lambda e: (e.start, e.end), reverse=True)
    out, floor, applied = text, len(text) + 1, []
    for e in edits:
        if e.end <= floor:
            out = out[:e.start] + e.replacement + out[e.end:]
            floor = e.start
            applied.append(e)
    return out, applied


VALUE_SPELLINGS = ["'0.1'", '"0.05"', "5e-2", "10", "50", "'1e-1'", "0.1", "' 0.2 '", '"5"', "2"]


@st.composite
def fixable(draw):
    head = draw(st.sampled_from(["base_model: m\nadapter: lora\n", "stage: sft\nfinetuning_type: lora\n"
                                 "model_name_or_path: m\n", "", "# comment: 'x'\n"]))
    keys = draw(st.lists(st.sampled_from(["lora_dropout", "hidden_dropout", "attention_dropout", "dropout"]),
                         min_size=1, max_size=4, unique=True))
    vals = [draw(st.sampled_from(VALUE_SPELLINGS)) for _ in keys]
    tail = draw(st.sampled_from(["", "# end\n", "other: 'kept as is'  # note\n"]))
    return head + "".join(f"{k}: {v}  # was {v}\n" for k, v in zip(keys, vals)) + tail


@FUZZ
@given(fixable())
def test_fixes_are_idempotent_and_local(text):
    once, applied = _apply(text, _findings("recipe.yaml", text))
    # outside the edited spans nothing changed: walk both texts edit by edit
    pos_text = pos_once = 0
    for e in sorted(applied, key=lambda e: e.start):
        gap = e.start - pos_text
        assert once[pos_once:pos_once + gap] == text[pos_text:e.start]
        pos_once += gap
        assert once[pos_once:pos_once + len(e.replacement)] == e.replacement
        pos_once += len(e.replacement)
        pos_text = e.end
    assert once[pos_once:] == text[pos_text:]
    twice, again = _apply(once, _findings("recipe.yaml", once))
    if not [e for e in again if e.replacement != once[e.start:e.end]]:
        assert twice == once
    else:  # a second fix may only finish a chain (e.g. '50' -> 50 -> 0.5), and must then be stable
        thrice, _ = _apply(twice, _findings("recipe.yaml", twice))
        assert thrice == twice
    assert structured.read("recipe.yaml", once) is not None or not text.strip()


@FUZZ
@given(jsonish())
def test_json_fixes_keep_the_file_parsable(text):
    src = structured.read("config.json", text)
    if src is None or src.kind == "unreadable":
        return
    fixed, _ = _apply(text, _findings("config.json", text))
    after = structured.read("config.json", fixed)
    assert after is not None and after.kind != "unreadable"
