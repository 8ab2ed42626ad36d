"""Train/eval mode flow through one function, for the eval-mode rules.

Which mode a model is in at a call depends on the path taken to it, not on which switch is
written nearest above it: a train() in the other branch of an if, a helper that always calls
eval() but train() only sometimes, an early return, a chained `model.to(device).train()`. So
each function body is interpreted once over a small abstract state: for every model (keyed by
its name, `self.model` style attributes included) the set of (mode, switching call) pairs that
can reach the current point, where the pseudo-mode "entry" means "whatever it was when the
function started". Branches join by union, loops run twice (the second pass is the next
iteration), try/finally and with-blocks are followed, return/raise (and `assert False`) end a
path. Calls to functions and methods of the same module apply that function's summary (its
effect on its parameters and on `self.*`), one level deep, which is what a linter can know
without guessing. Every call node keeps the union of the states seen on reaching it, so a check can
ask "may this model be in train mode here, and because of which call?" and cite that call.

Two more sources of a mode than the switches (issue #26): building a torch module leaves it
in train mode (pseudo-mode "built", also for a model unpickled with torch.load), while
transformers' from_pretrained returns it in eval mode ("loaded"; modeling_utils.py calls
model.eval() at the end of from_pretrained, 5.24.0). A built or loaded model handed to a
function the module cannot see (a Trainer, a fit()) may be switched there, so its mode is
forgotten. And the reach is interprocedural within the module: a function called from the
module (`main()` under `if __name__ == "__main__"`, an evaluate() called after training) is
interpreted again from the join of the states at its call sites, mapped through its
parameters, and a callback (a decorated handler, a function passed as a value) from the state
at the end of the module body, since it runs after the module was imported.
"""

from __future__ import annotations

import ast
import re

from auditor.checks.code import classes
from auditor.checks.code.common import MODEL, NOT_MODEL
from auditor.sources.python_facts import arg_or_kwarg, constant, dotted, last_name

ENTRY = ("entry", None)
BUILT, LOADED = "built", "loaded"  # train mode by construction, eval mode by from_pretrained
# Methods that return the module itself: `model.to(device).train()` switches `model`.
SELF_RETURNING = frozenset({"to", "cuda", "cpu", "half", "float", "bfloat16", "double", "train", "eval",
                             "requires_grad_", "module", "requires_grad"})
_UNWRAP = frozenset({"unwrap_model", "unwrap", "get_base_model", "deepcopy"})
_MODULE_ITERS = frozenset({"modules", "named_modules", "children", "named_children"})


def receiver_key(node) -> str:
    """The model a receiver expression denotes: `model.to(d)` -> 'model', `self.model.module`
    -> 'self.model', `accelerator.unwrap_model(model)` -> 'model'; '' when it is no name."""
    while True:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in SELF_RETURNING:
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
# Calls whose result is the model they are given, in the mode it had (a wrapper keeps the mode).
WRAPPERS = frozenset({"DistributedDataParallel", "DDP", "DataParallel", "FSDP", "FullyShardedDataParallel",
                       "compile", "get_peft_model", "prepare_model_for_kbit_training", "prepare", "prepare_model",
                       "wrap", "to_bettertransformer", "script", "trace"})
# torch.nn containers and layers a script may build as its whole model (they start in train mode).
NN_BUILT = frozenset({"Sequential", "Transformer", "TransformerEncoder", "TransformerDecoder", "LSTM", "GRU",
                       "RNN", "TransformerEncoderLayer", "TransformerDecoderLayer"})
