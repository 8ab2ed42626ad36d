"""eval-mode checks: functional dropout and attention kernels that ignore model.eval(), and
model.eval()/train() toggles that leave the wrong mode on (pitfalls.md section C)."""

from __future__ import annotations

import ast
import re

from auditor.checks.base import Hit, check
from auditor.checks.code import classes, construction, models
from auditor.checks.code.common import (
    ATTENTION,
    FUNCTIONAL,
    FUNCTIONAL_PREFIXES,
    NO_GRAD,
    hit,
    python_driver,
    python_module_of,
)
from auditor.checks.code.flow import BUILT, INFERENCE_NAME, LOADED, flow, receiver_key, toggle
from auditor.core.model import Edit, Fix
from auditor.sources.python_facts import (
    arg_or_kwarg,
    constant,
    dotted,
    has_star_args,
    last_name,
    mentions_training,
)


def functional_name(module, call) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in FUNCTIONAL:
        if dotted(func.value) in FUNCTIONAL_PREFIXES or dotted(func.value) in _functional_aliases(module):
            return func.attr
    if isinstance(func, ast.Name):
        return _functional_imports(module).get(func.id)
    return None


def _functional_callees(module) -> set:
    """The callee names functional_name can accept: F.<name>, or a name imported from
    torch.nn.functional (under any alias)."""
    return set(FUNCTIONAL) | set(_functional_imports(module))


def _functional_aliases(module) -> set:
    if "functional_aliases" in module.cache:
        return module.cache["functional_aliases"]
    names = module.cache["functional_aliases"] = set()
    for node in module.index.of(ast.Import, ast.ImportFrom):
        if isinstance(node, ast.Import):
            names.update(a.asname for a in node.names if a.name == "torch.nn.functional" and a.asname)
        elif isinstance(node, ast.ImportFrom) and node.module == "torch.nn":
            names.update(a.asname or a.name for a in node.names if a.name == "functional")
    return names


def _functional_imports(module) -> dict:
    if "functional_imports" in module.cache:
        return module.cache["functional_imports"]
    found = module.cache["functional_imports"] = {}
    for node in module.index.of(ast.ImportFrom):
        if isinstance(node, ast.ImportFrom) and node.module == "torch.nn.functional":
            for a in node.names:
                if a.name in FUNCTIONAL:
                    found[a.asname or a.name] = a.name
    return found


def _rate_from_caller(module, call, p) -> bool:
    """A free function whose rate is its own parameter (an eager drop-in for flash-attn's
    `dropout_p`) makes the rate the gate: its callers pass `p if self.training else 0.0`, and
    there is no `self.training` to pass here (xtuner's eager_attention)."""
    if not isinstance(p, ast.Name) or module.enclosing_method(call) is not None:
        return False
    fn = module.enclosing_function(call)
    return fn is not None and p.id in {a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs}


def _self_name(fn) -> str | None:
    args = fn.args.posonlyargs + fn.args.args
    return args[0].arg if args else None


