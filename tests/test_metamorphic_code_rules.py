"""Metamorphic tests of every code rule (issue #26): each rule's documented bad and good
examples, rewritten the ways real code is shaped, must keep their verdict (bad fires
somewhere, good stays silent).

Variants (each a semantics-preserving rewrite of the example, done on its syntax tree):
- main:     the top-level statements move into `def main()` called under
            `if __name__ == "__main__"` (names the module's functions read are declared global);
- method:   the same statements move into a method `Runner.run(self)`, called at the end;
- rename:   every variable the example binds gets another name (`model` -> `model_v2`);
- split:    classes and functions go to `lib.py`, the script imports them with `from lib import *`
            (not applicable when a function reads the script's globals: that would change meaning);
- notebook: the code becomes a two-cell notebook;
- trainer:  `trainer = Trainer(model=<model>, args=args)` after the model is bound;
- prepare:  `<model> = accelerator.prepare(<model>)` after the model is bound.
A variant that leaves the text unchanged, or that needs what the example does not have (no
top-level statement, no model binding), is not applicable and not counted.

The fraction of applicable variants that hold must be at least MIN_HOLDING; those a rule
cannot hold are listed in KNOWN with the reason, marked xfail (strict: a KNOWN entry that
starts holding fails), and named in the rule's `why`.
"""

from __future__ import annotations

import ast
import copy
import functools
import json
import os
import re
import tempfile

import pytest

from auditor.core import catalogue
from tests.conftest import audit, write_files

MIN_HOLDING = 0.95
VARIANTS = ("main", "method", "rename", "split", "notebook", "trainer", "prepare")

# (rule, bad|good, example index, variant) -> why the rule cannot hold it.
KNOWN = {
}


def _code_rules():
    import auditor.checks.code  # noqa: F401  (registers the real primitives)
    from auditor.checks import CHECKS, load_all

    load_all()
    names = {name for name, (_, fn) in CHECKS.items() if fn.__module__.startswith("auditor.checks.code.")}
    return [r for r in catalogue.load() if r.check in names]


RULES = _code_rules()


# --- the rewrites ---------------------------------------------------------------------------------

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_IMPORTS = (ast.Import, ast.ImportFrom)


def _parts(tree):
    imports = [s for s in tree.body if isinstance(s, _IMPORTS)]
    defs = [s for s in tree.body if isinstance(s, _DEFS)]
    stmts = [s for s in tree.body if not isinstance(s, _IMPORTS + _DEFS)]
    return imports, defs, stmts


