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

import errno
import os

from auditor.core.record import Record
from auditor.sources.text import is_data_file

SKIP_DIRS = frozenset({
    ".git", ".hg", ".svn", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox",
    ".venv", "venv", "env", ".env", "node_modules", "site-packages", ".eggs", "build", "dist",
    ".dropout_audit_cache", ".ipynb_checkpoints", "wandb", "mlruns",
})


# Always pruned, even when --exclude replaces the default exclusions (ruff's semantics otherwise):
# walking a VCS store finds nothing but costs a great deal.
VCS_DIRS = frozenset({".git", ".hg", ".svn"})


class Discovery(Record):
    """`missing`: the paths given that do not exist. `skipped`: (path, reason) of the
    directories the walk could not enter, reported as DRP004 so nothing is passed over silently.
    `excluded`: how many given files --force-exclude or the excludes dropped."""

    __slots__ = ("files", "missing", "skipped", "excluded", "data_files")

    def __init__(self, files: list | None = None, missing: list | None = None, skipped: list | None = None,
                 excluded: int = 0, data_files: list | None = None):
        self.files = [] if files is None else files
        self.missing = [] if missing is None else missing
        self.skipped = [] if skipped is None else skipped
        self.excluded = excluded
        self.data_files = [] if data_files is None else data_files  # passed over by name (tokenizer.json)


def _spec(lines):
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


class _Ignores:
    """Stack of .gitignore specs, one per directory level, plus the user's excludes (relative
    to `root`: the walked path, or the folder the excludes were given for)."""

    def __init__(self, excludes, root: str):
        self.root = root
        self.exclude = (excludes if hasattr(excludes, "match_file") else _spec(excludes)) if excludes else None
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


def discover(paths, suffixes, excludes=(), respect_gitignore: bool = True, exclude_root: str | None = None,
             skip_dirs=SKIP_DIRS, force_exclude: bool = False) -> Discovery:
    """excludes: gitignore-style patterns, relative to exclude_root (default: each walked path).
    skip_dirs: directory names never entered (the default exclusions; --exclude replaces them).
    force_exclude: the excludes apply to paths named on the command line too (ruff's
    --force-exclude, for pre-commit, which passes every staged file)."""
    result = Discovery()
    seen = set()
    spec = _spec(list(excludes)) if excludes and exclude_root is not None else None
    for given in paths:
        if force_exclude and spec is not None and _Ignores(spec, exclude_root).ignored(given, os.path.isdir(given)):
            result.excluded += 1
            continue
        # A broken link, a link loop, a FIFO or a device named on the command line exists as a
        # name: it goes to the reader, which reports it as a finding instead of a usage error.
        # So does a path that cannot even be looked at (a parent folder without search
        # permission): the reader says "Permission denied" at the path, and the run goes on.
        named_only = _named(given) and not os.path.isdir(given)
        if os.path.isfile(given) or named_only:
            # The same file named twice, or two ways (`bert ./bert/config.json`), is one file.
            key = os.path.normpath(given)
            if key not in seen:
                seen.add(key)
                result.files.append(given)
            continue
        if not os.path.isdir(given):
            result.missing.append(given)
            continue
        walk_root = given if exclude_root is None else exclude_root
        for path in _walk(given, suffixes, spec if spec is not None else list(excludes), respect_gitignore,
                          walk_root, skip_dirs, result.skipped, result.data_files):
            key = os.path.normpath(path)
            if key not in seen:
                seen.add(key)
                result.files.append(path)
    return result


def _named(path: str) -> bool:
    """Whether the name exists or cannot be told not to: only "no such file" means missing."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        return not isinstance(exc, ValueError) and exc.errno != errno.ENOTDIR
    return True


def _walk(top: str, suffixes, excludes, respect_gitignore: bool, exclude_root: str | None = None,
          skip_dirs=SKIP_DIRS, skipped: list | None = None, data_files: list | None = None):
    ignores = _Ignores(excludes, top if exclude_root is None else exclude_root)
    stack = [top]
    while stack:
        directory = stack.pop()
        ignores.pop_to(directory)
        if respect_gitignore:
            ignores.push(directory)
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if skipped is not None:
                skipped.append((_clean(directory), f"skipped: cannot read directory: {exc.strerror or exc}"))
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
                    if entry.name in VCS_DIRS or entry.name in skip_dirs or \
                            (skip_dirs is SKIP_DIRS and entry.name.endswith(".egg-info")):
                        continue
                    if not ignores.ignored(entry.path, True):
                        subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    if entry.name.lower().endswith(suffixes) and not ignores.ignored(entry.path, False):
                        if not is_data_file(entry.name):
                            yield _clean(entry.path)
                        elif data_files is not None:
                            data_files.append(_clean(entry.path))
            except OSError:
                continue
        stack.extend(reversed(subdirs))


def _clean(path: str) -> str:
    return path[2:] if path.startswith("./") else path
