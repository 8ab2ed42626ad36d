"""The HF cache reader against huggingface_hub's own try_to_load_from_cache on generated caches,
and the bad inputs of issue #11: no traceback, no reading outside, no network."""

from __future__ import annotations

import os
import socket

import pytest

from auditor.setup import hf_cache

COMMIT = "a" * 40
OTHER = "b" * 40
CONFIG = '{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1}'


def make_repo(root, repo_id, files=None, refs=None, snapshots=(COMMIT,), links=True):
    """A repo in huggingface_hub's layout: blobs/ with the bytes, snapshots/<commit>/ linking there."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name, commit in (refs or {"main": COMMIT}).items():
        (repo / "refs" / name).write_text(commit)
    for commit in snapshots:
        snap = repo / "snapshots" / commit
        snap.mkdir(parents=True, exist_ok=True)
        for name, text in ({"config.json": CONFIG} if files is None else files).items():
            if links:
                blob = repo / "blobs" / f"{commit}-{name}"
                blob.write_text(text)
                os.symlink(os.path.relpath(blob, snap), snap / name)
            else:
                (snap / name).write_text(text)
    return repo


def both(root, repo_id, revision=None):
    from huggingface_hub import try_to_load_from_cache

    theirs = try_to_load_from_cache(repo_id, "config.json", cache_dir=str(root), revision=revision)
    ours, why = hf_cache.locate(repo_id, "config.json", revision, root=str(root))
    return ours, (theirs if isinstance(theirs, str) else None), why


def test_same_answers_as_huggingface_hub(tmp_path):
    make_repo(tmp_path, "acme/atlas-3b", refs={"main": COMMIT, "dev": OTHER}, snapshots=(COMMIT, OTHER))
    make_repo(tmp_path, "acme/plain", links=False)
    make_repo(tmp_path, "acme/no-snapshot", refs={"main": OTHER}, snapshots=())
    repo = make_repo(tmp_path, "acme/no-config", files={"README.md": "hi"})
    (repo / ".no_exist" / COMMIT).mkdir(parents=True)
    (repo / ".no_exist" / COMMIT / "config.json").write_text("")
    broken = make_repo(tmp_path, "acme/broken")
    os.remove(broken / "blobs" / f"{COMMIT}-config.json")
    cases = [("acme/atlas-3b", None), ("acme/atlas-3b", "main"), ("acme/atlas-3b", "dev"), ("acme/atlas-3b", OTHER),
             ("acme/atlas-3b", "missing-branch"), ("acme/plain", None), ("acme/no-snapshot", None),
             ("acme/no-config", None), ("acme/broken", None), ("acme/absent", None)]
    for repo_id, revision in cases:
        ours, theirs, why = both(tmp_path, repo_id, revision)
        assert ours == theirs, (repo_id, revision, ours, theirs, why)
    assert both(tmp_path, "acme/atlas-3b", "dev")[0].endswith(os.path.join(OTHER, "config.json"))
    assert "missing" in both(tmp_path, "acme/no-snapshot")[2]
    assert "broken symbolic link" in both(tmp_path, "acme/broken")[2]


def test_cache_root_follows_the_documented_variables(tmp_path):
    assert hf_cache.cache_root({"HF_HUB_CACHE": "/x/hub", "HF_HOME": "/y"}) == "/x/hub"
    assert hf_cache.cache_root({"HF_HOME": "/y"}) == os.path.join("/y", "hub")
    assert hf_cache.cache_root({"XDG_CACHE_HOME": "/z"}) == os.path.join("/z", "huggingface", "hub")
    assert hf_cache.cache_root({}).endswith(os.path.join(".cache", "huggingface", "hub"))


@pytest.mark.parametrize("repo_id,revision", [("../etc", None), ("/etc/passwd", None), ("acme/x", "../../etc"),
                                              ("acme/x", "a/b"), ("a/b/c", None), ("acme/..", None)])
def test_ids_and_revisions_that_are_paths_are_refused(tmp_path, repo_id, revision):
    path, why = hf_cache.locate(repo_id, revision=revision, root=str(tmp_path))
    assert path is None and why


def test_a_link_out_of_the_cache_is_not_read(tmp_path):
    secret = tmp_path / "outside.json"
    secret.write_text(CONFIG)
    root = tmp_path / "cache"
    repo = make_repo(root, "acme/escape", files={})
    os.symlink(secret, repo / "snapshots" / COMMIT / "config.json")
    path, why = hf_cache.locate("acme/escape", root=str(root))
    assert path is None and "outside the cache" in why


def _recipe(tmp_path, ref="acme/atlas-3b"):
    d = tmp_path / "proj"
    d.mkdir(exist_ok=True)
    (d / "recipe.yaml").write_text(f"base_model: {ref}\nadapter: lora\nlora_dropout: 0.05\n"
                                   "overrides_of_model_config:\n  hidden_dropout_prob: 0.1\n")
    return str(d / "recipe.yaml")


def _codes(findings):
    return sorted(f.code for f in findings)


def test_a_cached_config_gives_the_type_and_rules_run(tmp_path, monkeypatch):
    from tests.conftest import audit

    make_repo(tmp_path / "cache", "acme/atlas-3b")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    found = audit([_recipe(tmp_path)])
    assert _codes(found) == ["DRP510"] and "gpt2" in found[0].message


def test_a_literal_revision_is_honoured(tmp_path, monkeypatch):
    from tests.conftest import audit

    repo = make_repo(tmp_path / "cache", "acme/atlas-3b", refs={"main": COMMIT, "v2": OTHER}, snapshots=(COMMIT,))
    snap = repo / "snapshots" / OTHER
    snap.mkdir(parents=True)
    (snap / "config.json").write_text('{"model_type": "bert", "hidden_dropout_prob": 0.1}')
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    d = tmp_path / "proj"
    d.mkdir()
    script = d / "train.py"
    script.write_text('from transformers import AutoModel\n'
                      'm = AutoModel.from_pretrained("acme/atlas-3b", revision="v2", hidden_dropout_prob=0.2)\n'
                      'n = AutoModel.from_pretrained("acme/atlas-3b", attn_pdrop=0.2)\n')
    assert _codes(audit([str(script)])) == []   # bert declares hidden_dropout_prob; v2 is a bert
    script.write_text('from transformers import AutoModel\n'
                      'm = AutoModel.from_pretrained("acme/atlas-3b", hidden_dropout_prob=0.2)\n')
    assert _codes(audit([str(script)])) == ["DRP124"]   # main is a gpt2


@pytest.mark.parametrize("damage", ["not-json", "huge", "broken-link", "missing-snapshot", "not-a-config",
                                    "binary", "directory", "fifo-ref", "huge-ref"])
def test_a_damaged_cache_is_a_quiet_unknown_with_a_reason(tmp_path, monkeypatch, damage):
    from tests.conftest import audit

    root = tmp_path / "cache"
    repo = make_repo(root, "acme/atlas-3b", links=damage not in ("huge", "binary", "directory"))
    config = repo / "snapshots" / COMMIT / "config.json"
    if damage == "not-json":
        os.remove(os.path.realpath(config))
        (repo / "blobs" / f"{COMMIT}-config.json").write_text("{not json")
    elif damage == "huge":
        config.unlink()
        with open(config, "wb") as fh:
            fh.truncate(10 * 1024 ** 3)   # sparse: 10 GB without using the disk
    elif damage == "broken-link":
        os.remove(os.path.realpath(config))
    elif damage == "missing-snapshot":
        (repo / "refs" / "main").write_text(OTHER)
    elif damage == "not-a-config":
        os.remove(os.path.realpath(config))
        (repo / "blobs" / f"{COMMIT}-config.json").write_text('["a", "list"]')
    elif damage == "binary":
        config.write_bytes(b"\x00\x01\x02")
    elif damage == "directory":
        config.unlink()
        config.mkdir()
    elif damage == "fifo-ref":   # opening a FIFO for reading would block until a writer comes
        (repo / "refs" / "main").unlink()
        os.mkfifo(repo / "refs" / "main")
    elif damage == "huge-ref":
        with open(repo / "refs" / "main", "wb") as fh:
            fh.truncate(10 * 1024 ** 3)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    found = audit([_recipe(tmp_path)])
    assert _codes(found) == ["DRP310"]
    assert "acme/atlas-3b" in found[0].message


@pytest.mark.parametrize("ref,codes", [("../../../etc", ["DRP310"]), ("/etc", ["DRP310"]),
                                       ("/nonexistent/model", []), ("a/../../b", []), ("./out/merged", [])])
def test_paths_as_references_never_reach_the_cache_or_a_traceback(tmp_path, monkeypatch, ref, codes):
    """A path that exists without a config.json gets the note; one absent here (usually a folder
    the run writes) is a quiet unknown."""
    from auditor.setup import identity
    from tests.conftest import audit

    calls = []
    real = hf_cache.locate
    monkeypatch.setattr(hf_cache, "locate", lambda *a, **k: calls.append(a) or real(*a, **k))
    found = audit([_recipe(tmp_path, ref)])
    assert _codes(found) == codes and calls == []
    model = identity.resolve(ref, _recipe(tmp_path, ref), None, {})
    assert model.model_type is None and model.source in ("unknown", "missing-path")


def test_no_network_is_touched(tmp_path, monkeypatch):
    from tests.conftest import audit

    def refuse(*args, **kwargs):
        raise AssertionError("the static path opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    make_repo(tmp_path / "cache", "acme/atlas-3b")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert _codes(audit([_recipe(tmp_path), _recipe(tmp_path, "meta-llama/Llama-3.2-1B")])) == ["DRP510"]


def test_the_fixture_cache(monkeypatch):
    from tests.conftest import REPO, audit

    fixture = os.path.join(REPO, "fixtures", "hub-id-hf-cache")
    assert _codes(audit([fixture])) == ["DRP310"]
    monkeypatch.setenv("HF_HUB_CACHE", os.path.join(fixture, "hf-cache"))
    found = audit([fixture])
    assert _codes(found) == ["DRP510"] and "gpt2" in found[0].message and "hf cache" in found[0].message
