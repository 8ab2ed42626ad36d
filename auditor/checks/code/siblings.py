"""The modules of the same package that a script imports, read as syntax trees.

A training script rarely defines its model: `from model import GPT` names a class in a
model.py beside it, and whether GPT has dropout is written there. The eval-mode rules ask
that question, so the modules a file imports from its own directory (or a package folder
inside it) are parsed, never imported, and their top-level classes and functions answer it.
The reach is bounded on purpose: only modules the file imports, only beside it or below it
(a relative import goes one package up at most), at most MAX_MODULES of them per importing
file, none larger than MAX_BYTES. A sibling's own imports are followed the same way, on demand:
model.py's layers often come from a package beside it (StyleGAN2's `from op import
FusedLeakyReLU`, which op/__init__.py re-exports from op/fused_act.py), and whether the model
has dropout is decided there. Only a name a check asks about is followed, so the files read
stay few. A script in examples/ or scripts/ imports the project's own package absolutely
(`from torch_geometric_temporal.nn.recurrent import A3TGCN2`, runnable once the project is
installed), so when the question is whether a model has dropout (`imported(module, project=True)`)
an absolute import whose first part is a package folder (with __init__.py) in an ancestor of
the file resolves there too: the nearest such ancestor, never above the project's
top (a folder with .git, pyproject.toml, setup.py or setup.cfg) nor more than MAX_UP folders up,
and always after the folders beside the file, as Python's own search puts the script's folder
first. A lone module file up there (`utils.py`) is not taken: nothing says it is the one the
script gets. Only that question reaches so far: which calls build a module (and so start in
train mode) stays decided beside the file, since a package's tests would otherwise all become
scripts that build its models and run them without eval(), and the library's own classes
(a vendored transformers' `from_pretrained`, which returns eval mode) would read as new modules. Parsed trees are shared across files of a run (keyed by path, size and modification
time), so a cycle of imports costs nothing, and every file read is recorded so
that the result cache misses when one of them changes (`take_read`).
"""

from __future__ import annotations

import ast
import os

from auditor.sources.python_facts import PyModule, parse

MAX_BYTES = 300_000
MAX_MODULES = 8
MAX_UP = 6  # ancestor folders searched for the project's own package
PROJECT_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg")
_CACHE: dict = {}  # (path, size, mtime_ns) -> PyModule | None
_READ: set = set()  # files read (or looked for) since the last take_read()
_IS_PACKAGE: dict = {}  # (folder, name) -> the folder holding package `name` there ("" if none)
_IS_TOP: dict = {}  # folder -> whether it is a project's top (PROJECT_MARKERS)


class Imported:
    """What one file imports from its package, resolved on demand: a module is read only when
    a name it is imported for is looked up (most names a check asks about are not classes of
    the package). `from m import X` -> X; `import m` / `from . import m` -> m; `from m import *`
    -> any name not found otherwise."""

    __slots__ = ("_names", "_modules", "_stars", "_loaded", "project")

    def __init__(self, project: bool = False):
        self.project = project  # also the project's own package, found up the tree
        self._names = {}    # local name -> (candidate paths, name in that module)
        self._modules = {}  # alias -> candidate paths
        self._stars = []    # candidate paths of star imports
        self._loaded = {}   # candidate paths -> module (or None), at most MAX_MODULES looked up

    def _module(self, paths):
        key = tuple(paths)
        if key in self._loaded:
            return self._loaded[key]
        mod = _load(paths) if len(self._loaded) < MAX_MODULES else None
        self._loaded[key] = mod
        return mod

    def lookup(self, name: str, kinds=(ast.ClassDef,), hops: int = 0):
        """(module, node) of a class (or function) a name denotes here, else None."""
        found = None
        if name in self._names:
            paths, original = self._names[name]
            found = _defined(self._module(paths), original, hops, self.project)
        else:
            for paths in self._stars:
                found = _defined(self._module(paths), name, hops, self.project)
                if found is not None:
                    break
        return found if found is not None and isinstance(found[1], kinds) else None

    def attribute(self, alias: str, name: str, kinds=(ast.ClassDef,)):
        """(module, node) of `alias.name` where alias is an imported sibling module."""
        paths = self._modules.get(alias)
        found = _defined(self._module(paths), name, 0, self.project) if paths else None
        return found if found is not None and isinstance(found[1], kinds) else None


MAX_HOPS = 2  # re-exports followed: a package's __init__.py, and one more


