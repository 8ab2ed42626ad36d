"""Check primitives over Python source (eval-mode, rng, no-op and invalid code patterns).

Every primitive reads the tree the Python reader parsed once (`source.facts`); none imports
or runs the user's code. The patterns are deliberately narrow: a linter that cries wolf on
correct idioms (F.dropout(x, p, self.training), SDPA gated on self.training, eval() through a
helper, Monte-Carlo dropout re-enabled module by module) gets switched off, so where the code
could be right for reasons the AST cannot see, the primitive stays silent.
"""

from __future__ import annotations

import ast
import re

from auditor import dropout_keys
from auditor.checks import Hit, check
from auditor.knowledge import frameworks
from auditor.model import Edit, Fix
from auditor.sources.python_code import TRAINING_ARGS, get_module
from auditor.sources.python_facts import (
    arg_or_kwarg,
    constant,
    dotted,
    has_star_args,
    is_zero,
    kwarg,
    last_name,
    mentions_training,
)

_FUNCTIONAL = {"dropout": True, "dropout1d": True, "dropout2d": True, "dropout3d": True,
               "alpha_dropout": False, "feature_alpha_dropout": False}  # name -> default of `training`
_FUNCTIONAL_PREFIXES = ("F", "functional", "nn.functional", "torch.nn.functional")
# Attention kernels whose dropout has no training flag: name -> (keyword, positional index).
_ATTENTION = {
    "scaled_dot_product_attention": ("dropout_p", 4), "flash_attn_func": ("dropout_p", 3),
    "flash_attn_qkvpacked_func": ("dropout_p", 1), "flash_attn_kvpacked_func": ("dropout_p", 2),
    "flash_attn_varlen_func": ("dropout_p", 7), "flash_attn_varlen_qkvpacked_func": ("dropout_p", 3),
    "flash_attn_varlen_kvpacked_func": ("dropout_p", 6), "memory_efficient_attention": ("p", 4),
}
_DROPOUT_MODULES = frozenset({"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"})
_RNNS = {"LSTM": 5, "GRU": 5, "RNN": 6}  # class -> positional index of `dropout`
_MODEL = re.compile(r"model|net$|^net|policy|actor|critic|encoder|decoder|transformer|gpt|bert|llm|(^|_)lm($|_)|classifier",
                    re.I)
_NOT_MODEL = re.compile(r"trainer|recipe|optim|sched|loader|dataset|tokenizer|processor", re.I)
_NO_GRAD = frozenset({"no_grad", "inference_mode"})
_SEEDERS = frozenset({"manual_seed", "manual_seed_all", "set_seed", "seed_everything"})
_RANKISH = re.compile(r"rank|offset|process_index|local_process|worker|device_id", re.I)
_DDP_MARKERS = ("DistributedDataParallel", "init_process_group", "Accelerator(", "DDP(")


def _module(ctx):
    src = ctx.source
    return get_module(src) if src is not None and src.kind == "python" else None


def _hit(ctx, module, node, message, fix=None, key="", end_node=None):
    return Hit(ctx.source.path, module.span(node, end_node), message, fix, key)


# --- eval-mode: functional dropout and attention kernels ----------------------------------

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

def _receiver_name(node) -> str:
    if isinstance(node, ast.Call):  # accelerator.unwrap_model(model) -> model
        if node.args:
            return _receiver_name(node.args[0])
        return last_name(node.func)
    return last_name(node)


def _model_like(node) -> bool:
    name = _receiver_name(node)
    return bool(name) and bool(_MODEL.search(name)) and not _NOT_MODEL.search(name)


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


# --- no-op ----------------------------------------------------------------------------------