@check("functional-dropout-training")
def functional_dropout_training(ctx, rule):
    """F.dropout's `training` defaults to True, so a module that calls it without
    training=self.training keeps dropping after model.eval() (pytorch#26338, pitfalls #23, #27,
    #28); alpha_dropout's defaults to False, so it never drops at all."""
    module = python_module_of(ctx)
    if module is None:
        return
    for call in module.index.calls_named(_functional_callees(module)):
        name = functional_name(module, call)
        if name is None or has_star_args(call):
            continue
        p = arg_or_kwarg(call, "p", 1)
        if p is not None and models.zero_rate(module, p):
            continue  # a literal 0, directly or through a local only ever assigned 0, is no dropout
        training = arg_or_kwarg(call, "training", 2)
        if training is not None:
            ok, value = constant(training)
            if ok and value is True and not _rate_from_caller(module, call, p):
                yield hit(ctx, module, training,
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
        if FUNCTIONAL[name]:
            msg = (f"{shown}() without training=self.training keeps dropping after model.eval(): "
                   "its `training` argument defaults to True")
        else:
            msg = (f"{shown}() without training=self.training never drops: its `training` argument "
                   "defaults to False")
        yield hit(ctx, module, call, msg, fix, key=name)


def _gated(module, call, expr) -> bool:
    if models.zero_rate(module, expr) or mentions_training(expr):
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


def _autograd_function(module, call) -> bool:
    """A torch.autograd.Function's forward/backward are static methods of an object with no
    module mode: the rate is whatever `.apply()` was given (and backward never runs in an
    eval-only pass), so gating belongs to the caller of apply, as for a free function."""
    cls = module.parent(module.enclosing_method(call))
    return any(last_name(b) == "Function" for b in getattr(cls, "bases", ()))


@check("attention-dropout-ungated")
def attention_dropout_ungated(ctx, rule):
    """scaled_dot_product_attention and flash-attn have no training flag: dropout_p is applied
    whenever it is non-zero, eval included (pytorch#124464, nanoGPT#240, timm#1978, torchtune#1791)."""
    module = python_module_of(ctx)
    if module is None:
        return
    for call in module.index.calls_named(ATTENTION):
        spec = ATTENTION[last_name(call.func)]
        expr = arg_or_kwarg(call, *spec)
        if expr is None or _gated(module, call, expr):
            continue
        ok, value = constant(expr)
        if not ok and (module.enclosing_method(call) is None or _autograd_function(module, call)):
            continue  # a free function or a torch.autograd.Function cannot know the mode; its caller must gate the value
        if ok and not isinstance(value, (int, float)):
            continue
        yield hit(ctx, module, expr,
                   f"{spec[0]}={module.text[module.span(expr).start:module.span(expr).end]} is applied in eval "
                   f"mode too: {last_name(call.func)} has no training flag; write "
                   f"`{spec[0]}=<p> if self.training else 0.0`", key=last_name(call.func))


# --- eval-mode: model.eval()/train() toggles ----------------------------------------------
# Built on the mode flow (flow.py) and on what is known about each model (models.py): a rule
# fires for a trained model that has dropout (warning) or may have it (info), never for a
# frozen/reference model, an object that is no model, or a model without dropout.

_SPREAD = frozenset({"mean", "var", "std", "std_mean", "var_mean", "nanmean", "nanstd", "nanvar", "quantile"})


def _no_grad_region(module, node):
    """The with-item or decorator that turns gradients off around node, else None."""
    for a in module.ancestors(node):
        if isinstance(a, (ast.With, ast.AsyncWith)):
            for item in a.items:
                if _turns_grad_off(item.context_expr):
                    return item.context_expr
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return next((d for d in a.decorator_list if _turns_grad_off(d)), None)
    return None


def _turns_grad_off(expr) -> bool:
    name = last_name(getattr(expr, "func", expr))
    if name in NO_GRAD:
        return True
    if name == "set_grad_enabled" and isinstance(expr, ast.Call):
        arg = arg_or_kwarg(expr, "mode", 0)
        return arg is not None and constant(arg) == (True, False)
    return False


def _inference_call(module, call):
    """(model key, what) when a call runs a model for inference: .generate() anywhere, a
    forward pass under no_grad/inference_mode/set_grad_enabled(False); else None."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "generate":
        key = receiver_key(func.value)
        return (key, "generate()") if models.is_model(module, key) else None
    if isinstance(func, (ast.Name, ast.Attribute)):
        key = receiver_key(func)
        if key and models.is_model(module, key) and _no_grad_region(module, call) is not None:
            return key, "a forward pass under no_grad"
    return None


def _judged(module, key: str, setup):
    """(known dropout, severity): a warning when the model has dropout, info when nothing is
    known, None (stay silent) when it has none."""
    verdict = models.known_dropout(module, key, setup)
    return verdict, {models.NONZERO: "", models.UNKNOWN: "info"}.get(verdict)


def _dropout_note(verdict) -> str:
    return " (whether this model has dropout is not known here)" if verdict == models.UNKNOWN else ""


@check("inference-in-train-mode", scope="setup")
def inference_in_train_mode(ctx, rule):
    """A model switched to train() and then, on every path, used for generation or no_grad
    evaluation with no eval() in between samples with dropout on (transformers#2627). The
    message cites the train() call that reaches the inference call."""
    src, module = python_driver(ctx)
    if module is None or flow(module).idle:
        return  # nothing switches to train mode
    if models.disables_dropout_itself(module):
        return
    fl = flow(module)
    for call in module.calls():
        found = _inference_call(module, call)
        if found is None:
            continue
        key, what = found
        pairs = fl.at.get(call, {}).get(key)
        if not pairs or any(mode != "train" for mode, _ in pairs):
            continue  # eval, unknown or the caller's mode on some path
        verdict, severity = _judged(module, key, ctx.setup)
        if severity is None:
            continue
        cause = max((n for _, n in pairs), key=lambda n: (n.lineno, n.col_offset))
        what = "generate()" if what == "generate()" else "a forward pass under no_grad"
        yield Hit(src.path, module.span(call),
                  f"{key} runs {what} in train mode: {_cited(module, cause)} (line {cause.lineno}) is not "
                  f"followed by {key}.eval(), so dropout is still active{_dropout_note(verdict)}",
                  key=key, severity=severity)


def _cited(module, call) -> str:
    """How a message names the call it cites: `model.train()` or `helper()`."""
    func = call.func
    text = dotted(func) or last_name(func)
    return f"{text}()"


def _loops(module):
    return module.index.of(ast.For, ast.While, ast.AsyncFor)


def _inside(module, node, outer) -> bool:
    return any(a is outer for a in module.ancestors(node))


@check("eval-without-train", scope="setup")
def eval_without_train(ctx, rule):
    """A training loop whose optimizer step can be reached from an eval() (direct, chained or
    through a helper) with no train() on that path: the later steps train with dropout off
    (pitfalls #30). Frozen, reference and teacher models are meant to stay in eval."""
    src, module = python_driver(ctx)
    if module is None:
        return
    fl = flow(module)
    if fl.idle:
        return  # nothing switches to eval mode
    steps = [c for c in models.training_calls(module) if last_name(c.func) != "train"]
    reported = set()
    for loop in _loops(module):
        for step in steps:
            if not _inside(module, step, loop):
                continue
            for key, pairs in fl.at.get(step, {}).items():
                for mode, node in pairs:
                    if mode != "eval" or node is None or node in reported or not _inside(module, node, loop):
                        continue
                    if key != "self" and (not models.is_model(module, key) or models.is_frozen(module, key)):
                        continue
                    verdict, severity = _judged(module, key, ctx.setup)
                    if severity is None:
                        continue
                    reported.add(node)
                    yield Hit(src.path, module.span(node),
                              f"{_cited(module, node)} switches {key} to eval mode inside the training loop and "
                              f"no train() follows on some path to {_cited(module, step)} (line {step.lineno}): "
                              f"the following optimizer steps train with dropout off{_dropout_note(verdict)}",
                              key=key, severity=severity)


@check("no-grad-is-not-eval", scope="setup")
def no_grad_is_not_eval(ctx, rule):
    """torch.no_grad(), inference_mode() and set_grad_enabled(False) stop gradient tracking, not
    dropout; a script that trains a model and evaluates it that way without ever calling eval()
    evaluates with dropout on (ethos-ares#20). Reported at the forward pass."""
    src, module = python_driver(ctx)
    if module is None or not models.training_calls(module) or models.disables_dropout_itself(module):
        return
    for call in module.calls():
        t = toggle(call)
        if t is not None and t[0] in ("eval", "unknown"):
            return  # the file does switch modes somewhere; where is beyond a static look
    fl = flow(module)
    seen = set()
    for call in module.calls():
        found = _inference_call(module, call)
        if found is None or found[1] == "generate()":
            continue
        key = found[0]
        if models.is_frozen(module, key) or _in_training_step(module, call):
            continue
        pairs = fl.at.get(call, {}).get(key, ())
        if any(mode in ("eval", "unknown", "dropout-on") for mode, _ in pairs):
            continue
        if pairs and all(mode == LOADED for mode, _ in pairs):
            continue  # from_pretrained returns the model in eval mode, and no train() reaches here
        region = _no_grad_region(module, call)
        if region in seen:
            continue
        verdict, severity = _judged(module, key, ctx.setup)
        if severity is None:
            continue
        seen.add(region)
        how = last_name(getattr(region, "func", region)) or "no_grad"
        yield Hit(src.path, module.span(call),
                  f"{key} is evaluated under {how} (line {region.lineno}) but never put in eval mode in this file: "
                  f"{how} does not disable dropout; call {key}.eval() first (and {key}.train() after)"
                  f"{_dropout_note(verdict)}", key=key, severity=severity)


# --- a built model used for inference without eval() (issue #26) ------------------------------

_UNPICKLED = frozenset({"load"})
# Helpers named like inference that look at a model without running it (accelerate's
# infer_auto_device_map, a summary of its parameters).
_NOT_INFERENCE = re.compile(r"device_map|dtype|shape|schema|signature|memory|size|param|config|type", re.I)


@check("inference-without-eval", scope="setup")
def inference_without_eval(ctx, rule):
    """A torch module starts in train mode, and from_pretrained's eval() is not there when the
    script builds the model itself (or unpickles one saved in train mode). Generating with it,
    or running it under no_grad, without ever calling eval() samples through dropout: replies
    change from call to call (transformers#2627 after a train(); ethos-ares#20 for no_grad).
    Reported at the inference call, citing the construction; a warning when the model's rate
    is a fact of the construction (construction.py), info otherwise."""
    src, module = python_driver(ctx)
    if module is None:
        return
    fl = flow(module)
    if fl.idle or models.disables_dropout_itself(module):
        return
    trains = bool(models.training_calls(module))
    switched = trains and any(t is not None and t[0] in ("eval", "unknown") for t in map(toggle, module.calls()))
    seen = set()
    for call in module.calls():
        found = _fresh_inference(module, call, trains)
        if found is None:
            continue
        key, what, certain = found
        pairs = fl.at.get(call, {}).get(key)
        if not pairs or any(m not in (BUILT, "train") for m, _ in pairs):
            continue
        built = sorted((n for m, n in pairs if m == BUILT), key=lambda n: (n.lineno, n.col_offset))
        if not built:
            continue  # switched to train() on every path: DRP602's finding
        if what == "a forward pass under no_grad" and trains and not switched and not models.is_frozen(module, key):
            continue  # a training script with no eval() at all: DRP604's finding
        verdict = _built_verdict(module, built)
        if verdict == models.ZERO:
            continue
        region = (_no_grad_region(module, call), key)
        if region[0] is not None and region in seen:
            continue
        seen.add(region)
        cause = built[0]
        how = "was unpickled by" if last_name(cause.func) in _UNPICKLED else "was built by"
        severity = "" if verdict == models.NONZERO and certain and how == "was built by" else "info"
        note = "" if verdict == models.NONZERO else " (whether it has dropout is not known here)"
        if not certain:
            note += f" (unless {last_name(call.func)}() switches it to eval itself)"
        back = [n for m, n in pairs if m == "train"]
        again = ""
        if back:
            last = max(back, key=lambda n: (n.lineno, n.col_offset))
            again = f", and {_cited(module, last)} (line {last.lineno}) switches it to train again"
        yield Hit(src.path, module.span(call),
                  f"{key} runs {what} in train mode: it {how} {_cited(module, cause)} (line {cause.lineno}), and a new "
                  f"module starts in train mode{again}; no eval() reaches this call, so dropout is active"
                  f"{note}; call {key}.eval() before inference", key=key, severity=severity)


def _fresh_inference(module, call, trains):
    """(model key, what, certain) when a call runs a model for inference: generate() or an
    inference method of the model, a forward pass under no_grad (or anywhere in a file that
    does not train), or an inference helper from elsewhere given the model (certain only when
    it is a sibling module's function that switches nothing)."""
    func = call.func
    if isinstance(func, ast.Attribute) and (func.attr == "generate" or (
            INFERENCE_NAME.search(func.attr) and func.attr not in ("sample_batch",))):
        key = receiver_key(func.value)
        if key and models.is_model(module, key):
            if _method_switches_itself(module, key, func.attr):
                return None
            return key, f"{func.attr}()", True
    if isinstance(func, (ast.Name, ast.Attribute)):
        key = receiver_key(func)
        if key and models.is_model(module, key):
            if _no_grad_region(module, call) is not None:
                return key, "a forward pass under no_grad", True
            if not trains and (_weights_loaded(module, key) or _in_inference_function(module, call)):
                return key, "a forward pass", True
            return None  # a forward on random weights is a smoke test, not inference
    name = last_name(func)
    if not name or name[0].isupper() or not INFERENCE_NAME.search(name) or _NOT_INFERENCE.search(name) or (
            isinstance(func, ast.Name) and name in module.index.functions):
        return None  # a class builds, not infers; a local function is followed into instead
    for arg in list(call.args) + [kw.value for kw in call.keywords]:
        key = receiver_key(arg) if isinstance(arg, (ast.Name, ast.Attribute)) else ""
        if key and models.is_model(module, key):
            sibling = classes.sibling_function(module, func)
            return key, f"{name}({key}, ...)", sibling is not None
    return None


def _method_switches_itself(module, key, method) -> bool:
    """The model's own class defines the method and switches to eval in it: `self.eval()` in
    its body, or a decorator named for it (DALLE-pytorch's @eval_decorator)."""
    value = models.binding(module, key)
    owner = classes.module_class(module, value.func) if isinstance(value, ast.Call) else None
    if owner is None:
        return False
    fn = classes.defines(*owner, method)
    if fn is None:
        return False
    if any("eval" in (last_name(getattr(d, "func", d)) or "").lower() for d in fn.decorator_list):
        return True
    return any(toggle(c) is not None and toggle(c)[0] == "eval" and receiver_key(toggle(c)[1]) == "self"
               for c in ast.walk(fn) if isinstance(c, ast.Call))


_LOADERS = frozenset({"load_state_dict", "load_checkpoint", "load_weights", "load_pretrained", "load_model"})


def _weights_loaded(module, key) -> bool:
    """Weights are loaded into the model in this file (`model.load_state_dict(...)`,
    `load_checkpoint(model, path)`): running it then is inference, not a shape check."""
    same = set(flow(module).same(key))
    for call in module.index.calls_named(_LOADERS):
        func = call.func
        recv = receiver_key(func.value) if isinstance(func, ast.Attribute) else ""
        args = {receiver_key(a) for a in call.args if isinstance(a, (ast.Name, ast.Attribute))}
        if recv in same or args & same:
            return True
    return False


def _in_inference_function(module, call) -> bool:
    fn = module.enclosing_function(call)
    return fn is not None and not isinstance(fn, ast.Lambda) and bool(INFERENCE_NAME.search(fn.name))


def _built_verdict(module, calls) -> str:
    """NONZERO/ZERO/UNKNOWN over every construction that reaches the call."""
    found = {construction.built_dropout(module, c) if last_name(c.func) not in _UNPICKLED else models.UNKNOWN
             for c in calls}
    if found == {models.ZERO}:
        return models.ZERO
    return models.NONZERO if found == {models.NONZERO} else models.UNKNOWN


def _in_training_step(module, call) -> bool:
    """A no_grad forward inside a function that itself trains (or computes the loss) is a
    target or teacher pass of a training step, not an evaluation."""
    fn = module.enclosing_function(call)
    if fn is None or isinstance(fn, ast.Lambda):
        return False
    if re.search(r"loss|train|step|rollout|generate|sample", fn.name, re.I):
        return True
    # a training call in the same loop (a teacher or target pass of the step), or a
    # straight-line step function; a main() that trains in a loop and evaluates after it
    # evaluates (issue #26)
    loop = _loop_in(module, call, fn)
    for c in models.training_calls(module):
        if not _inside(module, c, fn):
            continue
        other = _loop_in(module, c, fn)
        if (loop is not None and (other is loop or _inside(module, c, loop))) or (loop is None and other is None):
            return True
    return False


def _loop_in(module, node, fn):
    """The innermost loop around node inside fn, else None."""
    for a in module.ancestors(node):
        if a is fn:
            return None
        if isinstance(a, (ast.For, ast.AsyncFor, ast.While)):
            return a
    return None


def _repeats(module, call):
    """The loop or comprehension that runs `call` repeatedly on the same input, else None:
    `for _ in range(n)` / `[model(x) for _ in range(n)]` whose variable the call does not read."""
    for a in module.ancestors(call):
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return None
        gens = a.generators if isinstance(a, (ast.ListComp, ast.GeneratorExp, ast.SetComp)) else (
            [a] if isinstance(a, ast.For) else [])
        if not gens:
            continue
        # the innermost loop decides: an eval loop over batches inside `for epoch in range(n)`
        # runs different inputs, not repeated samples of one
        for g in gens:
            it = g.iter
            if not (isinstance(it, ast.Call) and last_name(it.func) == "range"):
                return None
            names = {n.id for n in ast.walk(g.target) if isinstance(n, ast.Name)}
            if any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(call)):
                return None
        return a
    return None


def _aggregated(module, loop) -> bool:
    """The samples are reduced to a spread or a mean (var/std/mean...) in the same scope: the
    comprehension, or the list the loop appends to, reaches such a call directly or through
    names assigned from it (torch.stack(samples).var(0), `draws = stack(...); draws.std(0)`)."""
    scope = module.enclosing_function(loop) or module.tree
    stmts = list(_own_statements(scope))
    names = set()
    if isinstance(loop, ast.For):
        for n in ast.walk(loop):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("append", "extend") \
                    and isinstance(n.func.value, ast.Name):
                names.add(n.func.value.id)
        holders = [loop]
    else:
        holders = [loop]
    for stmt in stmts:  # names assigned from the samples, in order (one pass follows a chain)
        value = getattr(stmt, "value", None)
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or value is None:
            continue
        if any(_reads_any(value, names) for _ in [0]) or any(h is value or _contains(value, h) for h in holders):
            for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]):
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
    for stmt in stmts:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Call) and last_name(n.func) in _SPREAD:
                if _reads_any(n, names) or any(_contains(n, h) for h in holders):
                    return True
    return False