def _defined(mod, name: str, hops: int, project: bool = False):
    """(module, node) where `name` is defined: in `mod` itself, or in the module its
    `from .x import name` re-exports it from (a package's __init__.py)."""
    if mod is None:
        return None
    node = _top_level(mod).get(name)
    if node is not None:
        return mod, node
    if hops >= MAX_HOPS:
        return None
    return imported(mod, project).lookup(name, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef), hops + 1)


def take_read() -> set:
    """The sibling files read since the last call (for the result cache's dependencies)."""
    read = set(_READ)
    _READ.clear()
    return read


def imported(module, project: bool = False) -> Imported:
    """The sibling modules `module` imports (module.cache["path"] is its file); empty when
    the path is not known (a module built in a test). `project`: the project's own package too."""
    slot = "siblings+project" if project else "siblings"
    found = module.cache.get(slot)
    if found is not None:
        return found
    found = module.cache[slot] = Imported(project)
    path = module.cache.get("path")
    if not path:
        return found
    here = os.path.dirname(os.path.abspath(path))
    for node in module.index.of(ast.Import, ast.ImportFrom):
        if isinstance(node, ast.Import):
            for a in node.names:
                found._modules[a.asname or a.name] = _candidates(here, a.name.split("."), 0, project)
            continue
        if node.level > 2:
            continue
        parts = node.module.split(".") if node.module else []
        base = here if node.level <= 1 else os.path.dirname(here)
        target = _candidates(base, parts, node.level, project)
        for a in node.names:
            if a.name == "*":
                if target:
                    found._stars.append(target)
            elif target:
                found._names[a.asname or a.name] = (target, a.name)
                found._modules.setdefault(a.asname or a.name, _candidates(base, parts + [a.name], node.level, project))
            else:  # `from . import model`
                found._modules[a.asname or a.name] = _candidates(base, [a.name], node.level)
    return found


def _candidates(base: str, parts: list, level: int, project: bool = False) -> list:
    """Files an import may name inside `base`: `a.b` -> a/b.py, a/b/__init__.py; an absolute
    import whose first part is the package's own folder name also resolves inside it."""
    if not parts:
        return []
    out = [os.path.join(base, *parts) + ".py", os.path.join(base, *parts, "__init__.py")]
    if level == 0 and len(parts) > 1 and parts[0] == os.path.basename(base):
        out += [os.path.join(base, *parts[1:]) + ".py", os.path.join(base, *parts[1:], "__init__.py")]
    if level == 0 and project:
        home = _package_home(base, parts[0])
        if home:
            out += [os.path.join(home, *parts) + ".py", os.path.join(home, *parts, "__init__.py")]
    return out


def _package_home(base: str, package: str) -> str:
    """The nearest folder above `base` that holds `package` as a package folder (or as
    src/`package`, the src layout), within the project `base` belongs to; else ''. Every import
    of every file asks (torch, numpy, ...), so each folder's answer is kept for the run."""
    if _is_top(base):
        return ""  # examples/ with a setup.py of its own is a project: its parent is not
    current = base
    for _ in range(MAX_UP):
        parent = os.path.dirname(current)
        if parent == current:
            return ""
        current = parent
        found = _holds_package(current, package)
        if found or _is_top(current):
            return found
    return ""


def _holds_package(folder: str, package: str) -> str:
    key = (folder, package)
    found = _IS_PACKAGE.get(key)
    if found is None:
        found = next((home for home in (folder, os.path.join(folder, "src"))
                      if os.path.isfile(os.path.join(home, package, "__init__.py"))), "")
        if len(_IS_PACKAGE) > 4096:
            _IS_PACKAGE.clear()
        _IS_PACKAGE[key] = found
    return found


def _is_top(folder: str) -> bool:
    found = _IS_TOP.get(folder)
    if found is None:
        if len(_IS_TOP) > 4096:
            _IS_TOP.clear()
        found = _IS_TOP[folder] = any(os.path.exists(os.path.join(folder, m)) for m in PROJECT_MARKERS)
    return found


def _load(paths: list):
    for path in paths:
        _READ.add(os.path.normpath(path))
        try:
            st = os.stat(path)
        except OSError:
            continue
        if not os.path.isfile(path) or st.st_size > MAX_BYTES:
            return None
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in _CACHE:
            if len(_CACHE) > 256:
                _CACHE.clear()
            _CACHE[key] = _parse(path)
        return _CACHE[key]
    return None


def _parse(path: str):
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        module = PyModule(parse(text, path), text)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OSError):
        return None
    module.cache["path"] = path
    module.cache["sibling"] = True
    return module


def _top_level(module) -> dict:
    top = module.cache.get("top-level")
    if top is None:
        top = module.cache["top-level"] = {
            n.name: n for n in module.tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))}
    return top
