"""Which torch module classes a file can name: its own, and those of the sibling modules it
imports (`siblings.py`), and what a call to one of them builds.

Shared by the mode flow (a model built from such a class starts in train mode) and by
models.py (does the class have dropout), so neither imports the other.
"""

from __future__ import annotations

import ast
import re

from auditor.checks.code import siblings
from auditor.sources.python_facts import dotted, last_name

MODULE_BASES = re.compile(r"Module$|PreTrainedModel$|Model$|LightningModule$")


def local_module_classes(module) -> dict:
    """name -> ClassDef of the file's classes with an nn.Module-like base, or a torch layer as
    their base (LSGM's `class Conv2D(nn.Conv2d)`: a layer of the file's models like any other)."""
    cached = module.cache.get("module-classes")
    if cached is None:
        cached = {name: cls for name, cls in module.index.classes.items()
                  if any(MODULE_BASES.search(last_name(b) or "") or torch_nn_class(b) for b in cls.bases)}
        module.cache["module-classes"] = cached
    return cached


def torch_nn_class(node) -> bool:
    """`nn.Conv2d`, `torch.nn.Linear`: a class of torch.nn (capitalised), spelled through nn."""
    name = dotted(node) or ""
    owner, _, leaf = name.rpartition(".")
    return owner in ("nn", "torch.nn") and leaf[:1].isupper()


def module_class(module, func, project: bool = False):
    """(defining module, ClassDef) for a callee that names a module class of this file or of
    an imported sibling module (`GPT`, `model_lib.GPT`), else None. `project`: also of the
    project's own package up the tree (siblings.py), for what the class's layers are."""
    if isinstance(func, ast.Name):
        local = local_module_classes(module).get(func.id)
        if local is not None:
            return module, local
        if not func.id[:1].isupper():
            return None  # a function (build_model(...)): no class to look for beside the file
        found = siblings.imported(module, project).lookup(func.id)
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        if not func.attr[:1].isupper():
            return None
        found = siblings.imported(module, project).attribute(func.value.id, func.attr)
    else:
        return None
    if found is None:
        return None
    mod, cls = found
    return found if cls.name in local_module_classes(mod) else None


def imported_names(module) -> set:
    """Every name an import statement of the module binds (no file is read)."""
    found = module.cache.get("imported-names")
    if found is None:
        found = module.cache["imported-names"] = {
            (a.asname or a.name).split(".")[0] for node in module.index.of(ast.Import, ast.ImportFrom) for a in node.names}
    return found


def sibling_function(module, func):
    """(defining module, FunctionDef) for a callee imported from a sibling module, else None."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef)
    if isinstance(func, ast.Name):
        if func.id in module.index.functions:
            return None
        return siblings.imported(module).lookup(func.id, kinds)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return siblings.imported(module).attribute(func.value.id, func.attr, kinds)
    return None


def defines(mod, cls, method: str, seen=None):
    """The def of `method` in cls or a base class of the same module, else None."""
    seen = seen if seen is not None else set()
    if cls.name in seen:
        return None
    seen.add(cls.name)
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == method:
            return node
    for base in cls.bases:
        sub = mod.index.classes.get(last_name(base))
        if sub is not None:
            found = defines(mod, sub, method, seen)
            if found is not None:
                return found
    return None