@check("rnn-dropout-single-layer")
def rnn_dropout_single_layer(ctx, rule):
    """nn.LSTM/GRU/RNN apply dropout between stacked layers only; with one layer it does
    nothing (torch warns once; pytorch#5985, pyro#1415)."""
    module = _module(ctx)
    if module is None:
        return
    for call in module.calls():
        name = last_name(call.func)
        if name not in _RNNS or dotted(call.func).split(".")[0] not in ("nn", "torch", name):
            continue
        if any(kw.arg is None for kw in call.keywords):
            continue
        dropout = arg_or_kwarg(call, "dropout", _RNNS[name])
        if dropout is None or is_zero(dropout):
            continue
        layers = arg_or_kwarg(call, "num_layers", 2)
        if layers is not None:
            ok, value = constant(layers)
            if not ok or value != 1:
                continue
        text = module.text[module.span(dropout).start:module.span(dropout).end]
        yield _hit(ctx, module, dropout,
                   f"{name}(dropout={text}) with {'num_layers=1' if layers is not None else 'the default num_layers=1'} "
                   "does nothing: RNN dropout is applied between stacked layers only", key=name)


@check("dropout-module-unused")
def dropout_module_unused(ctx, rule):
    """An nn.Dropout assigned in __init__ that no code reads never runs: the configured rate
    has no effect (pytorch-openai-transformer-lm#49)."""
    module = _module(ctx)
    if module is None:
        return
    loads = set()
    strings = set()
    for node in module.nodes():
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            loads.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            strings.add(node.value)
    for cls in module.nodes():
        if not isinstance(cls, ast.ClassDef):
            continue
        methods = {m.name: m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
        if "forward" not in methods or "__init__" not in methods:
            continue
        for node in ast.walk(methods["__init__"]):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and last_name(node.value.func) in _DROPOUT_MODULES):
                continue
            p = arg_or_kwarg(node.value, "p", 0)
            if p is not None and is_zero(p):
                continue
            for target in node.targets:
                if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id == "self" and target.attr not in loads and target.attr not in strings):
                    yield _hit(ctx, module, target,
                               f"self.{target.attr} = {last_name(node.value.func)}(...) is never used: "
                               f"{cls.name} does not call it, so this dropout never runs", key=f"{cls.name}.{target.attr}")


def _is_stub(fn) -> bool:
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return all(isinstance(s, (ast.Pass, ast.Raise)) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
               for s in body)


def _reads(node, name) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) for n in ast.walk(node))


@check("dropout-parameter-unused")
def dropout_parameter_unused(ctx, rule):
    """A dropout parameter of a constructor or builder that the body never reads, or overwrites
    with a literal before reading: callers configure a value that is ignored (torchtune#996,
    TabDPT#4, CLUENER2020#55)."""
    module = _module(ctx)
    if module is None:
        return
    for fn in module.nodes():
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        parent = module.parent(fn)
        if isinstance(parent, ast.ClassDef) and fn.name != "__init__":
            continue  # other methods often keep a parameter to honour an interface
        params = [a for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
                  if not a.arg.startswith("_") and dropout_keys.is_rate_key(a.arg)
                  and not dropout_keys.is_keep_probability(a.arg)]
        if not params:
            continue
        if _is_stub(fn) or any(last_name(getattr(d, "func", d)) in ("abstractmethod", "overload") for d in fn.decorator_list):
            continue
        if any(isinstance(n, ast.Call) and last_name(n.func) in ("locals", "vars") for n in ast.walk(fn)):
            continue
        for arg in params:
            name = arg.arg
            if not any(_reads(stmt, name) for stmt in fn.body):
                literal = _literal_passed(fn, name)
                extra = ""
                if literal is not None:
                    span = module.span(literal)
                    extra = f"; a literal {name}={module.text[span.start:span.end]} is passed at line {span.line} instead"
                yield _hit(ctx, module, arg, f"parameter {name} of {fn.name}() is never used{extra}",
                           key=f"{fn.name}.{name}")
                continue
            shadow = _shadowed(fn, name)
            if shadow is not None:
                yield _hit(ctx, module, shadow,
                           f"parameter {name} of {fn.name}() is overwritten with a literal before it is read, so "
                           "the caller's value is ignored", key=f"{fn.name}.{name}")


def _literal_passed(fn, name):
    for n in ast.walk(fn):
        if isinstance(n, ast.Call):
            kw = kwarg(n, name)
            if kw is not None and constant(kw.value)[0]:
                return kw.value
    return None