UNPICKLE = frozenset({"torch.load", "pickle.load", "joblib.load", "dill.load", "cloudpickle.load", "torch.jit.load"})
# Callees that receive a model without switching its mode (so a built/loaded mode survives them).
_NEUTRAL = frozenset({"print", "len", "sum", "isinstance", "type", "id", "str", "repr", "getattr", "hasattr",
                      "setattr", "save", "count_parameters", "watch", "info", "debug", "warning", "log", "summary",
                      "format", "append", "numel", "param_count", "parameters_count", "get_num_params",
                      "load_state_dict", "load_checkpoint", "load_model", "set_seed", "freeze", "requires_grad_",
                      "unwrap_model", "deepcopy", "to", "cuda", "cpu", "half", "float", "bfloat16", "tie_weights",
                      "resize_token_embeddings", "apply", "register_forward_hook", "assert_", "dict", "list",
                      "tuple", "zip", "enumerate", "next", "iter", "map", "filter", "sorted", "vars"}) | WRAPPERS
# Helpers named like inference run the model they are given; they are reported, not forgotten.
INFERENCE_NAME = re.compile(r"generat|predict|sample|infer|chat|respond|reply|answer|complet|translat|decode|"
                            r"caption|transcrib|summari|classify|beam_search|greedy", re.I)
