"""The layout is the pipeline (ARCHITECTURE.md): folders import one way only, and no module
imports itself back through another. Every import counts, function-local ones included: they
are kept for start-up time, but they are real dependencies."""

from __future__ import annotations

import ast
import os

from tests.conftest import REPO

PACKAGE = os.path.join(REPO, "auditor")

# Each folder may import the folders listed for it (and itself); anything else is upward.
# core is the ground floor; generate (the data generators) may use everything.
ALLOWED = {
    "core": set(),
    "knowledge": {"core"},
    "sources": {"core", "knowledge"},
    "setup": {"core", "knowledge", "sources"},
    "checks": {"core", "knowledge", "sources", "setup"},
    "report": {"core", "knowledge", "sources"},
    "run": {"core", "knowledge", "sources", "setup", "checks", "report"},
    "probe": {"core", "knowledge", "sources", "setup", "checks", "report", "run"},
    "cli": {"core", "knowledge", "sources", "setup", "checks", "report", "run", "probe", "server"},
    # the run-time guards (issue #30): the probe's instrument, checks and rank helpers, never the
    # static path's stages, and nothing imports them back (the static path never pays for torch)
    "runtime": {"core", "knowledge", "probe"},
    # the language server (pygls) sits beside cli: it uses the command line's settings and file
    # choice; only the click command imports it, inside the function (test below)
    "server": {"core", "knowledge", "sources", "setup", "checks", "report", "run", "cli"},
    "generate": {"core", "knowledge", "sources", "setup", "checks", "report", "run", "probe"},
    "top": {"cli"},  # auditor/__init__.py and __main__.py
}


def _modules() -> dict:
    found = {}
    for directory, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


def _imports(modules: dict) -> dict:
    """module -> the project modules it imports anywhere in its body."""
    edges = {}
    for name, path in modules.items():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("auditor"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("auditor."))
        assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree)), f"{name}: relative import"
        edges[name] = {t for t in targets if t in modules and t not in (name, "auditor")}
    return edges


def _folder(module: str, modules: dict) -> str:
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and not modules[module].endswith("__init__.py")):
        return "top"
    return parts[1]


def test_every_module_lives_in_a_known_folder():
    modules = _modules()
    folders = {_folder(m, modules) for m in modules}
    assert folders <= set(ALLOWED), sorted(folders - set(ALLOWED))
    top = sorted(m for m in modules if _folder(m, modules) == "top")
    assert top == ["auditor", "auditor.__main__"], top


def test_folders_import_downward_only():
    modules = _modules()
    upward = []
    for module, targets in _imports(modules).items():
        here = _folder(module, modules)
        for target in targets:
            there = _folder(target, modules)
            if there != here and there not in ALLOWED[here]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports against the pipeline's direction:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    edges = _imports(_modules())
    # Tarjan's strongly connected components, iteratively: any component of two or more is a circle.
    index, low, on_stack, stack, circles = {}, {}, set(), [], []
    counter = [0]

    def visit(root):
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        circles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert not circles, f"import circles: {circles}"


def test_nothing_but_the_runtime_imports_the_runtime():
    """`auditor.runtime` is the user's one-line guard: no command, and no stage of the static
    path, may depend on it (ALLOWED lists it for nobody; this says so in one place)."""
    modules = _modules()
    assert "auditor.runtime.guard" in modules
    importers = sorted(m for m, targets in _imports(modules).items()
                       if _folder(m, modules) != "runtime" and any(t.startswith("auditor.runtime") for t in targets))
    assert not importers, importers


def test_the_walk_sees_function_local_imports():
    """The check above is only as good as its walk: a function-local import counts."""
    edges = _imports(_modules())
    assert "auditor.cli.commands" in edges["auditor.cli.launch"]  # imported inside main()
    assert "auditor.run.parallel" in edges["auditor.run.engine"]  # imported inside check_paths()


def test_only_the_click_command_imports_the_server_and_only_when_run():
    """pygls is the [server] extra: no other module may reach it, and the command line reaches
    it only inside the `server` command."""
    modules = _modules()
    importers = sorted(m for m, targets in _imports(modules).items()
                       if _folder(m, modules) != "server" and any(_folder(t, modules) == "server" for t in targets))
    assert importers == ["auditor.cli.commands"], importers
    with open(modules["auditor.cli.commands"], encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any((getattr(n, "module", "") or "").startswith("auditor.server") for n in top)


def test_no_private_name_crosses_a_module_border():
    """What a module shares is its public face: no `from auditor.x import _name`, no `x._name`."""
    modules = _modules()
    crossings = []
    for name, path in modules.items():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        bound = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("auditor"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    if sub in modules:
                        bound[alias.asname or alias.name] = sub
                    elif alias.name.startswith("_") and not alias.name.startswith("__"):
                        crossings.append(f"{name}: from {node.module} import {alias.name}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                crossings.append(f"{name}: {node.value.id}.{node.attr}")
    assert not crossings, "\n".join(sorted(set(crossings)))


def test_deferred_imports_say_why():
    """A function-local import hides a dependency; the module's docstring says it is there for
    start-up time, once, so a reader knows the real direction is still an import."""
    silent = []
    for name, path in _modules().items():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        deferred = any(isinstance(n, (ast.Import, ast.ImportFrom))
                       for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for n in ast.walk(fn))
        if deferred and "start-up" not in (ast.get_docstring(tree) or ""):
            silent.append(name)
    assert not silent, silent
