"""Train/eval mode flow through one function, for the eval-mode rules.

Which mode a model is in at a call depends on the path taken to it, not on which switch is
written nearest above it: a train() in the other branch of an if, a helper that always calls
eval() but train() only sometimes, an early return, a chained `model.to(device).train()`. So
each function body is interpreted once over a small abstract state: for every model (keyed by
its name, `self.model` style attributes included) the set of (mode, switching call) pairs that
can reach the current point, where the pseudo-mode "entry" means "whatever it was when the
function started". Branches join by union, loops run twice (the second pass is the next
iteration), try/finally and with-blocks are followed, return/raise end a path. Calls to
functions and methods of the same module apply that function's summary (its effect on its
parameters and on `self.*`), one level deep, which is what a linter can know without
guessing. Every call node keeps the union of the states seen on reaching it, so a check can
ask "may this model be in train mode here, and because of which call?" and cite that call.
"""

from __future__ import annotations

import ast

from auditor.sources.python_facts import arg_or_kwarg, constant, last_name

ENTRY = ("entry", None)
# Methods that return the module itself: `model.to(device).train()` switches `model`.
_SELF_RETURNING = frozenset({"to", "cuda", "cpu", "half", "float", "bfloat16", "double", "train", "eval",
                             "requires_grad_", "module", "requires_grad"})
_UNWRAP = frozenset({"unwrap_model", "unwrap", "get_base_model", "deepcopy"})
_MODULE_ITERS = frozenset({"modules", "named_modules", "children", "named_children"})


def receiver_key(node) -> str:
    """The model a receiver expression denotes: `model.to(d)` -> 'model', `self.model.module`
    -> 'self.model', `accelerator.unwrap_model(model)` -> 'model'; '' when it is no name."""
    while True:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _SELF_RETURNING:
                node = func.value
                continue
            if last_name(func) in _UNWRAP and node.args:
                node = node.args[0]
                continue
            return ""
        if isinstance(node, ast.Attribute) and node.attr == "module":
            node = node.value
            continue
        break
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    parts.append(node.id)
    return ".".join(reversed(parts))


_SWITCHES = frozenset({"for_inference", "for_training", "eval", "train"})  # the callees toggle() knows