_NEUTRAL_DECORATORS = frozenset({"no_grad", "inference_mode", "enable_grad", "staticmethod", "classmethod", "property",
                                 "compile", "cache", "lru_cache", "wraps", "jit", "autocast", "torch_compile",
                                 "abstractmethod", "overload", "contextmanager", "dataclass"})


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
        self.aliases = {}        # parameter name -> caller keys bound to it at local call sites
        self.entered = {}        # function -> the entry state its contextual run started from
        self._locals = {}
        self._same = None
        self._holders = None

    def same(self, key) -> tuple:
        """The key and the names bound to the same model object anywhere in the module
        (`m = model.to(device)`, `ddp = DDP(model)`): switching one switches them all."""
        if self._same is None:
            parent = {}

            def find(k):
                while parent.get(k, k) != k:
                    k = parent[k]
                return k
            for stmt in self.index.of(ast.Assign):
                if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], (ast.Name, ast.Attribute)):
                    continue
                target = receiver_key(stmt.targets[0])
                value = stmt.value
                if isinstance(value, ast.Call) and last_name(value.func) in WRAPPERS and value.args:
                    value = value.args[0]
                src = receiver_key(value) if isinstance(value, (ast.Name, ast.Attribute, ast.Call)) else ""
                if target and src and target != src and not target.startswith(src + ".") \
                        and not src.startswith(target + "."):
                    parent[find(target)] = find(src)
            groups = {}
            for k in list(parent):
                groups.setdefault(find(k), set()).add(k)
            self._same = {}
            for root, members in groups.items():
                members.add(root)
                for k in members:
                    self._same[k] = tuple(sorted(members))
        return self._same.get(key, (key,))

    # --- running ---------------------------------------------------------------------------
    def run_all(self):
        """Interpret the module body and every function body (each from an unknown entry), then
        again each function the module calls, from the states its callers reach it with."""
        end = None
        for i, body in enumerate(self.bodies()):
            state = self.run(body)
            if i == 0:
                end = state
        self._contexts(end or {})
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
        if isinstance(stmt, ast.Assert) and _always_fails(stmt):
            return None
        if isinstance(stmt, (ast.Break, ast.Continue)):
            if self._loops:
                self._loops[-1][type(stmt).__name__].append(state)
            return None
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.expr):
                self._expr(child, state)
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            self._assign(stmt, state)
        return state

    # --- assignments: where a model comes from ----------------------------------------------
    def _assign(self, stmt, state):
        value = stmt.value
        for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]):
            if isinstance(target, (ast.Tuple, ast.List)):
                # model, opt = accelerator.prepare(model, opt): each name keeps its argument's mode
                parts = value.elts if isinstance(value, (ast.Tuple, ast.List)) else (
                    value.args if isinstance(value, ast.Call) and last_name(value.func) in WRAPPERS else [])
                for i, leaf in enumerate(target.elts):
                    key = receiver_key(leaf) if isinstance(leaf, (ast.Name, ast.Attribute)) else ""
                    if key:
                        self._bind(key, parts[i] if i < len(parts) else None, state)
            elif isinstance(target, (ast.Name, ast.Attribute)):
                key = receiver_key(target)
                if key:
                    self._bind(key, value, state)

    def _bind(self, key, value, state):
        found = self.origin(value)
        if found is None:
            state.pop(key, None)
            return
        kind, what = found
        if kind != "copy":
            state[key] = frozenset({(kind, what)})
        elif what != key:
            if what in state:
                state[key] = state[what]
            else:
                state.pop(key, None)

    def origin(self, value):
        """Where an assigned value's mode comes from: (BUILT | LOADED, the call), ("copy", key)
        for the same model under another name or wrapper, None when nothing is known."""
        if value is None:
            return None
        if isinstance(value, ast.IfExp):
            a, b = self.origin(value.body), self.origin(value.orelse)
            return a if a == b else None
        if isinstance(value, ast.Call):
            func = value.func
            name = last_name(func)
            if name == "from_pretrained" and isinstance(func, ast.Attribute):
                owner = classes.module_class(self.module, func.value)
                if owner is not None:  # the file's own from_pretrained classmethod builds the class
                    return BUILT, value
                if last_name(func.value) == "PeftModel" and arg_or_kwarg(value, "is_trainable", 3) is not None:
                    return None  # is_trainable keeps the base model's mode (peft_model.py: `if not is_trainable: self.eval()`)
                return LOADED, value
            if name in ("from_config", "_from_config"):
                return BUILT, value  # transformers' from_config does not call eval()
            if classes.module_class(self.module, func) is not None:
                return BUILT, value
            text = dotted(func)
            if name in NN_BUILT and text.split(".")[0] in ("nn", "torch", name):
                return BUILT, value
            if text in UNPICKLE:
                return BUILT, value
            if name in WRAPPERS and value.args:
                key = receiver_key(value.args[0])
                return ("copy", key) if key else None
        key = receiver_key(value)
        return ("copy", key) if key else None

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
            for k in self.same(key):
                state[k] = frozenset({(kind, call)})
            return
        if self.callee(call) is not None:
            self._apply_summary(call, state)
            return
        sibling = classes.sibling_function(self.module, call.func)
        if sibling is not None:
            self._apply_sibling(call, sibling, state)
        else:
            self._forget(call, state)

    def _forget(self, call, state):
        """A built or loaded model passed to code this module cannot see (a Trainer, fit(),
        a helper from elsewhere) may be switched there: its mode is no longer known. A switch
        written in this module (train()/eval()) is kept, as before: the rules citing it say so."""
        name = last_name(call.func)
        func = call.func
        if isinstance(func, ast.Attribute):
            for held in self.holders().get(receiver_key(func.value), ()):  # trainer.train(): its model may switch
                self._drop(held, state)
        if name in _NEUTRAL or INFERENCE_NAME.search(name or ""):
            return
        if name[:1].isupper() and isinstance(self.index.parents.get(call), ast.Assign):
            return  # `trainer = Trainer(model=model)` holds the model; its methods may switch it
        for arg in list(call.args) + [kw.value for kw in call.keywords]:
            key = receiver_key(arg) if isinstance(arg, (ast.Name, ast.Attribute, ast.Call)) else ""
            if key:
                self._drop(key, state)

    def _drop(self, key, state):
        if any(m in (BUILT, LOADED) for m, _ in state.get(key, ())):
            for k in self.same(key):
                state.pop(k, None)

    def holders(self) -> dict:
        """name -> model keys it was built with: `trainer = Trainer(model=model, ...)`."""
        if self._holders is None:
            self._holders = {}
            for stmt in self.index.of(ast.Assign):
                value = stmt.value
                if not (isinstance(value, ast.Call) and last_name(value.func)[:1].isupper()
                        and len(stmt.targets) == 1):
                    continue
                holder = receiver_key(stmt.targets[0]) if isinstance(stmt.targets[0], (ast.Name, ast.Attribute)) else ""
                keys = {receiver_key(a) for a in list(value.args) + [kw.value for kw in value.keywords]
                        if isinstance(a, (ast.Name, ast.Attribute))}
                keys.discard("")
                if holder and keys:
                    self._holders.setdefault(holder, set()).update(keys)
        return self._holders

    def _apply_sibling(self, call, sibling, state):
        """A function of an imported sibling module: its switches on its own parameters."""
        mod, fn = sibling
        summary = {k: v for k, v in flow(mod, run=False).summary(fn).items() if k.partition(".")[0] in _params(fn)}
        self._apply(call, fn, summary, state)

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
        local = self.locals_of(fn)
        for key, pairs in (end or {}).items():
            if key.partition(".")[0] in local:
                continue  # the function's own variables mean nothing to its caller
            modes = frozenset(m for m, _ in pairs if m != "entry")
            if modes:
                result[key] = (modes, ENTRY in pairs)
        self._summaries[fn] = result
        return result

    def locals_of(self, fn) -> set:
        """Names a function assigns (not its parameters, not those it declares global)."""
        found = self._locals.get(fn)
        if found is None:
            found = set()
            declared = set()
            stack = list(fn.body)
            while stack:
                node = stack.pop()
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                    continue
                if isinstance(node, (ast.Global, ast.Nonlocal)):
                    declared.update(node.names)
                elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    found.add(node.id)
                stack.extend(ast.iter_child_nodes(node))
            found = self._locals[fn] = found - declared - _params(fn)
        return found

    def _apply_summary(self, call, state):
        fn = self.callee(call)
        if fn is None:
            return
        self._apply(call, fn, self.summary(fn), state)

    def _apply(self, call, fn, summary, state):
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
            for k in self.same(target):
                new = frozenset((m, call) for m in modes)
                if keeps:
                    new |= state.get(k, frozenset({ENTRY}))
                state[k] = new


    # --- context: functions interpreted from their callers' states ------------------------
    def _contexts(self, module_end):
        """Run each function again from the join of the states it is called with (mapped into
        its own names), a few rounds so that main() -> train() -> evaluate() chains settle."""
        idx = self.index
        fns = [n for n in idx.nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if not fns:
            return
        sites = {}
        for call in idx.calls:
            fn = self.callee(call)
            if fn is not None:
                sites.setdefault(fn, []).append(call)
        top = self._module_names()
        callbacks = {fn for fn in self._callbacks() if fn not in sites}
        owned = {}
        for call in idx.calls:
            owned.setdefault(self.module.enclosing_function(call), []).append(call)
        for _ in range(4):
            changed = False
            for fn in fns:
                entry = None
                for call in sites.get(fn, ()):
                    one = self._entry_from(fn, call, top)
                    if one is not None:
                        entry = one if entry is None else _join(entry, one)
                if fn in callbacks:
                    entry = {k: v for k, v in module_end.items() if k.partition(".")[0] in top}
                if entry is None or self.entered.get(fn, {}) == entry:
                    continue
                self.entered[fn] = entry
                for call in owned.get(fn, ()):
                    self.at.pop(call, None)
                self.run(fn.body, entry)
                changed = True
            if not changed:
                break

    def _entry_from(self, fn, call, top):
        snap = self.at.get(call)
        if snap is None:
            return None
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
        is_method = isinstance(call.func, ast.Attribute)
        if is_method and params:
            params = params[1:]
        entry = {}
        for i, p in enumerate(params):
            arg = arg_or_kwarg(call, p, i)
            src = receiver_key(arg) if arg is not None else ""
            if not src:
                continue
            self.aliases.setdefault(p, set()).add(src)
            for k, pairs in snap.items():
                if k == src or k.startswith(src + "."):
                    entry[p + k[len(src):]] = pairs
        local = self.locals_of(fn) | set(params)
        for k, pairs in snap.items():
            head = k.partition(".")[0]
            if (head == "self" and is_method) or (head in top and head not in local):
                entry.setdefault(k, pairs)
        return entry

    def _module_names(self) -> set:
        """Names bound at module level, or declared global by a function that binds them."""
        names = {n for g in self.index.of(ast.Global) for n in g.names}
        for stmt in self.module.tree.body:
            for node in ast.walk(stmt) if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                ast.ClassDef)) else ():
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    names.add(node.id)
        return names

    def _callbacks(self) -> set:
        """Module-level functions called by something else after the module ran: decorated by a
        registration (an app's handler) or passed as a value (a callback, a thread target)."""
        found = set()
        functions = self.index.functions
        for fn in functions.values():
            if any(last_name(getattr(d, "func", d)) not in _NEUTRAL_DECORATORS for d in fn.decorator_list):
                found.add(fn)
        for node in self.index.of(ast.Name):
            if node.id in functions and isinstance(node.ctx, ast.Load):
                parent = self.index.parents.get(node)
                if not (isinstance(parent, ast.Call) and parent.func is node):
                    found.add(functions[node.id])
        return found


