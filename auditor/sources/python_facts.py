"""The parsed form of one Python file, shared by the reader and every code check.

Each file is parsed once; the tree, a parent map and the line table travel on the Source
(`source.facts[0]`) so that checks can ask structural questions without re-parsing. ast gives
columns as UTF-8 byte offsets within a line, while findings and fixes speak in characters, so
every span goes through `span()`, which converts only lines that are not pure ASCII.
"""

from __future__ import annotations

import ast
import gc
import itertools
import operator
import re
from contextlib import contextmanager

from auditor.core.model import Span

_LINE_END = re.compile(r"\r\n|\r|\n")


@contextmanager
def gc_paused():
    """Parsing and indexing allocate hundreds of thousands of nodes that form no reference
    cycles; the cyclic collector, triggered every few hundred allocations, would traverse the
    growing tree again and again (about two thirds of ast.parse's time on Transformers'
    models/). Reference counting frees the trees, so the collector pauses meanwhile."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def parse(text: str, path: str) -> ast.AST:
    """ast.parse with the cyclic collector paused (raises what ast.parse raises)."""
    with gc_paused():
        return ast.parse(text, filename=path)


class PyModule:
    """A parsed Python file with the helpers checks need to locate and relate nodes."""

    __slots__ = ("tree", "text", "_table", "cache")
    releasable = True  # the engine drops it after the file's own pass (engine.release)

    def __init__(self, tree: ast.AST, text: str):
        self.tree = tree
        self.text = text
        self._table = None  # (line starts, lines), built on the first location asked for
        self.cache = {}  # per-file results shared by the checks (import aliases, call lists)

    @property
    def _lines(self) -> list:
        return (self._table or self._line_table())[1]

    @property
    def _starts(self) -> list:
        return (self._table or self._line_table())[0]

    def _line_table(self) -> tuple:
        """Most files yield no finding and no setting, so the table is built only when one does."""
        text = self.text
        if "\r" not in text:  # the usual case, without a Python step per line
            lines = text.split("\n")
            starts = list(map(operator.add, itertools.accumulate(map(len, lines), initial=0), range(len(lines))))
            self._table = (starts, lines)
            return self._table
        starts = [0]
        lines = []
        pos = 0
        for m in _LINE_END.finditer(text):
            lines.append(text[pos:m.start()])
            pos = m.end()
            starts.append(pos)
        lines.append(text[pos:])
        self._table = (starts, lines)
        return self._table

    def release(self) -> None:
        """Drop the per-file results: some hold the module itself (the mode flow does), and
        without that cycle the tree is freed by reference counting when the engine lets go
        of it, with no collector pass over its nodes (engine._collector_paused)."""
        self.cache.clear()

    # --- locations -------------------------------------------------------------------------
    def char_col(self, line: int, byte_col: int) -> int:
        """ast's byte column on a 1-based line, as a 0-based character column."""
        if line < 1 or line > len(self._lines):
            return byte_col
        s = self._lines[line - 1]
        if s.isascii():
            return byte_col
        return len(s.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))

    def offset(self, line: int, char_col: int) -> int:
        if line < 1:
            return 0
        if line > len(self._starts):
            return len(self.text)
        return min(self._starts[line - 1] + char_col, len(self.text))

    def span(self, node: ast.AST, end_node: ast.AST | None = None) -> Span:
        end_node = end_node or node
        line = node.lineno
        col = self.char_col(line, node.col_offset)
        end_line = getattr(end_node, "end_lineno", None) or line
        end_byte = getattr(end_node, "end_col_offset", None)
        end_col = self.char_col(end_line, end_byte) if end_byte is not None else col
        return Span(line, col + 1, end_line, end_col + 1, self.offset(line, col), self.offset(end_line, end_col))

    def span_at(self, line: int, byte_col: int) -> Span:
        col = self.char_col(line, byte_col)
        start = self.offset(line, col)
        return Span(line, col + 1, line, col + 1, start, start)

    def line_text(self, line: int) -> str:
        return self._lines[line - 1] if 1 <= line <= len(self._lines) else ""

    # --- structure -------------------------------------------------------------------------
    @property
    def index(self) -> "ModuleIndex":
        """The per-module index every code check queries (built once, in one traversal)."""
        idx = self.cache.get("index")
        if idx is None:
            with gc_paused():
                idx = self.cache["index"] = ModuleIndex(self.tree)
        return idx

    def parent(self, node: ast.AST):
        return self.index.parents.get(node)

    def ancestors(self, node: ast.AST):
        p = self.parent(node)
        while p is not None:
            yield p
            p = self.parent(p)

    def enclosing_function(self, node: ast.AST):
        for a in self.ancestors(node):
            if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return a
        return None

    def enclosing_method(self, node: ast.AST):
        """The method (a def directly in a class body) that contains node, else None."""
        fn = self.enclosing_function(node)
        while fn is not None:
            p = self.parent(fn)
            if isinstance(p, ast.ClassDef):
                return fn
            fn = self.enclosing_function(fn)
        return None

    def nodes(self) -> list:
        """Every node of the tree, walked once per file."""
        return self.index.nodes

    def calls(self) -> list:
        return self.index.calls


