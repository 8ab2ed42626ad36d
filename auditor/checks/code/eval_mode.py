"""eval-mode checks: functional dropout and attention kernels that ignore model.eval(), and
model.eval()/train() toggles that leave the wrong mode on (pitfalls.md section C)."""

from __future__ import annotations

import ast
import re

from auditor.checks import check
from auditor.checks.code.common import (
    _ATTENTION,
    _FUNCTIONAL,
    _FUNCTIONAL_PREFIXES,
    _NO_GRAD,
    _hit,
    _model_like,
    _module,
    _receiver_name,
)
from auditor.model import Edit, Fix
from auditor.sources.python_facts import (
    arg_or_kwarg,
    constant,
    dotted,
    has_star_args,
    is_zero,
    last_name,
    mentions_training,
)


def _functional_name(module, call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in _FUNCTIONAL:
        if dotted(func.value) in _FUNCTIONAL_PREFIXES or dotted(func.value) in _functional_aliases(module):
            return func.attr
    if isinstance(func, ast.Name):
        return _functional_imports(module).get(func.id)
    return None


def _functional_aliases(module) -> set:
    if "functional_aliases" in module.cache:
        return module.cache["functional_aliases"]
    names = module.cache["functional_aliases"] = set()
    for node in module.nodes():
        if isinstance(node, ast.Import):
            names.update(a.asname for a in node.names if a.name == "torch.nn.functional" and a.asname)
        elif isinstance(node, ast.ImportFrom) and node.module == "torch.nn":
            names.update(a.asname or a.name for a in node.names if a.name == "functional")
    return names


def _functional_imports(module) -> dict:
    if "functional_imports" in module.cache:
        return module.cache["functional_imports"]
    found = module.cache["functional_imports"] = {}
    for node in module.nodes():
        if isinstance(node, ast.ImportFrom) and node.module == "torch.nn.functional":
            for a in node.names:
                if a.name in _FUNCTIONAL:
                    found[a.asname or a.name] = a.name
    return found


def _self_name(fn) -> str | None:
    args = fn.args.posonlyargs + fn.args.args
    return args[0].arg if args else None


@check("functional-dropout-training")
def functional_dropout_training(ctx, rule):
    """F.dropout's `training` defaults to True, so a module that calls it without
    training=self.training keeps dropping after model.eval() (pytorch#26338, pitfalls #23, #27,
    #28); alpha_dropout's defaults to False, so it never drops at all."""
    module = _module(ctx)
    if module is None:
        return
    for call in module.calls():
        name = _functional_name(module, call)
        if name is None or has_star_args(call):
            continue
        p = arg_or_kwarg(call, "p", 1)
        if p is not None and is_zero(p):
            continue
        training = arg_or_kwarg(call, "training", 2)
        if training is not None:
            ok, value = constant(training)
            if ok and value is True:
                yield _hit(ctx, module, training,
                           f"{dotted(call.func) or name}(..., training=True) drops in eval mode too; pass training=self.training "
                           "(suppress it if inference-time dropout is intended)",
                           Fix("pass self.training", (Edit(module.span(training).start, module.span(training).end,
                                                           "self.training"),), "unsafe"), key=name)
            continue
        method = module.enclosing_method(call)
        if method is None or _self_name(method) != "self" or not module.parent(method).bases:
            continue  # only methods of subclasses (nn.Module and friends) have self.training
        span = module.span(call)
        fix = None
        if module.text[span.end - 1:span.end] == ")":
            fix = Fix("add training=self.training", (Edit(span.end - 1, span.end - 1, ", training=self.training"),),
                      "unsafe")
        shown = dotted(call.func) or name
        if _FUNCTIONAL[name]:
            msg = (f"{shown}() without training=self.training keeps dropping after model.eval(): "
                   "its `training` argument defaults to True")
        else:
            msg = (f"{shown}() without training=self.training never drops: its `training` argument "
                   "defaults to False")
        yield _hit(ctx, module, call, msg, fix, key=name)


def _gated(module, call, expr) -> bool:
    if is_zero(expr) or mentions_training(expr):
        return True
    for a in module.ancestors(call):
        if isinstance(a, (ast.If, ast.IfExp, ast.While)) and mentions_training(a.test):
            return True
    fn = module.enclosing_function(call)
    if isinstance(expr, ast.Name) and fn is not None:
        params = {a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs}
        if expr.id in params:
            return True  # passed in: gating is the caller's job
        for node in ast.walk(fn):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == expr.id for t in targets):
                    if node.value is not None and (mentions_training(node.value) or any(
                            isinstance(a, ast.If) and mentions_training(a.test) for a in module.ancestors(node))):
                        return True
    return False