def _own_statements(scope):
    """Statements of a scope, nested blocks included, nested defs and classes not."""
    stack = list(reversed(scope.body))
    while stack:
        stmt = stack.pop()
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        yield stmt
        for field in ("body", "orelse", "finalbody", "handlers"):
            stack.extend(reversed([s for s in getattr(stmt, field, []) if isinstance(s, (ast.stmt, ast.excepthandler))]))


def _reads_any(node, names) -> bool:
    return bool(names) and any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))


def _contains(node, target) -> bool:
    return any(n is target for n in ast.walk(node))


@check("mc-dropout-in-eval", scope="setup")
def mc_dropout_in_eval(ctx, rule):
    """Monte-Carlo dropout needs dropout on while sampling: after model.eval(), repeated forward
    passes on the same input are identical, so their variance is 0 (issue #13 item 7). The
    idioms that re-enable dropout (model.train(), or only the Dropout modules) stay silent."""
    src, module = python_driver(ctx)
    if module is None:
        return
    fl = flow(module)
    if fl.idle:
        return  # nothing switches to eval mode
    seen = set()
    for call in module.calls():
        func = call.func
        if not isinstance(func, (ast.Name, ast.Attribute)):
            continue
        key = receiver_key(func)
        if not key or not models.is_model(module, key):
            continue
        pairs = fl.at.get(call, {}).get(key)
        if not pairs or any(mode != "eval" for mode, _ in pairs):
            continue
        loop = _repeats(module, call)
        if loop is None or loop in seen or not _aggregated(module, loop):
            continue
        verdict, severity = _judged(module, key, ctx.setup)
        if severity is None:
            continue
        seen.add(loop)
        cause = max((n for _, n in pairs), key=lambda n: (n.lineno, n.col_offset))
        yield Hit(src.path, module.span(call),
                  f"Monte-Carlo sampling of {key} in eval mode: {_cited(module, cause)} (line {cause.lineno}) turned "
                  f"dropout off, so every sample is identical and their spread is 0; call {key}.train() (or switch "
                  f"only its Dropout modules to train) before sampling{_dropout_note(verdict)}",
                  key=key, severity=severity)