# Fields that never hold a node worth indexing: names and literals, and the shared singleton
# contexts/operators (one Load() object serves every Name, so a parent map of it means nothing).
_SKIPPED_FIELDS = frozenset({"ctx", "op", "ops", "id", "attr", "arg", "name", "asname", "module", "level",
                             "kind", "type_comment", "is_async", "conversion", "simple", "rest"})
_CHILD_FIELDS = {ast.Constant: ()}  # node class -> its fields that may hold nodes, last first


_LOCATED = (ast.stmt, ast.expr)
_POSITION = operator.attrgetter("lineno", "col_offset")


def _child_fields(cls) -> tuple:
    names = _CHILD_FIELDS.get(cls)
    if names is None:
        names = _CHILD_FIELDS[cls] = tuple(reversed([f for f in cls._fields if f not in _SKIPPED_FIELDS]))
    return names


class ModuleIndex:
    """One traversal of a module, answering what every code check asks: the parent of a node,
    the nodes of a type, the calls by name, the assignments to a name, the functions and
    classes by name. Checks query it instead of walking the tree again (issue #17 item 2):
    walking every node in Python is the main cost of the Python path after ast.parse, so it
    happens once per file, with no generator per node."""

    __slots__ = ("nodes", "parents", "by_type", "calls", "call_names", "calls_by_name", "_assigns", "functions",
                 "classes", "_methods")

    def __init__(self, tree: ast.AST):
        nodes = self.nodes = []     # every node but the context/operator singletons, in pre-order
        parents = self.parents = {}
        by_type = self.by_type = {}  # node class -> its nodes in pre-order
        self.calls_by_name = {}   # last name of the callee -> [Call]
        self._assigns = None      # target as dotted text ("x", "self.model") -> [assigning statement]
        self.functions = {}       # module-level def name -> def
        self.classes = {}         # class name -> ClassDef (first definition)
        self._methods = None      # class name -> {method name: def}, built when asked (the mode flow)
        stack = [tree]
        pop, push, add, fields, node_type = stack.pop, stack.append, nodes.append, _CHILD_FIELDS, ast.AST
        while stack:  # children are pushed last first, so they come off the stack in source order
            node = pop()
            add(node)
            cls = node.__class__
            group = by_type.get(cls)
            if group is None:
                group = by_type[cls] = []
            group.append(node)
            names = fields.get(cls)
            if names is None:
                names = _child_fields(cls)
            for name in names:
                v = getattr(node, name, None)
                if v.__class__ is list:
                    for c in reversed(v):
                        if isinstance(c, node_type):
                            push(c)
                            parents[c] = node
                elif isinstance(v, node_type):
                    push(v)
                    parents[v] = node
        calls = self.calls = by_type.get(ast.Call, [])
        call_names = self.call_names = []  # last_name of each callee, beside calls
        by_name = self.calls_by_name
        attribute, name_node = ast.Attribute, ast.Name
        for call in calls:
            func = call.func
            kind = func.__class__
            name = func.attr if kind is attribute else func.id if kind is name_node else ""
            call_names.append(name)
            group = by_name.get(name)
            if group is None:
                by_name[name] = [call]
            else:
                group.append(call)
        for node in by_type.get(ast.ClassDef, ()):
            self.classes.setdefault(node.name, node)
        for node in getattr(tree, "body", ()):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.setdefault(node.name, node)

    @property
    def assigns(self) -> dict:
        """target as dotted text ("x", "self.model") -> [assigning statement], in source order;
        built when a check first asks."""
        if self._assigns is None:
            assigns = self._assigns = {}
            for node in self.of(*ASSIGNMENTS):
                for name in target_names(node):
                    group = assigns.get(name)
                    if group is None:
                        assigns[name] = [node]
                    else:
                        group.append(node)
        return self._assigns

    @property
    def methods(self) -> dict:
        """class name -> {method name: def} of its first definition's body."""
        if self._methods is None:
            self._methods = {}
            for node in self.by_type.get(ast.ClassDef, ()):
                self._methods.setdefault(node.name, {
                    m.name: m for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))})
        return self._methods

    def of(self, *types) -> list:
        """The nodes of these exact classes, in source order (pre-order for one class; several
        are merged by position, which is pre-order for statements)."""
        if len(types) == 1:
            return self.by_type.get(types[0], [])
        groups = [group for group in map(self.by_type.get, types) if group]
        if len(groups) < 2:
            return list(groups[0]) if groups else []
        found = [n for group in groups for n in group]
        # statements and expressions always carry both positions: the same key, read in C
        found.sort(key=_POSITION if all(issubclass(t, _LOCATED) for t in types) else self.order)
        return found

    def calls_named(self, names) -> list:
        """The calls whose callee's last name is in `names`, in source (pre-)order: most checks
        care about a few callees, and a module has thousands of calls."""
        return [call for call, name in zip(self.calls, self.call_names) if name in names]

    def order(self, node: ast.AST) -> tuple:
        """Source order of a node (statements and expressions alike)."""
        return (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))

    def statement(self, node: ast.AST):
        """The statement that contains node (node itself when it is one)."""
        while node is not None and not isinstance(node, ast.stmt):
            node = self.parents.get(node)
        return node