@check("attention-dropout-ungated")
def attention_dropout_ungated(ctx, rule):
    """scaled_dot_product_attention and flash-attn have no training flag: dropout_p is applied
    whenever it is non-zero, eval included (pytorch#124464, nanoGPT#240, timm#1978, torchtune#1791)."""
    module = _module(ctx)
    if module is None:
        return
    for call in module.calls():
        spec = _ATTENTION.get(last_name(call.func))
        if spec is None:
            continue
        expr = arg_or_kwarg(call, *spec)
        if expr is None or _gated(module, call, expr):
            continue
        ok, value = constant(expr)
        if not ok and module.enclosing_method(call) is None:
            continue  # a free function cannot know the mode; its caller must gate the value
        if ok and not isinstance(value, (int, float)):
            continue
        yield _hit(ctx, module, expr,
                   f"{spec[0]}={module.text[module.span(expr).start:module.span(expr).end]} is applied in eval "
                   f"mode too: {last_name(call.func)} has no training flag; write "
                   f"`{spec[0]}=<p> if self.training else 0.0`", key=last_name(call.func))


# --- eval-mode: model.eval()/train() toggles ----------------------------------------------

def _is_mc_dropout(module, call) -> bool:
    """`m.train()` for dropout modules only, after eval(): deliberate Monte-Carlo dropout."""
    for a in module.ancestors(call):
        if isinstance(a, ast.If) and "dropout" in ast.dump(a.test).lower():
            return True
        if isinstance(a, ast.For) and last_name(getattr(a.iter, "func", None) or a.iter) in (
                "modules", "named_modules", "children", "named_children"):
            return True
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef)):
            break
    return False


def _toggle(module, call):
    """'train' or 'eval' when the call switches a model's mode, else None."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr in ("for_inference", "for_training") and call.args:  # unsloth's switches
        return "eval" if func.attr == "for_inference" else "train"
    if func.attr == "eval" and not call.args and not call.keywords:
        return "eval"
    if func.attr == "train":
        arg = arg_or_kwarg(call, "mode", 0)
        if arg is None:
            return "train"
        ok, value = constant(arg)
        if ok:
            return "train" if value else "eval"
        return "unknown"
    return None


class _Modes:
    """Resolves calls to functions of the same file into their net effect on the mode."""

    def __init__(self, module):
        self.module = module
        self.functions = {}
        self.methods = {}
        for node in module.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self.methods.setdefault(item.name, item)
        self._net = {}

    def callee(self, call):
        func = call.func
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
            return self.methods.get(func.attr)
        return None

    def event(self, call, depth=0):
        """('train'|'eval'|'unknown', receiver) for a mode switch, direct or through a helper."""
        kind = _toggle(self.module, call)
        if kind is not None:
            recv = call.func.value if kind in ("train", "eval", "unknown") else None
            if call.func.attr in ("for_inference", "for_training"):
                recv = call.args[0]
            if kind == "train" and (not _model_like(recv) or _is_mc_dropout(self.module, call)):
                return None
            if kind == "eval" and isinstance(recv, ast.Name) and recv.id == "self":
                return ("eval", None)
            return (kind, _receiver_name(recv))
        fn = self.callee(call)
        if fn is not None and depth < 4:
            net = self.net(fn, depth + 1)
            if net is not None:
                return (net, None)
        return None

    def net(self, fn, depth=0):
        if fn in self._net:
            return self._net[fn]
        self._net[fn] = None  # recursion guard
        state = None
        for node in _in_order(fn.body):
            if isinstance(node, ast.Call):
                ev = self.event(node, depth)
                if ev is not None:
                    state = ev[0]
        self._net[fn] = state
        return state


def _in_order(body):
    """Calls and statements of a body in source order, not entering nested defs or classes."""
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        yield node
        children = list(ast.iter_child_nodes(node))
        # evaluate arguments before the call itself is "made": the call node is yielded first,
        # which is fine for mode tracking (arguments rarely switch modes)
        stack.extend(reversed(children))


def _scopes(module):
    yield module.tree.body
    for node in module.nodes():
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.body


def _under_no_grad(module, node) -> bool:
    for a in module.ancestors(node):
        if isinstance(a, (ast.With, ast.AsyncWith)):
            if any(last_name(getattr(i.context_expr, "func", i.context_expr)) in _NO_GRAD for i in a.items):
                return True
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return any(last_name(getattr(d, "func", d)) in _NO_GRAD for d in a.decorator_list)
    return False


def _inference_call(module, call):
    """The model a call runs for inference: model.generate(...) anywhere, model(...) under no_grad."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "generate" and _model_like(func.value):
        return _receiver_name(func.value)
    if isinstance(func, (ast.Name, ast.Attribute)) and _model_like(func) and _under_no_grad(module, call):
        return _receiver_name(func)
    return None


