"""The links a Python script names: `from_pretrained("./dir")`, `save_pretrained("dir")`,
HfArgumentParser's `parse_yaml_file("x.yaml")` (see links.py for the kinds).

Apart from links.py (its vocabulary is link.py) because it needs the AST helpers, which a check of recipes and configs
never imports (tests/test_perf_imports.py); links.of_source imports it for a Python source.

Imports inside functions (`setup.hfargs`) are deferred for start-up time: a run that never takes
that path never pays for them.
"""

from __future__ import annotations

import ast
import os

from auditor.setup.link import HFARGS_FILE, MODEL_PATH, SAVED_ADAPTER, Link, locate
from auditor.sources.python_facts import constant, dotted, kwarg, last_name

_MODEL_CALLS = frozenset({"from_pretrained", "from_config"})
_SAVE_CALLS = frozenset({"save_pretrained", "save_model"})
_LINK_CALLS = _MODEL_CALLS | _SAVE_CALLS


def _literal_path(node, module) -> tuple:
    """(text, ok): a literal string, a module constant holding one, or os.path.join / `/`
    of literals. ok=False means the path is built at run time."""
    ok, value = constant(node)
    if ok:
        return (value, True) if isinstance(value, str) else ("", False)
    if isinstance(node, ast.Name):
        consts = module.cache.get("str_constants")
        if consts is None:
            consts = {}
            for stmt in getattr(module.tree, "body", []):
                if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                    name = stmt.targets[0].id
                    good, v = constant(stmt.value)
                    consts[name] = v if good and isinstance(v, str) and name not in consts else None
            module.cache["str_constants"] = consts
        value = consts.get(node.id)
        return (value, True) if value else ("", False)
    if isinstance(node, ast.Call) and dotted(node.func) in ("os.path.join", "path.join") and node.args:
        parts = [_literal_path(a, module) for a in node.args]
        if all(ok for _, ok in parts):
            return os.path.join(*[p for p, _ in parts]), True
    return "", False


def _looks_like_path(text: str) -> bool:
    return text.startswith(("./", "../", "/", "~")) or text in (".", "..")


def from_python(src, module, root: str) -> list:
    from auditor.setup import hfargs

    out = []
    for call in module.index.calls_named(_LINK_CALLS):
        name = last_name(call.func)
        if name in _MODEL_CALLS:
            node = _path_argument(call, "pretrained_model_name_or_path", "config")
            if node is None:
                continue
            text, ok = _literal_path(node, module)
            if ok and not text:
                continue
            link = Link(MODEL_PATH, src.path, module.span(node), text, via=dotted(call.func) or name)
            link.detail = {kw.arg: kw.value for kw in call.keywords if kw.arg}
            if not ok:
                if _runtime(node):
                    link.reason = "run-time"
                    out.append(link)
                continue
            locate(link, root, "config.json")
            # A name that is not written as a path is a hub id unless that directory exists
            # locally (Transformers checks os.path.isdir first): only then is it a link.
            if _looks_like_path(text) or link.exists:
                out.append(link)
        elif name in _SAVE_CALLS:
            node = _path_argument(call, "save_directory", "output_dir")
            if node is None:
                continue
            text, ok = _literal_path(node, module)
            link = Link(SAVED_ADAPTER, src.path, module.span(node), text, via=name)
            if not ok:
                link.reason = "run-time"
            else:
                locate(link, root, "adapter_config.json")
            out.append(link)
    for use in hfargs.parser_uses(module):
        for _call, fmt, node, allow in use.files:
            text, ok = _literal_path(node, module)
            link = Link(HFARGS_FILE, src.path, module.span(node), text, via=f"parse_{fmt}_file", detail=(use, allow))
            if not ok:
                link.reason = "run-time"
            else:
                locate(link, root)
            out.append(link)
    return out


def _path_argument(call, *names):
    """The path a load or save call names: its first argument, else the first keyword given."""
    if call.args:
        return call.args[0]
    return next((kw.value for name in names for kw in [kwarg(call, name)] if kw is not None), None)


def _runtime(node) -> bool:
    """A path read from the environment, argv or an f-string: an edge that cannot be followed."""
    for n in ast.walk(node):
        if isinstance(n, ast.JoinedStr):
            return True
        d = dotted(n) if isinstance(n, (ast.Attribute, ast.Call)) else ""
        if d.startswith(("os.environ", "os.getenv", "sys.argv")) or "environ" in d:
            return True
    return False
