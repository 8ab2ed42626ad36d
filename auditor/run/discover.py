"""Find the files to audit under the given paths.

Explicit files are always audited (a pre-commit hook passes exactly the staged files);
directories are walked in sorted order, pruning VCS folders, virtualenvs and caches,
honouring .gitignore files (with pathspec's git-wildmatch, the maintained implementation of
git's rules) and the configured excludes. Symlinks are never followed: a link can point
outside the tree or into a loop, and a linter must not wander there.

Imports inside functions (`pathspec`) are deferred for start-up time: a run that never takes
that path never pays for them.
"""

from __future__ import annotations

import os

from auditor.core.record import Record

SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox",
    ".venv", "venv", "env", ".env", "node_modules", "site-packages", ".eggs", "build", "dist",
    ".dropout_audit_cache", ".ipynb_checkpoints", "wandb", "mlruns",
})


class Discovery(Record):
    """`missing`: the paths given that do not exist."""

    __slots__ = ("files", "missing")

    def __init__(self, files: list | None = None, missing: list | None = None):
        self.files = [] if files is None else files
        self.missing = [] if missing is None else missing


def _spec(lines):
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


class _Ignores:
    """Stack of .gitignore specs, one per directory level, plus the user's excludes."""

    def __init__(self, excludes, root: str):
        self.root = root
        self.exclude = _spec(excludes) if excludes else None
        self.levels = []  # (dir, spec)

    def push(self, directory: str) -> None:
        path = os.path.join(directory, ".gitignore")
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                lines = fh.read().splitlines()
        except OSError:
            return
        if lines:
            self.levels.append((directory, _spec(lines)))

    def pop_to(self, directory: str) -> None:
        while self.levels and not _is_within(directory, self.levels[-1][0]):
            self.levels.pop()

    def ignored(self, path: str, is_dir: bool) -> bool:
        rel_root = os.path.relpath(path, self.root).replace(os.sep, "/")
        if self.exclude is not None and (self.exclude.match_file(rel_root) or
                                         (is_dir and self.exclude.match_file(rel_root + "/"))):
            return True
        for base, spec in self.levels:
            rel = os.path.relpath(path, base).replace(os.sep, "/")
            if spec.match_file(rel) or (is_dir and spec.match_file(rel + "/")):
                return True
        return False


def _is_within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def discover(paths, suffixes, excludes=(), respect_gitignore: bool = True) -> Discovery:
    result = Discovery()
    seen = set()
    for given in paths:
        # A broken link, a link loop, a FIFO or a device named on the command line exists as a
        # name: it goes to the reader, which reports it as a finding instead of a usage error.
        named_only = os.path.lexists(given) and not os.path.isdir(given)
        if os.path.isfile(given) or named_only:
            if given not in seen:
                seen.add(given)
                result.files.append(given)
            continue
        if not os.path.isdir(given):
            result.missing.append(given)
            continue
        for path in _walk(given, suffixes, excludes, respect_gitignore):
            if path not in seen:
                seen.add(path)
                result.files.append(path)
    return result


def _walk(top: str, suffixes, excludes, respect_gitignore: bool):
    ignores = _Ignores(list(excludes), top)
    stack = [top]
    while stack:
        directory = stack.pop()
        ignores.pop_to(directory)
        if respect_gitignore:
            ignores.push(directory)
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_symlink():
                    # Links are not followed; a dangling one is still worth a one-line skip
                    # reason, because the config it names does not exist.
                    if entry.name.lower().endswith(suffixes) and not os.path.exists(entry.path) \
                            and not ignores.ignored(entry.path, False):
                        yield _clean(entry.path)
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if entry.name in SKIP_DIRS or entry.name.endswith(".egg-info"):
                        continue
                    if not ignores.ignored(entry.path, True):
                        subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    if entry.name.lower().endswith(suffixes) and not ignores.ignored(entry.path, False):
                        yield _clean(entry.path)
            except OSError:
                continue
        stack.extend(reversed(subdirs))


def _clean(path: str) -> str:
    return path[2:] if path.startswith("./") else path