def _shadowed(fn, name):
    for stmt in fn.body:
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                ok, _ = constant(stmt.value) if stmt.value is not None else (False, None)
                return stmt.value if ok else None
        if _reads(stmt, name):
            return None
    return None


def _config_target(node):
    """`model.config.<rate>` on a built model: (receiver, key) else None."""
    if not (isinstance(node, ast.Attribute) and dropout_keys.is_rate_key(node.attr)):
        return None
    cfg = node.value
    if not (isinstance(cfg, ast.Attribute) and cfg.attr == "config"):
        return None
    owner = cfg.value
    if isinstance(owner, ast.Name) and owner.id == "self":
        return None
    return (owner, node.attr) if _model_like(owner) else None


@check("dropout-set-after-build")
def dropout_set_after_build(ctx, rule):
    """Modules copy their dropout rate from the config when they are built; writing
    model.config.<dropout> afterwards changes the saved config but not the running model
    (transformers#27315 discussion; facts.md "Transformers configs")."""
    module = _module(ctx)
    if module is None:
        return
    for node in module.nodes():
        found = None
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                found = _config_target(t)
                if found:
                    anchor = t
                    break
        elif isinstance(node, ast.Call) and last_name(node.func) == "setattr" and len(node.args) >= 2:
            obj, key = node.args[0], node.args[1]
            ok, value = constant(key)
            if (ok and isinstance(value, str) and dropout_keys.is_rate_key(value) and isinstance(obj, ast.Attribute)
                    and obj.attr == "config" and _model_like(obj.value)):
                found, anchor = (obj.value, value), node
        if found:
            owner, key = found
            name = dotted(owner) or "the model"
            yield _hit(ctx, module, anchor,
                       f"{name}.config.{key} is set after {name} was built: its layers read the value at "
                       f"construction, so this changes nothing; pass {key}=... to from_pretrained/the config instead",
                       key=f"{name}.config.{key}")


# --- invalid ----------------------------------------------------------------------------------

@check("trainer-args-dropout-kwarg")
def trainer_args_dropout_kwarg(ctx, rule):
    """TrainingArguments and TRL's *Config classes have no dropout field: the call raises
    TypeError (facts.md "Trainers"). The dropout belongs on the model config or LoraConfig."""
    module = _module(ctx)
    if module is None:
        return
    local = {n.name for n in module.nodes() if isinstance(n, ast.ClassDef)}
    for call in module.calls():
        name = last_name(call.func)
        if name not in TRAINING_ARGS or name in local:
            continue
        for kw in call.keywords:
            if kw.arg and dropout_keys.is_rate_key(kw.arg):
                where = "LoraConfig(lora_dropout=...)" if "lora" in kw.arg else "the model config (from_pretrained(..., <key>=...))"
                yield _hit(ctx, module, kw, f"{name} has no field '{kw.arg}': this call raises TypeError; set it on {where}",
                           key=f"{name}.{kw.arg}", end_node=kw.value)


# --- rng ----------------------------------------------------------------------------------------

def _uses_dropout(src, module) -> bool:
    if any((s.p or 0) > 0 or s.reason == "expression" for s in src.settings):
        return True
    for call in module.calls():
        name = last_name(call.func)
        if name in _DROPOUT_MODULES or name in _FUNCTIONAL:
            p = arg_or_kwarg(call, "p", 0 if name in _DROPOUT_MODULES else 1)
            if p is None or not is_zero(p):
                return True
        for kw in call.keywords:
            if kw.arg and dropout_keys.is_rate_key(kw.arg) and not is_zero(kw.value):
                return True
    return False