# --- small helpers over ast nodes ----------------------------------------------------------

ASSIGNMENTS = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)


def target_names(stmt) -> list:
    """The dotted names an assignment binds (`x`, `self.model`; each element of a tuple or
    list target), the keys of ModuleIndex.assigns."""
    names = []
    for t in stmt.targets if stmt.__class__ is ast.Assign else (stmt.target,):
        for leaf in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else (t,)):
            name = leaf.id if leaf.__class__ is ast.Name else dotted(leaf)
            if name:
                names.append(name)
    return names


def walk(root: ast.AST, prune: tuple = ()):
    """Every node under root (root included), like ast.walk but in pre-order and with one
    stack instead of a generator per node, skipping the context/operator singletons. Nodes
    of a `prune` class below root are yielded but not entered."""
    stack = [root]
    pop, push, fields, node_type = stack.pop, stack.append, _CHILD_FIELDS, ast.AST
    while stack:
        node = pop()
        yield node
        if node.__class__ in prune and node is not root:
            continue
        names = fields.get(node.__class__)
        if names is None:
            names = _child_fields(node.__class__)
        for name in names:
            v = getattr(node, name, None)
            if v.__class__ is list:
                for c in reversed(v):
                    if isinstance(c, node_type):
                        push(c)
            elif isinstance(v, node_type):
                push(v)


def imported_from(module, name: str) -> tuple:
    """(module path, original name) a local name is imported as (`from torch_geometric.nn import
    MetaPath2Vec as M` -> ("torch_geometric.nn", "MetaPath2Vec")), else ("", "")."""
    for node in module.index.of(ast.ImportFrom):
        for alias in node.names:
            if node.module and (alias.asname or alias.name) == name:
                return node.module, alias.name
    return "", ""


def dotted(node: ast.AST) -> str:
    """`torch.nn.functional.dropout` for an attribute chain, '' for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        inner = dotted(node.func)
        parts.append(f"{inner}()" if inner else "()")
    else:
        return ""
    return ".".join(reversed(parts))


def last_name(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def kwarg(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw
    return None


def arg_or_kwarg(call: ast.Call, name: str, index: int | None):
    """The expression passed for a parameter, by keyword or by position; None when absent."""
    kw = kwarg(call, name)
    if kw is not None:
        return kw.value
    if index is not None and len(call.args) > index and not any(isinstance(a, ast.Starred) for a in call.args[:index + 1]):
        return call.args[index]
    return None


def has_star_args(call: ast.Call) -> bool:
    return any(isinstance(a, ast.Starred) for a in call.args) or any(kw.arg is None for kw in call.keywords)


def self_attribute(node) -> str:
    """`X` for `self.X`, else ""."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return ""


def self_assignments(scope) -> list:
    """(attribute, value, statement) for every `self.X = value` (annotated too) within scope."""
    found = []
    for n in ast.walk(scope):
        if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None:
            for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                if self_attribute(t):
                    found.append((t.attr, n.value, n))
    return found


def parameters_with_defaults(fn) -> list:
    """(ast.arg, default expression or None) for every named parameter of a function."""
    positional = fn.args.posonlyargs + fn.args.args
    defaults = [None] * (len(positional) - len(fn.args.defaults)) + list(fn.args.defaults)
    return list(zip(positional, defaults)) + list(zip(fn.args.kwonlyargs, fn.args.kw_defaults))


def constant(node):
    """(True, value) for a literal number/str/bool/None (negative numbers included), else (False, None)."""
    if isinstance(node, ast.Constant):
        return True, node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float))
            and not isinstance(node.operand.value, bool)):
        v = node.operand.value
        return True, -v if isinstance(node.op, ast.USub) else v
    return False, None


def is_zero(node) -> bool:
    ok, v = constant(node)
    return ok and not isinstance(v, bool) and isinstance(v, (int, float)) and v == 0


def mentions_training(node) -> bool:
    """True when an expression reads a training flag (self.training, training, is_training...)."""
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and "training" in n.attr.lower():
            return True
        if isinstance(n, ast.Name) and ("training" in n.id.lower() or n.id.lower() in ("train", "is_train")):
            return True
    return False
