"""The findings cache: a hit only when content, rules and options are all unchanged.

Functional checks only; how much faster a warm run is belongs to bench/run.py.
"""

from __future__ import annotations

import json
import os

from auditor.run import cache as cache_mod
from auditor.run.discover import discover
from auditor.run.engine import Engine, Options
from tests.conftest import write_files

RECIPE = "base_model: m\nadapter: lora\nlora_r: 8\nlora_dropout: 1.5\nmicro_batch_size: 1\n"
ADAPTER = '{"peft_type": "LORA", "lora_dropout": 0.1, "r": 8}\n'


def _tree(tmp_path):
    write_files(tmp_path / "src", [("a/recipe.yaml", RECIPE), ("a/adapter_config.json", ADAPTER),
                                   ("b/other.yaml", "base_model: m\nadapter: lora\nlora_dropout: 0.05\n"
                                                    "datasets: []\n")])
    return str(tmp_path / "src")


def _run(root, cache_dir, **options):
    engine = Engine(Options(**options))
    files = discover([root], engine.suffixes).files
    cache = cache_mod.Cache.for_engine(engine, cache_dir)
    found = [f.to_dict() for f in engine.check_paths(files, jobs=1, cache=cache)]
    return found, cache


def test_second_run_is_served_from_the_cache(tmp_path):
    root, cdir = _tree(tmp_path), str(tmp_path / "cache")
    first, c1 = _run(root, cdir)
    second, c2 = _run(root, cdir)
    assert first and first == second
    assert (c1.hits, c1.misses) == (0, 2)
    assert (c2.hits, c2.misses) == (2, 0)


def test_findings_equal_the_uncached_engine(tmp_path):
    root, cdir = _tree(tmp_path), str(tmp_path / "cache")
    engine = Engine(Options())
    plain = [f.to_dict() for f in engine.check_paths(discover([root], engine.suffixes).files)]
    _run(root, cdir)
    assert _run(root, cdir)[0] == plain


def test_content_change_invalidates_only_that_directory(tmp_path):
    root, cdir = _tree(tmp_path), str(tmp_path / "cache")
    _run(root, cdir)
    with open(os.path.join(root, "a", "recipe.yaml"), "w") as fh:
        fh.write(RECIPE.replace("1.5", "0.05"))
    found, c = _run(root, cdir)
    assert (c.hits, c.misses) == (1, 1)
    assert not any(f["code"] == "DRP100" for f in found)


def test_rule_params_severity_and_selection_change_the_key(tmp_path):
    root, cdir = _tree(tmp_path), str(tmp_path / "cache")
    _run(root, cdir)
    for options in ({"severities": {"DRP100": "info"}}, {"params": {"DRP201": {"max": {"lora": 0.01}}}},
                    {"ignore": ("DRP100",)}, {"max_file_size": 1000}):
        found, c = _run(root, cdir, **options)
        assert c.hits == 0, options
        again, c = _run(root, cdir, **options)
        assert c.misses == 0 and again == found, options


def test_severity_override_is_not_served_stale(tmp_path):
    root, cdir = _tree(tmp_path), str(tmp_path / "cache")
    _run(root, cdir)
    found, _ = _run(root, cdir, severities={"DRP100": "info"})
    assert {f["severity"] for f in found if f["code"] == "DRP100"} == {"info"}


def test_rule_file_content_is_part_of_the_key(tmp_path):
    engine = Engine(Options())
    salt = cache_mod.salt_for(engine)
    rule = engine.rules[0]
    other = tmp_path / "rule.yaml"
    other.write_bytes(open(rule.origin, "rb").read() + b"\n# edited\n")
    rule.origin = str(other)
    assert cache_mod.salt_for(engine) != salt


def test_an_edited_user_rule_changes_the_key_in_the_same_process(tmp_path):
    """The salt keys rule files by the stamps the catalogue read (catalogue.stamp_of, kept
    for the run): loading a --rules directory again must see an edit made in between."""
    import shutil

    rules = tmp_path / "rules"
    rules.mkdir()
    builtin = Engine(Options()).rules[0]
    shutil.copy(builtin.origin, rules / "DRP999-mine.yaml")
    path = rules / "DRP999-mine.yaml"
    path.write_text(path.read_text().replace(f"code: {builtin.code}", "code: DRP999"))
    salt = cache_mod.salt_for(Engine(Options(rule_dirs=(str(rules),))))
    path.write_text(path.read_text() + "\n# edited\n")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert cache_mod.salt_for(Engine(Options(rule_dirs=(str(rules),)))) != salt