@check("checkpoint-without-rng-state")
def checkpoint_without_rng_state(ctx, rule):
    """Activation checkpointing re-runs forward in backward; without the saved RNG state the
    recomputed dropout masks differ from the forward ones and gradients are wrong
    (OLMo-core#828, OLMo#702, guided-diffusion#167)."""
    module = _module(ctx)
    if module is None or not _uses_dropout(ctx.source, module):
        return
    for node in module.nodes():
        if isinstance(node, ast.Call) and "checkpoint" in last_name(node.func):
            kw = kwarg(node, "preserve_rng_state")
            if kw is not None and constant(kw.value) == (True, False):
                yield _hit(ctx, module, kw.value, "preserve_rng_state=False in a model with dropout: the recompute "
                           "draws new dropout masks, so gradients do not match the forward pass", key="preserve_rng_state")
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if k is not None and constant(k) == (True, "preserve_rng_state") and constant(v) == (True, False):
                    yield _hit(ctx, module, v, "preserve_rng_state: False in a model with dropout: the recompute "
                               "draws new dropout masks, so gradients do not match the forward pass",
                               key="preserve_rng_state")
        elif isinstance(node, ast.ClassDef) and any(last_name(b) == "Function" for b in node.bases):
            yield from _custom_recompute(ctx, module, node)


def _custom_recompute(ctx, module, cls):
    if "rng" in ast.dump(cls).lower():
        return
    backward = next((m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and m.name == "backward"), None)
    if backward is None or not backward.args.args:
        return
    ctx_name = backward.args.args[0].arg
    for n in ast.walk(backward):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
                and n.func.value.id == ctx_name and re.search(r"fn|func|run", n.func.attr)):
            yield _hit(ctx, module, n, f"{cls.name}.backward re-runs the forward without saving and restoring the "
                       "RNG state: dropout masks in the recompute differ from the forward pass", key=cls.name)
            return


@check("same-seed-every-rank")
def same_seed_every_rank(ctx, rule):
    """A data-parallel script that seeds every rank with the same constant draws the same
    dropout masks on every GPU (transformers#31412, anemoi-core#595)."""
    module = _module(ctx)
    if module is None or not any(m in module.text for m in _DDP_MARKERS) or not _uses_dropout(ctx.source, module):
        return
    for call in module.calls():
        if last_name(call.func) not in _SEEDERS or not call.args:
            continue
        if kwarg(call, "device_specific") is not None and constant(kwarg(call, "device_specific").value) != (True, False):
            continue
        arg = call.args[0]
        names = [n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(arg) if isinstance(n, (ast.Name, ast.Attribute))]
        if any(_RANKISH.search(n) for n in names) or any(isinstance(n, ast.Call) for n in ast.walk(arg)):
            continue
        if any(isinstance(a, ast.If) and any(_RANKISH.search(getattr(n, "id", getattr(n, "attr", "")) or "")
                                             for n in ast.walk(a.test)) for a in module.ancestors(call)):
            continue
        yield _hit(ctx, module, call, f"{last_name(call.func)}({module.text[module.span(arg).start:module.span(arg).end]}) "
                   "gives every data-parallel rank the same seed, so every GPU draws the same dropout masks; "
                   "re-seed with seed + rank once the model is built (weights must stay identical)", key="seed")


@check("preference-dropout-on")
def preference_dropout_on(ctx, rule):
    """Preference and RL objectives compare log-probabilities of the same text; dropout makes
    them noisy and inflates KL (trl#744, trl#3500). TRL disables it in DPO/KTO/ORPO/CPO/reward
    unless told otherwise, but not in GRPO/RLOO."""
    src = ctx.source
    module = _module(ctx)
    if module is None:
        return
    trainer = src.get("trainer")
    if trainer not in frameworks.PREFERENCE_TRAINERS:
        return
    explicit = src.fields.get("disable_dropout")
    if explicit is not None:
        if explicit.value is False:
            yield Hit(src.path, explicit.span, f"disable_dropout=False keeps dropout on in {trainer.upper()} training: "
                      "log-probabilities of policy and reference become noisy", key="disable_dropout")
        return
    if frameworks.TRL_DISABLE_DROPOUT_DEFAULT.get(trainer, False):
        return
    for s in src.settings:
        if s.p is not None and 0 < s.p < 1 and s.reason is None:
            yield Hit(src.path, s.value_span, f"{s.key} = {s.raw} stays on in {trainer.upper()} training (its trainer "
                      "does not disable dropout): log-probabilities become noisy; pass disable_dropout=True or use 0.0",
                      key=s.dotted)