def _stored(nodes) -> set:
    return {n.id for s in nodes for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _read_by_defs(defs) -> set:
    return {n.id for s in defs for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _body_with_globals(stmts, defs):
    shared = sorted(_stored(stmts) & _read_by_defs(defs))
    return ([ast.Global(names=shared)] if shared else []) + stmts


def _main(tree):
    imports, defs, stmts = _parts(tree)
    if not stmts:
        return None
    main = ast.parse("def main():\n    pass\n").body[0]
    main.body = _body_with_globals(stmts, defs)
    guard = ast.parse('if __name__ == "__main__":\n    main()\n').body
    return [("script.py", ast.Module(body=imports + defs + [main] + guard, type_ignores=[]))]


def _method(tree):
    imports, defs, stmts = _parts(tree)
    if not stmts:
        return None
    runner = ast.parse("class Runner:\n    def run(self):\n        pass\n").body[0]
    runner.body[0].body = _body_with_globals(stmts, defs)
    call = ast.parse("Runner().run()\n").body
    return [("script.py", ast.Module(body=imports + defs + [runner] + call, type_ignores=[]))]


class _Renamer(ast.NodeTransformer):
    def __init__(self, names):
        self.names = names

    def visit_Name(self, node):
        if node.id in self.names:
            node.id = self.names[node.id]
        return node

    def visit_Global(self, node):
        node.names = [self.names.get(n, n) for n in node.names]
        return node


def _rename(tree):
    fields = {n.id for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for s in c.body
              for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
              and not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    bound = _stored([tree]) - fields  # a class body binds attributes, not variables
    fixed = {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}  # parameters (keywords may name them)
    fixed |= {n.name for n in ast.walk(tree) if isinstance(n, _DEFS)}
    fixed |= {(a.asname or a.name).split(".")[0] for n in ast.walk(tree) if isinstance(n, _IMPORTS) for a in n.names}
    names = {n: f"{n}_v2" for n in bound - fixed - {"_", "__name__"}}
    if not names:
        return None
    return [("script.py", _Renamer(names).visit(tree))]


def _split(tree):
    imports, defs, stmts = _parts(tree)
    if not defs or not stmts or _stored(stmts) & _read_by_defs(defs):
        return None  # functions reading the script's globals would read lib's instead
    star = ast.parse("from lib import *\n").body
    return [("lib.py", ast.Module(body=copy.deepcopy(imports) + defs, type_ignores=[])),
            ("script.py", ast.Module(body=imports + star + stmts, type_ignores=[]))]


def _notebook(tree):
    body = tree.body
    if len(body) < 2:
        return None
    half = max(1, len(body) // 2)
    cells = [ast.unparse(ast.Module(body=body[:half], type_ignores=[])),
             ast.unparse(ast.Module(body=body[half:], type_ignores=[]))]
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": c.splitlines(True)} for c in cells],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return [("notebook.ipynb", json.dumps(nb, indent=1))]


_MODEL = re.compile(r"model|net$|^net|policy|gpt|bert|llm|classifier", re.I)


def _model_binding(tree):
    for i, stmt in enumerate(tree.body):
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Call) and _MODEL.search(stmt.targets[0].id)
                and not re.search(r"optim|loader|trainer|tokenizer", stmt.targets[0].id)):
            return i, stmt.targets[0].id
    return None


def _insert_after_model(tree, code):
    found = _model_binding(tree)
    if found is None:
        return None
    i, name = found
    tree.body[i + 1:i + 1] = ast.parse(code.format(model=name)).body
    return [("script.py", tree)]


def _trainer(tree):
    return _insert_after_model(tree, "from transformers import Trainer\ntrainer = Trainer(model={model}, args=training_args)\n")


def _prepare(tree):
    return _insert_after_model(tree, "from accelerate import Accelerator\naccelerator = Accelerator()\n"
                                     "{model} = accelerator.prepare({model})\n")


_REWRITES = {"main": _main, "method": _method, "rename": _rename, "split": _split, "notebook": _notebook,
             "trainer": _trainer, "prepare": _prepare}


def variant(text: str, name: str):
    """[(file name, text)] of the example rewritten, or None when the rewrite does not apply."""
    tree = ast.parse(text)
    files = _REWRITES[name](tree)
    if files is None:
        return None
    out = [(f, t if isinstance(t, str) else ast.unparse(ast.fix_missing_locations(t)) + "\n") for f, t in files]
    if len(out) == 1 and out[0][1].strip() == ast.unparse(ast.parse(text)).strip():
        return None
    return out


# --- running them --------------------------------------------------------------------------------

def _cases():
    for rule in RULES:
        for kind in ("bad", "good"):
            for i, ex in enumerate(rule.examples.get(kind) or []):
                if ex.get("files") or not ex.get("file", "").endswith(".py"):
                    continue
                for v in VARIANTS:
                    yield rule, kind, i, ex, v


def _fires(rule, files) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        write_files(tmp, files)
        return any(f.code == rule.code for f in audit([tmp], select=(rule.code,)))


@functools.lru_cache(maxsize=1)
def results() -> dict:
    """(rule, kind, index, variant) -> True (holds) / False (does not); absent: not applicable."""
    out = {}
    for rule, kind, i, ex, v in _cases():
        files = variant(ex["text"], v)
        if files is None:
            continue
        out[(rule.code, kind, i, v)] = _fires(rule, files) == (kind == "bad")
    return out


def _params():
    for rule, kind, i, ex, v in _cases():
        if variant(ex["text"], v) is None:
            continue  # not applicable: not a test
        key = (rule.code, kind, i, v)
        marks = [pytest.mark.xfail(reason=KNOWN[key], strict=True)] if key in KNOWN else []
        yield pytest.param(key, id=f"{rule.code}-{kind}-{i}-{v}", marks=marks)


@pytest.mark.parametrize("key", list(_params()))
def test_variant_keeps_the_verdict(key):
    held = results()[key]
    assert held, f"{key[0]} {key[1]} example {key[2]} loses its verdict when rewritten as '{key[3]}'"


def test_the_fraction_that_holds(capsys):
    found = results()
    holding = sum(found.values())
    fraction = holding / len(found)
    failing = sorted(k for k, held in found.items() if not held)
    with capsys.disabled():
        print(f"\nmetamorphic variants holding: {holding}/{len(found)} = {fraction:.3f} "
              f"({len(RULES)} code rules); not holding: {failing}")
    assert len(found) >= 100  # the suite must exercise the rules, not skip them
    assert fraction >= MIN_HOLDING
    assert set(failing) == set(KNOWN), "KNOWN must list exactly the variants that do not hold"


def test_each_known_variant_is_named_in_its_rule_doc():
    by_code = {r.code: r for r in RULES}
    for code, _kind, _i, v in KNOWN:
        assert f"`{v}`" in by_code[code].why, f"{code}'s why must say why the '{v}' variant cannot hold"


def test_rewrites_preserve_the_code_they_move():
    """The rewrites on a small script: the statements survive and parse."""
    text = "import torch\nclass Net(torch.nn.Module):\n    pass\nmodel = Net()\nout = model(x)\n"
    for v in VARIANTS:
        files = variant(text, v)
        assert files is not None, v
        for name, body in files:
            if name.endswith(".py"):
                ast.parse(body)
            else:
                assert "model" in "".join(json.loads(body)["cells"][1]["source"]) or v == "notebook"
    assert "model_v2 = Net()" in variant(text, "rename")[0][1]
    assert 'if __name__ == "__main__"' in variant(text, "main")[0][1].replace("'", '"')
    assert os.path.basename(variant(text, "split")[0][0]) == "lib.py"