def _always_fails(stmt) -> bool:
    """`assert False` / `assert 0, "unknown mode"`: the `else:` of a dispatch on an option written
    as an assert instead of a raise (vicreg's evaluate.py). No run goes past it, so the mode
    reaching it reaches nothing after it."""
    known, value = constant(stmt.test)
    return known and not value


def _params(fn) -> set:
    return {a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs}


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


def flow(module, run=True) -> Flow:
    """The module's flow, computed once and shared by the checks. A mode comes from a switching
    call (`toggle`) or from building or loading a model outside a class body, so a module with
    neither (most model code) is not interpreted: no call can be in a known mode there, and
    `idle` lets a check stop early. run=False: only summaries are wanted (a sibling module)."""
    if not run:
        f = module.cache.get("summary-flow")
        if f is None:
            f = module.cache["summary-flow"] = Flow(module)
        return f
    f = module.cache.get("mode-flow")
    if f is None:
        f = module.cache["mode-flow"] = Flow(module)
        if any(toggle(call) is not None for call in module.index.calls_named(_SWITCHES)) or _builds(f):
            f.run_all()
        else:
            f.idle = True
    return f


def _builds(f) -> bool:
    """A model built or loaded by script code (not a layer built in a class's __init__, not a
    block a builder function assembles): assigned to a model-like name, or to a name the
    module calls (a forward pass) or generates with. Checked by name before the origin, which
    may read sibling modules."""
    module = f.module
    called = None
    idx = module.index
    names = {"from_pretrained", "from_config", "_from_config", "load"} | NN_BUILT | set(
        classes.local_module_classes(module)) | {n for n in classes.imported_names(module) if n[:1].isupper()}
    for value in idx.calls_named(names):
        stmt = idx.parents.get(value)
        if stmt.__class__ not in (ast.Assign, ast.AnnAssign) or stmt.value is not value:
            continue
        if last_name(value.func) == "load" and dotted(value.func) not in UNPICKLE:
            continue
        method = module.enclosing_method(stmt)
        if method is not None and method.name == "__init__":
            continue  # a layer a module builds for itself
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        keys = [receiver_key(t) for t in targets if isinstance(t, (ast.Name, ast.Attribute))]
        if not any(k and MODEL.search(k.rsplit(".", 1)[-1]) and not NOT_MODEL.search(k) for k in keys):
            if called is None:
                called = _called_names(module)
            if not any(k in called for k in keys):
                continue
        found = f.origin(value)
        if found is not None and found[0] != "copy":
            return True
    return False


def _called_names(module) -> set:
    """Names the module runs: `net(x)`, `net.generate(...)`, `net.predict(...)`."""
    found = set()
    for call in module.index.calls:
        func = call.func
        if isinstance(func, ast.Name):
            found.add(func.id)
        elif isinstance(func, ast.Attribute) and (func.attr == "generate" or INFERENCE_NAME.search(func.attr)):
            found.add(receiver_key(func.value))
    return found