@check("inference-in-train-mode")
def inference_in_train_mode(ctx, rule):
    """A model switched to train() and then used for generation or no_grad evaluation in the
    same function, with no eval() in between, samples with dropout on (transformers#2627)."""
    module = _module(ctx)
    if module is None:
        return
    modes = _Modes(module)
    for body in _scopes(module):
        state = {}
        default = None
        for node in _in_order(body):
            if not isinstance(node, ast.Call):
                continue
            ev = modes.event(node)
            if ev is not None:
                kind, recv = ev
                if recv is None:
                    state.clear()
                    default = (kind, node)
                else:
                    state[recv] = (kind, node)
                continue
            target = _inference_call(module, node)
            if target is None:
                continue
            mode = state.get(target, default)
            if mode is not None and mode[0] == "train":
                what = "generate()" if last_name(node.func) == "generate" else "a forward pass under no_grad"
                yield _hit(ctx, module, node,
                           f"{target} runs {what} in train mode: {target}.train() (line {mode[1].lineno}) is not "
                           f"followed by {target}.eval(), so dropout is still active", key=target)


def _steps(call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr == "backward":
        return True
    return func.attr == "step" and bool(re.search(r"optim|^opt|scaler", _receiver_name(func.value) or "", re.I))


@check("eval-without-train")
def eval_without_train(ctx, rule):
    """A training loop that switches the model to eval() (directly or in an evaluate() helper)
    and never back: every later step trains without dropout (pitfalls #30)."""
    module = _module(ctx)
    if module is None:
        return
    modes = _Modes(module)
    reported = set()
    for loop in module.nodes():
        if not isinstance(loop, (ast.For, ast.While, ast.AsyncFor)):
            continue
        events = []
        for node in _in_order(loop.body):
            if isinstance(node, ast.Call):
                if _steps(node):
                    events.append(("step", node))
                else:
                    ev = modes.event(node)
                    if ev is not None:
                        events.append((ev[0], node))
        if not any(k == "step" for k, _ in events) or not any(k == "eval" for k, _ in events):
            continue
        state = None
        for kind, node in events + events:  # the second pass is the next iteration
            if kind == "step":
                if state is not None and state[0] == "eval" and state[1] not in reported:
                    reported.add(state[1])
                    yield _hit(ctx, module, state[1],
                               "the training loop switches the model to eval mode here and never back with "
                               "train(): the following optimizer steps train with dropout off")
                    break
            else:
                state = (kind, node)


@check("no-grad-is-not-eval")
def no_grad_is_not_eval(ctx, rule):
    """torch.no_grad() and inference_mode() stop gradient tracking, not dropout; a script that
    trains a model and evaluates it under no_grad without ever calling eval() evaluates with
    dropout on (ethos-ares#20)."""
    module = _module(ctx)
    if module is None:
        return
    modes = _Modes(module)
    trains = False
    for call in module.calls():
        kind = _toggle(module, call)
        if kind in ("eval", "unknown"):
            return  # the file does switch modes somewhere; where is beyond a static look
        ev = modes.event(call)
        if ev is not None and ev[0] == "train" or _steps(call):
            trains = True
    if not trains:
        return
    seen = set()
    for call in module.calls():
        target = _inference_call(module, call)
        if target is None:
            continue
        region = next((a for a in module.ancestors(call) if isinstance(a, (ast.With, ast.AsyncWith, ast.FunctionDef,
                                                                             ast.AsyncFunctionDef))), None)
        if region is None or region in seen:
            continue
        seen.add(region)
        anchor = region.items[0].context_expr if isinstance(region, (ast.With, ast.AsyncWith)) else next(
            (d for d in region.decorator_list if last_name(getattr(d, "func", d)) in _NO_GRAD), region)
        yield _hit(ctx, module, anchor,
                   f"{target} is evaluated under {last_name(getattr(anchor, 'func', anchor)) or 'no_grad'} but "
                   f"never put in eval mode in this file: no_grad/inference_mode do not disable dropout; "
                   f"call {target}.eval() first (and {target}.train() after)", key=target)
