"""The local Hugging Face cache, read as plain files: where a hub id's config.json is, if anywhere.

Why not huggingface_hub's try_to_load_from_cache: importing huggingface_hub costs more than a
whole one-file check (it pulls an HTTP client), and the auditor must never touch the network.
The layout is huggingface_hub's documented one (facts.md, "Loading by name"): `$HF_HUB_CACHE`,
else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`;
`models--{org}--{name}/refs/{revision}` holds a commit hash and the files are
`snapshots/{hash}/{file}`, usually symlinks into `blobs/`. A test compares this reader with
try_to_load_from_cache on generated caches.

Every path is built from a validated hub id and revision (no `..`, no separators), and the file
found must lie inside the cache once links are followed, so a crafted id or link cannot make
the auditor read elsewhere.

Imports inside functions (`sources.text`) are deferred for start-up time: a run that never takes
that path never pays for them.
"""

from __future__ import annotations

import os

from auditor.core.lazy_regex import LazyRegex
from auditor.setup.names import HUB_ID

_REVISION = LazyRegex(r"^[\w.-]{1,128}$")


def cache_root(environ=None) -> str:
    env = os.environ if environ is None else environ
    if env.get("HF_HUB_CACHE"):
        return os.path.expanduser(env["HF_HUB_CACHE"])
    if env.get("HF_HOME"):
        return os.path.join(os.path.expanduser(env["HF_HOME"]), "hub")
    xdg = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "huggingface", "hub")


def _valid(part: str, pattern) -> bool:
    return bool(pattern.match(part)) and ".." not in part


def locate(repo_id: str, filename: str = "config.json", revision: str | None = None,
           root: str | None = None) -> tuple:
    """(path of the cached file or None, why not). Follows try_to_load_from_cache: a revision
    named in refs/ is turned into its commit, a commit must have a snapshot folder."""
    root = cache_root() if root is None else root
    revision = revision or "main"
    if not _valid(repo_id, HUB_ID):
        return None, f"'{repo_id}' is not a hub id"
    if not _valid(revision, _REVISION):
        return None, f"revision '{revision}' is not a plain name or commit"
    repo = os.path.join(root, "models--" + repo_id.replace("/", "--"))
    if not os.path.isdir(repo):
        return None, f"not in the Hugging Face cache ({root})"
    ref_file = os.path.join(repo, "refs", revision)
    commit = revision
    if os.path.lexists(ref_file):
        from auditor.sources.text import FileProblem, read_text

        try:  # the bounded reader: a FIFO or a huge file in refs/ must not hang or flood the run
            commit = read_text(ref_file, 4096).strip()
        except FileProblem as exc:
            return None, f"{ref_file}: {exc}"
        if not _valid(commit, _REVISION):
            return None, f"{ref_file} does not hold a commit hash"
    snapshot = os.path.join(repo, "snapshots", commit)
    if not os.path.isdir(snapshot):
        return None, f"the cache names snapshot {commit[:12]} for {revision}, and it is missing"
    if os.path.exists(os.path.join(repo, ".no_exist", commit, filename)):
        return None, f"the cache records that {repo_id} has no {filename}"
    path = os.path.join(snapshot, filename)
    if os.path.islink(path) and not os.path.exists(path):
        return None, f"{path} is a broken symbolic link"
    if not os.path.isfile(path):
        return None, f"{filename} of {repo_id} is not in the cache"
    real_root = os.path.realpath(root)
    if os.path.commonpath([os.path.realpath(path), real_root]) != real_root:
        return None, f"{path} links outside the cache; not read"
    return path, ""


def state(root: str | None = None) -> list:
    """A cheap fingerprint of what the cache holds (each repo and when its refs last changed),
    so that cached findings are not reused after a model is downloaded or updated."""
    root = cache_root() if root is None else root
    try:
        names = sorted(n for n in os.listdir(root) if n.startswith("models--"))
    except OSError:
        return [root]
    out = [root]
    for name in names:
        try:
            out.append((name, os.stat(os.path.join(root, name, "refs")).st_mtime_ns))
        except OSError:
            out.append((name, None))
    return out