def test_cachedir_tag_and_gitignore_are_written(tmp_path):
    root, cdir = _tree(tmp_path), str(tmp_path / "cache")
    _run(root, cdir)
    tag = open(os.path.join(cdir, "CACHEDIR.TAG")).read()
    assert tag.startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert os.path.exists(os.path.join(cdir, ".gitignore"))


def test_corrupt_entries_are_ignored_and_rewritten(tmp_path):
    root, cdir = _tree(tmp_path), str(tmp_path / "cache")
    first, _ = _run(root, cdir)
    entries = [os.path.join(d, f) for d, _, fs in os.walk(cdir) for f in fs if len(f) == 64]
    assert len(entries) == 2
    with open(entries[0], "wb") as fh:
        fh.write(b"\x00garbage")
    with open(entries[1], "wb") as fh:
        fh.write(b"")
    found, c = _run(root, cdir)
    assert found == first and c.hits == 0
    assert _run(root, cdir)[1].hits == 2


def test_encoding_round_trips_fixes():
    from auditor.core.model import Edit, Finding, Fix, Span

    f = Finding("DRP101", "n", "invalid", "error", "p.yaml", Span(1, 2, 1, 5, 3, 6), "m",
                Fix("d", (Edit(3, 6, "0.1"),), "unsafe"), "k", False)
    assert cache_mod.decode(cache_mod.encode([f])) == [f]


def test_cli_no_cache_writes_nothing_and_cache_dir_is_respected(tmp_path, monkeypatch, run_cli):
    root = _tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out = run_cli("check", "--no-cache", "--format", "json", root)
    assert code == 1 and json.loads(out)["findings"]
    assert not os.path.exists(tmp_path / ".dropout_audit_cache")
    code, out2 = run_cli("check", "--format", "json", root)
    assert out2 == out and os.path.isfile(tmp_path / ".dropout_audit_cache" / "CACHEDIR.TAG")
    code, out3 = run_cli("check", "--cache-dir", str(tmp_path / "elsewhere"), "--format", "json", root)
    assert out3 == out and os.path.isfile(tmp_path / "elsewhere" / "CACHEDIR.TAG")


def test_encoding_round_trips_every_finding_field():
    """Findings cross process and cache boundaries through cache.encode; a field it forgets
    is silently lost there (a regression: SARIF suppression kinds came back empty)."""
    from auditor.core.model import Edit, Finding, Fix, Span
    from auditor.run.cache import decode, encode

    finding = Finding(code="DRP100", name="n", category="invalid", severity="error", path="a.yaml",
                      span=Span(1, 2, 1, 5, 1, 4), message="m", fix=Fix("d", (Edit(1, 4, "0.1"),), "unsafe"),
                      key="k", suppressed=True, suppression=("inSource", "why"))
    (back,) = decode(encode([finding]))
    for name in Finding.__slots__:  # the fields, in order (auditor/core/record.py)
        assert getattr(back, name) == getattr(finding, name), name


def test_code_fingerprint_sees_every_module_of_the_package(tmp_path):
    """An edited module (mtime or size), in a subpackage too, changes the salt; bytecode caches
    and other files do not."""
    import os

    from auditor.run.cache import _code_fingerprint

    (tmp_path / "sub" / "__pycache__").mkdir(parents=True)
    for rel in ("a.py", "sub/b.py", "sub/__pycache__/b.cpython-311.pyc", "data.json"):
        (tmp_path / rel).write_text("x = 1\n")
    first = _code_fingerprint(str(tmp_path))
    for rel in ("sub/__pycache__/b.cpython-311.pyc", "data.json"):
        (tmp_path / rel).write_text("changed\n")
    assert _code_fingerprint(str(tmp_path)) == first
    st = os.stat(tmp_path / "sub" / "b.py")
    os.utime(tmp_path / "sub" / "b.py", ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    second = _code_fingerprint(str(tmp_path))
    assert second != first
    (tmp_path / "a.py").write_text("x = 22\n")
    assert _code_fingerprint(str(tmp_path)) != second