def toggle(call):
    """('train'|'eval'|'unknown', receiver expression) when a call switches a module's mode."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr in ("for_inference", "for_training") and call.args:  # unsloth's switches
        return ("eval" if func.attr == "for_inference" else "train"), call.args[0]
    if func.attr == "eval" and not call.args and not call.keywords:
        return "eval", func.value
    if func.attr == "train":
        arg = arg_or_kwarg(call, "mode", 0)
        if arg is None:
            return "train", func.value
        ok, value = constant(arg)
        if ok and isinstance(value, bool):
            return ("train" if value else "eval"), func.value
        if ok:
            return None  # train(0.5), train("data"): not nn.Module.train
        return "unknown", func.value
    return None


class Flow:
    """The mode analysis of one module: states at calls, and summaries of its functions."""

    def __init__(self, module):
        self.module = module
        self.index = module.index
        self.at = {}          # call node -> {key: frozenset of (mode, node)}
        self.idle = False     # no switching call in the module: every state is empty
        self._summaries = {}
        self._depth = 0
        self._loops = []
        self._returns = None
        self._module_loops = {}  # loop variable name -> receiver key of `for m in X.modules()`

    # --- running ---------------------------------------------------------------------------
    def run_all(self):
        """Interpret the module body and every function body (each from an unknown entry)."""
        for body in self.bodies():
            self.run(body)
        return self

    def bodies(self):
        yield self.module.tree.body
        for node in self.index.nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield node.body

    def run(self, body, state=None):
        saved = self._returns, self._loops
        self._returns, self._loops = [], []
        end = self._block(body, dict(state or {}))
        exits = self._returns + ([end] if end is not None else [])
        self._returns, self._loops = saved
        return _join_all(exits)

    # --- statements ------------------------------------------------------------------------
    def _block(self, stmts, state):
        for stmt in stmts:
            if state is None:
                return None
            state = self._stmt(stmt, state)
        return state

    def _stmt(self, stmt, state):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for d in stmt.decorator_list:
                self._expr(d, state)
            return state
        if isinstance(stmt, ast.If):
            self._expr(stmt.test, state)
            return _join(self._block(stmt.body, dict(state)), self._block(stmt.orelse, dict(state)))
        if isinstance(stmt, ast.Match):
            self._expr(stmt.subject, state)
            ends = [self._block(c.body, dict(state)) for c in stmt.cases]
            if not any(isinstance(c.pattern, ast.MatchAs) and c.pattern.pattern is None for c in stmt.cases):
                ends.append(state)
            return _join_all(ends)
        if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
            return self._loop(stmt, state)
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                self._expr(item.context_expr, state)
            return self._block(stmt.body, state)
        if isinstance(stmt, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            body_end = self._block(stmt.body, dict(state))
            after = _join(self._block(stmt.orelse, dict(body_end)) if body_end is not None else None, None)
            # a handler may start anywhere in the body: from the entry or from its end
            handler_in = _join(state, body_end)
            ends = [after] + [self._block(h.body, dict(handler_in)) for h in stmt.handlers]
            joined = _join_all(ends)
            if stmt.finalbody:
                final_in = joined if joined is not None else handler_in
                final_end = self._block(stmt.finalbody, dict(final_in))
                return final_end if joined is not None else None
            return joined
        if isinstance(stmt, ast.Return):
            if stmt.value is not None:
                self._expr(stmt.value, state)
            self._returns.append(state)
            return None
        if isinstance(stmt, ast.Raise):
            if stmt.exc is not None:
                self._expr(stmt.exc, state)
            return None
        if isinstance(stmt, (ast.Break, ast.Continue)):
            if self._loops:
                self._loops[-1][type(stmt).__name__].append(state)
            return None
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.expr):
                self._expr(child, state)
        return state

    def _loop(self, stmt, state):
        head = stmt.test if isinstance(stmt, ast.While) else stmt.iter
        self._expr(head, state)
        if isinstance(stmt, (ast.For, ast.AsyncFor)) and isinstance(stmt.target, ast.Name):
            it = stmt.iter
            if isinstance(it, ast.Call) and last_name(it.func) in _MODULE_ITERS and isinstance(it.func, ast.Attribute):
                self._module_loops[stmt.target.id] = receiver_key(it.func.value)
        current = state
        breaks = []
        for _ in range(2):  # the second pass is the next iteration
            self._loops.append({"Break": [], "Continue": []})
            end = self._block(stmt.body, dict(current))
            jumps = self._loops.pop()
            current = _join_all([state, end] + jumps["Continue"])  # break leaves: not the next iteration
            breaks = jumps["Break"]
        if stmt.orelse:
            current = self._block(stmt.orelse, current) if current is not None else None
        return _join_all([current] + breaks)

    # --- expressions -----------------------------------------------------------------------
    def _expr(self, node, state):
        """Visit the calls of an expression in evaluation order (arguments before the call)."""
        if isinstance(node, (ast.Lambda,)):
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.expr, ast.comprehension, ast.keyword)):
                self._expr(child, state)
        if isinstance(node, ast.Call):
            self._call(node, state)

    def _call(self, call, state):
        seen = self.at.get(call)
        snapshot = {k: frozenset(v) for k, v in state.items()}
        if seen is None:
            self.at[call] = snapshot
        else:
            for k in set(seen) | set(snapshot):
                seen[k] = seen.get(k, frozenset({ENTRY})) | snapshot.get(k, frozenset({ENTRY}))
        t = toggle(call)
        if t is not None:
            kind, recv = t
            key = receiver_key(recv)
            if not key:
                return
            if key in self._module_loops and kind == "train":
                # `for m in model.modules(): m.train()` (for Dropout modules): Monte-Carlo dropout on
                owner = self._module_loops[key]
                if owner:
                    state[owner] = frozenset({("dropout-on", call)})
                return
            state[key] = frozenset({(kind, call)})
            return
        self._apply_summary(call, state)

    # --- summaries -------------------------------------------------------------------------
    def callee(self, call):
        func = call.func
        if isinstance(func, ast.Name):
            return self.index.functions.get(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            for methods in self.index.methods.values():
                if func.attr in methods:
                    return methods[func.attr]
        return None

    def summary(self, fn):
        """{key: (modes, keeps_entry)}: what a call of fn does to the modes, keys in fn's terms."""
        if fn in self._summaries:
            return self._summaries[fn]
        self._summaries[fn] = {}
        if self._depth >= 2:
            return {}
        self._depth += 1
        saved_at, saved_loops = self.at, dict(self._module_loops)
        self.at = {}
        try:
            end = self.run(fn.body)
        finally:
            self.at = saved_at
            self._module_loops = {**saved_loops, **self._module_loops}
            self._depth -= 1
        result = {}
        for key, pairs in (end or {}).items():
            modes = frozenset(m for m, _ in pairs if m != "entry")
            if modes:
                result[key] = (modes, ENTRY in pairs)
        self._summaries[fn] = result
        return result

    def _apply_summary(self, call, state):
        fn = self.callee(call)
        if fn is None:
            return
        summary = self.summary(fn)
        if not summary:
            return
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
        is_method = isinstance(call.func, ast.Attribute)
        if is_method and params:
            params = params[1:]
        bound = {}
        for i, p in enumerate(params):
            arg = arg_or_kwarg(call, p, i)
            if arg is not None:
                bound[p] = receiver_key(arg)
        for key, (modes, keeps) in summary.items():
            head, _, rest = key.partition(".")
            if head in bound:
                target = bound[head] + ("." + rest if rest else "")
            elif head == "self" and not is_method:
                continue
            else:
                target = key
            if not target or (target == "self" and not is_method):
                continue
            new = frozenset((m, call) for m in modes)
            if keeps:
                new |= state.get(target, frozenset({ENTRY}))
            state[target] = new


def _join(a, b):
    if a is None:
        return b
    if b is None:
        return a
    out = {}
    for k in set(a) | set(b):
        out[k] = a.get(k, frozenset({ENTRY})) | b.get(k, frozenset({ENTRY}))
    return out


def _join_all(states):
    out = None
    for s in states:
        out = _join(out, s)
    return out


def flow(module) -> Flow:
    """The module's flow, computed once and shared by the checks. Every mode in it comes from
    a switching call (`toggle`), so a module without one (most model code) is not interpreted:
    no call can be in a known mode there, and `idle` lets a check stop early."""
    f = module.cache.get("mode-flow")
    if f is None:
        f = module.cache["mode-flow"] = Flow(module)
        if any(toggle(call) is not None for call in module.index.calls_named(_SWITCHES)):
            f.run_all()
        else:
            f.idle = True
    return f
