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
    KERNEL_PACKAGES,
    hit,
    no_grad_region,
    python_driver,
    python_module_of,
    turns_grad_off,
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
            if ok and value is True and not _rate_from_caller(module, call, p) and not _training_only(module, call):
                found = hit(ctx, module, training,
                            f"{dotted(call.func) or name}(..., training=True) drops in eval mode too; pass "
                            "training=self.training (suppress it if inference-time dropout is intended)",
                            Fix("pass self.training", (Edit(module.span(training).start, module.span(training).end,
                                                            "self.training"),), "unsafe"), key=name)
                yield _as_documented(module, call, found) if not _spelled_prenet(module, call) else found.replace(
                    severity="info", fix=None, message=f"{found.message}; left at info because the class is a "
                    "Tacotron-style prenet and says training=True itself: its dropout stays on at inference by "
                    "design (NVIDIA/tacotron2#247)")
            continue
        method = module.enclosing_method(call)
        if method is None or _self_name(method) != "self" or not _may_be_module(module, module.parent(method)):
            continue  # only methods of subclasses of nn.Module have self.training (a sampler has no mode)
        if FUNCTIONAL[name] and (_training_only(module, call) or _no_grad_method(module, call)):
            continue
        span = module.span(call)
        fix = None
        if module.text[span.end - 1:span.end] == ")":
            fix = Fix("add training=self.training", (Edit(span.end - 1, span.end - 1, ", training=self.training"),),
                      "unsafe")
        shown = dotted(call.func) or name
        if FUNCTIONAL[name]:
            msg = (f"{shown}() without training=self.training keeps dropping after model.eval(): "
                   "its `training` argument defaults to True")
            yield _as_documented(module, call, hit(ctx, module, call, msg, fix, key=name))
        else:
            msg = (f"{shown}() without training=self.training never drops: its `training` argument "
                   "defaults to False")
            yield hit(ctx, module, call, msg, fix, key=name)


# --- DRP600: when F.dropout in eval mode is not a bug (#25, wild evaluation) ---------------

_TRAINING_FLAGS = frozenset({"training", "is_training"})
# A flag the author names for dropout at inference on purpose: fairseq's
# FairseqDropout.apply_during_inference (fairseq/modules/fairseq_dropout.py), MC-dropout switches.
_INFERENCE_SWITCH = re.compile(r"inference|eval|test|predict|mc_?drop|monte|always", re.I)
# What a docstring or comment says when dropout at inference is the design: Tacotron 2's prenet
# ("This module always applies dropout even in evaluation", espnet's Prenet and its copies; the
# paper keeps prenet dropout at inference), Monte-Carlo dropout.
_SAYS_INFERENCE = re.compile(
    r"\b(?:even|also|too|always|alway)\b[^.\n]{0,40}?\b(?:in|at|during|for)\s+(?:the\s+)?"
    r"(?:eval\w*|inference|test\w*|decoding|synthesis|generation|prediction|sampling)"
    r"|\b(?:eval\w*|inference|test\w*)(?:\s+time)?\s+(?:too|as\s+well)\b"
    r"|monte[\s-]*carlo|\bmc[\s-]*dropout", re.I)
_NOT_MODULE_BASES = frozenset({"object", "ABC", "Generic", "Protocol", "NamedTuple", "Enum"})


def _is_training_flag(node) -> bool:
    if isinstance(node, ast.Attribute):
        return node.attr in _TRAINING_FLAGS
    return isinstance(node, ast.Name) and node.id in _TRAINING_FLAGS | {"train", "is_train"}


def _holds_only_in_training(test) -> bool:
    """True when `test` can hold only in training mode, or under a flag named for inference-time
    dropout (`self.training or self.apply_during_inference`: an explicit opt-in, not a leak)."""
    if _is_training_flag(test):
        return True
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.Is)):
        ok, value = constant(test.comparators[0])
        return ok and value is True and _is_training_flag(test.left)
    if isinstance(test, ast.BoolOp):
        if isinstance(test.op, ast.And):
            return any(_holds_only_in_training(v) for v in test.values)
        return any(_holds_only_in_training(v) for v in test.values) and all(
            _holds_only_in_training(v) or _inference_switch(v) for v in test.values)
    return False


def _holds_when_not_training(test) -> bool:
    """True when `test` holds whenever the module is in eval mode (`not self.training`)."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _holds_only_in_training(test.operand)
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.Is)):
        ok, value = constant(test.comparators[0])
        return ok and value is False and _is_training_flag(test.left)
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        return any(_holds_when_not_training(v) for v in test.values)
    return False


def _inference_switch(node) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return bool(name) and bool(_INFERENCE_SWITCH.search(name))


def _training_only(module, call) -> bool:
    """The call runs only in training: it sits in the branch of an if (or `a if c else b`) that
    needs the training flag (`if self.dropout is not None and self.training:`), in the else of
    `if not self.training:`, or after an `if not self.training: return ...` in its function."""
    child = call
    for a in module.ancestors(call):
        if isinstance(a, (ast.If, ast.IfExp)):
            in_body = any(n is child for n in (a.body if isinstance(a.body, list) else [a.body]))
            in_else = any(n is child for n in (a.orelse if isinstance(a.orelse, list) else [a.orelse]))
            if (in_body and _holds_only_in_training(a.test)) or (in_else and _holds_when_not_training(a.test)):
                return True
        for field in ("body", "orelse", "finalbody"):
            block = getattr(a, field, None)
            if isinstance(block, list) and any(s is child for s in block):
                for stmt in block[:next(i for i, s in enumerate(block) if s is child)]:
                    if (isinstance(stmt, ast.If) and stmt.body and isinstance(stmt.body[-1], (ast.Return, ast.Raise))
                            and _holds_when_not_training(stmt.test)):
                        return True
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return False
        child = a
    return False


def _may_be_module(module, cls, seen=frozenset()) -> bool:
    """Whether a class can be an nn.Module: it has a base that is not `object` (or ABC...) and not
    a class of this file that cannot be one. A DDIM/PLMS sampler (`class DDIMSampler(object)`)
    has no train/eval mode, so its noise_dropout is a sampling option, never a leak."""
    for base in getattr(cls, "bases", ()):
        name = last_name(base.value if isinstance(base, ast.Subscript) else base)
        if name in _NOT_MODULE_BASES:
            continue
        local = module.index.classes.get(name)
        if local is not None and local is not cls and name not in seen:
            if _may_be_module(module, local, seen | {name}):
                return True
            continue
        return True
    return False


def _no_grad_method(module, call) -> bool:
    """A method decorated with no_grad/inference_mode never runs a training step, so dropout in
    it is applied at inference on purpose (latent diffusion's `p_sample(noise_dropout=...)`)."""
    for fn in module.ancestors(call):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                turns_grad_off(d) for d in fn.decorator_list):
            return True
    return False


# Tacotron 2's prenet keeps its dropout at inference ("applied ... also at inference", Shen et
# al. 2018, 2.3; NVIDIA/tacotron2#247, pitfalls #34); its ports (SpeechBrain's) name the class so.
_PRENET = re.compile(r"prenet", re.I)


def _spelled_prenet(module, call) -> bool:
    """An explicit training=True in a class named as a prenet: the name and the spelled-out flag
    together say the design, where either alone does not (SimpleNet's training=True was a bug,
    pitfalls #27; an undocumented prenet with the default flag stays a warning)."""
    cls = next((a for a in module.ancestors(call) if isinstance(a, ast.ClassDef)), None)
    return cls is not None and bool(_PRENET.search(cls.name))


def _as_documented(module, call, found):
    """Info, with the reason, when the function's or class's docstring (or a comment just above
    the call) says dropout applies at inference too: the documented design, not an oversight."""
    said = _says_inference_dropout(module, call)
    if said is None:
        return found
    return found.replace(severity="info", fix=None,
                         message=f"{found.message}; left at info because {said} says dropout applies at "
                                 "inference on purpose")


def _says_inference_dropout(module, call):
    for a in module.ancestors(call):
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(a, clean=False) or ""
            if "drop" in doc.lower() and _SAYS_INFERENCE.search(doc):
                return f"the docstring of {a.name}"
    lines = module.text.splitlines()
    stmt = module.index.statement(call)
    first = getattr(stmt, "lineno", call.lineno) - 1
    near = [call.lineno - 1] if call.lineno - 1 < len(lines) else []
    i = first - 1
    while 0 <= i < len(lines) and lines[i].lstrip().startswith("#"):
        near.append(i)
        i -= 1
    for i in near:
        comment = lines[i][lines[i].find("#"):] if "#" in lines[i] else ""
        if "drop" in comment.lower() and _SAYS_INFERENCE.search(comment):
            return f"the comment at line {i + 1}"
    return None


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
    kernels = _kernel_names(module)
    for call in module.index.calls_named(kernels):
        name = last_name(call.func)
        if not isinstance(call.func, ast.Name) and name not in ATTENTION:
            continue  # an alias is a module-level name, not an attribute
        kernel = kernels.get(name) if isinstance(call.func, ast.Name) else name
        spec = ATTENTION[kernel] if kernel is not None else (ATTENTION[name][0], None)  # unknown: keyword only
        expr = arg_or_kwarg(call, *spec)
        if expr is None or _gated(module, call, expr) or _dead_branch(module, call) or _rate_zero_here(module, call, expr):
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


def _kernel_names(module) -> dict:
    """Callee name -> the ATTENTION kernel a call by that name runs, or None when this module
    binds the name to something whose signature is not known. Module-level aliases and
    `import ... as` are followed (mPLUG-Owl's `flash_attn_func = flash_attn_unpadded_func` is the
    varlen kernel, whose dropout_p is the 8th argument, not the 4th); a name imported from
    elsewhere or defined here is unknown, and an unknown signature is read by keyword only."""
    if "attention_kernels" in module.cache:
        return module.cache["attention_kernels"]
    bound = {}  # local name -> set of (kernel name, or a local name it aliases, or None)
    for node in module.index.of(ast.ImportFrom):
        home = node.module or ""
        for a in node.names:
            local = a.asname or a.name
            known = (node.level == 0 and home.split(".")[0] in KERNEL_PACKAGES and "triton" not in home
                     and a.name in ATTENTION)
            if known or local in ATTENTION:
                bound.setdefault(local, set()).add(("kernel", a.name) if known else None)
    for stmt in _module_level(module.tree.body):
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and stmt.name in ATTENTION:
            bound.setdefault(stmt.name, set()).add(None)
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            value = stmt.value
            if constant(value) == (True, None):
                continue  # `flash_attn_func = None` when the import fails
            target = stmt.targets[0].id
            if isinstance(value, ast.Name):
                bound.setdefault(target, set()).add(("alias", value.id))
            elif target in ATTENTION:
                bound.setdefault(target, set()).add(None)

    def resolve(name, seen):
        if name not in bound:
            return name if name in ATTENTION else None
        found = set()
        for entry in bound[name]:
            if entry is None or entry[1] in seen:
                return None
            found.add(entry[1] if entry[0] == "kernel" else resolve(entry[1], seen | {name}))
        return found.pop() if len(found) == 1 else None

    names = {name: name for name in ATTENTION}
    for name in bound:
        kernel = resolve(name, frozenset())
        if kernel is not None or name in ATTENTION:
            names[name] = kernel
    module.cache["attention_kernels"] = names
    return names


def _module_level(body):
    """Statements run at import: the module body and the blocks of its try/if statements."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (ast.Try, ast.If)):
            yield from _module_level(stmt.body + stmt.orelse + getattr(stmt, "finalbody", [])
                                     + [s for h in getattr(stmt, "handlers", []) for s in h.body])


def _dead_branch(module, call) -> bool:
    """The call sits under `if False:` (or `if 0:`, or the else of `if True:`): it never runs."""
    child = call
    for a in module.ancestors(call):
        if isinstance(a, ast.If):
            ok, value = constant(a.test)
            if ok and ((not value and any(s is child for s in a.body)) or (value and any(s is child for s in a.orelse))):
                return True
        child = a
    return False


def _rate_zero_here(module, call, expr) -> bool:
    """The branch that makes the call runs only when the rate is 0: `if self.p == 0:`, or a flag
    assigned with such a test (Bark's `self.flash = hasattr(F, "scaled_dot_product_attention")
    and self.dropout == 0.0`), so the kernel never drops, in eval or in training."""
    child = call
    for a in module.ancestors(call):
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return False
        if isinstance(a, (ast.If, ast.IfExp)) and any(
                n is child for n in (a.body if isinstance(a.body, list) else [a.body])):
            if _says_zero(module, call, a.test, ast.dump(expr), 0):
                return True
        child = a
    return False


def _says_zero(module, call, test, rate: str, depth: int) -> bool:
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_says_zero(module, call, v, rate, depth) for v in test.values)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return ast.dump(test.operand) == rate
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.Is)):
        sides = (test.left, test.comparators[0])
        for one, other in (sides, sides[::-1]):
            ok, value = constant(other)
            if ok and value == 0 and not isinstance(value, bool) and ast.dump(one) == rate:
                return True
        return False
    if (depth == 0 and isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name)
            and test.value.id == "self"):
        cls = module.parent(module.enclosing_method(call)) if module.enclosing_method(call) is not None else None
        writes = [s for s in module.index.assigns.get(f"self.{test.attr}", ())
                  if cls is not None and any(a is cls for a in module.ancestors(s))]
        return bool(writes) and all(getattr(s, "value", None) is not None
                                    and _says_zero(module, call, s.value, rate, depth + 1) for s in writes)
    return False


# --- eval-mode: model.eval()/train() toggles ----------------------------------------------
# Built on the mode flow (flow.py) and on what is known about each model (models.py): a rule
# fires for a trained model that has dropout (warning) or may have it (info), never for a
# frozen/reference model, an object that is no model, or a model without dropout.

_SPREAD = frozenset({"mean", "var", "std", "std_mean", "var_mean", "nanmean", "nanstd", "nanvar", "quantile"})


def _inference_call(module, call):
    """(model key, what) when a call runs a model for inference: .generate() anywhere, a
    forward pass under no_grad/inference_mode/set_grad_enabled(False); else None. Not when the
    method it runs (generate, or forward for a direct call) switches the model to eval itself:
    the mode before the call does not reach the passes."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "generate":
        key = receiver_key(func.value)
        if not models.is_model(module, key) or _method_switches_itself(module, key, "generate"):
            return None
        return key, "generate()"
    if isinstance(func, (ast.Name, ast.Attribute)):
        key = receiver_key(func)
        if (key and models.is_model(module, key) and no_grad_region(module, call) is not None
                and not _method_switches_itself(module, key, "forward")):
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
        if what != "generate()" and _in_training_step(module, call) and (
                _cached(module, call) or _feeds_another_network(module, call, key)):
            continue  # features cached for the training step itself, or samples for another network's step
        if what != "generate()" and (_bracketed(module, call, key, [n for _, n in pairs])
                                     or _recalibrates_norm(module, call, [n for _, n in pairs])):
            continue  # train() on purpose for these passes (batch-norm statistics)
        verdict, severity = _judged(module, key, ctx.setup)
        if severity is None:
            continue
        cause = max((n for _, n in pairs), key=lambda n: (n.lineno, n.col_offset))
        what = "generate()" if what == "generate()" else "a forward pass under no_grad"
        yield Hit(src.path, module.span(call),
                  f"{key} runs {what} in train mode: {_cited(module, cause)} (line {cause.lineno}) is not "
                  f"followed by {key}.eval(), so dropout is still active{_dropout_note(verdict)}",
                  key=key, severity=severity)
    if "Pipeline" in module.text:
        yield from _pipeline_hits(src, module, fl, ctx.setup)


# Diffusers (and similar) pipelines built from the models a script trains, for validation images.
_PIPELINE = re.compile(r"Pipeline\w*$")


def _bracketed(module, call, key: str, causes) -> bool:
    """The train() that reaches a no_grad pass was put there for it: an explicit `key.train()`
    earlier in the same function, a switch back (`key.eval()`, `train(False)`,
    `train(was_training)`) later in it, and no training call from the one to the other. Passes
    run in train mode on purpose are written so: recomputing batch-norm statistics
    (torch.optim.swa_utils.update_bn, BigGAN's accumulate_standing_stats) or drawing
    Monte-Carlo dropout samples. A train() in another function (the caller's mode), one never
    undone, or one followed by an optimizer step (set for training, not for the pass) still
    leaves the evaluation in train mode by mistake."""
    fn = _own_train(module, call, causes)
    if fn is None:
        return False
    at = (call.lineno, call.col_offset)
    same = set(flow(module).same(key)) | {key}
    restores = [c for c in ast.walk(fn) if isinstance(c, ast.Call) and module.enclosing_function(c) is fn
                and (c.lineno, c.col_offset) > at and toggle(c) is not None
                and toggle(c)[0] in ("eval", "unknown") and receiver_key(toggle(c)[1]) in same]
    if not restores:
        return False
    start = min((c.lineno, c.col_offset) for c in causes)
    end = min((c.lineno, c.col_offset) for c in restores)
    return not any(module.enclosing_function(c) is fn and start < (c.lineno, c.col_offset) < end
                   for c in models.training_calls(module))


def _own_train(module, call, causes):
    """The function in which every train() reaching `call` is an explicit call before it, else None."""
    fn = module.enclosing_function(call)
    if fn is None or isinstance(fn, ast.Lambda):
        return None
    at = (call.lineno, call.col_offset)
    for cause in causes:
        t = toggle(cause) if isinstance(cause, ast.Call) else None
        if (t is None or t[0] != "train" or module.enclosing_function(cause) is not fn
                or (cause.lineno, cause.col_offset) >= at):
            return None
    return fn


# A function that resets or recalibrates batch-norm statistics: `net.apply(reset_batch_norm)`,
# `m.reset_running_stats()`, `apply(calibrate_batch_norm_momentum)`, torch's update_bn
_NORM_RESET = re.compile(r"(?i)^(update_bn|reset_running_stats|\w*(reset|calibrat|recalib|recompute|accumulate)\w*"
                         r"(bn|batch_?norm|norm_stat|running_stat|standing_stat)\w*|\w*(bn|batch_?norm)\w*"
                         r"(reset|calibrat|recalib|recompute|stat)\w*)$")


def _recalibrates_norm(module, call, causes) -> bool:
    """The train() that reaches a no_grad pass was put there to recompute batch-norm statistics,
    and the function says so by resetting or recalibrating them (imaginaire's
    `recalculate_batch_norm_statistics`: `net_G.train()`, `net_G.apply(reset_batch_norm)`, then
    no_grad passes over the data, with no eval() after: its callers switch to eval themselves)."""
    fn = _own_train(module, call, causes)
    if fn is None:
        return False
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call):
            continue
        name = last_name(node.func) or ""
        if name == "apply" and node.args:
            name = last_name(node.args[0]) or ""
        if _NORM_RESET.match(name):
            return True
    return False


def _pipeline_models(module, call):
    """(pipeline class, [(keyword, model key)]) when a call builds a pipeline from the models of
    this file: `StableDiffusionPipeline.from_pretrained(base, unet=accelerator.unwrap_model(unet),
    text_encoder=text_encoder)` or `Pipeline(unet=unet, ...)`. The pipeline registers the module
    objects it is given as they are: neither the constructor nor __call__ switches them to eval
    (diffusers pipeline_utils.py: from_pretrained calls eval() only on the parts it loads itself)."""
    func = call.func
    owner = func.value if isinstance(func, ast.Attribute) and func.attr == "from_pretrained" else func
    name = last_name(owner)
    if not name or not _PIPELINE.search(name) or not call.keywords:
        return None
    found = []
    for kw in call.keywords:
        if kw.arg is None:
            continue
        key = receiver_key(kw.value)
        if key and models.is_model(module, key) and not models.is_frozen(module, key):
            found.append((kw.arg, key))
    return (name, found) if found else None


def _pipeline_hits(src, module, fl, setup):
    """Validation through a pipeline built from models still in train mode (diffusers' training
    scripts build one every validation epoch): the trained text encoder's dropout (T5: 0.1) or
    the LoRA adapter's runs in the validation images. Said only where the dropout is known: a
    diffusers UNet has none, so a guess would be noise."""
    for call in module.calls():
        found = _pipeline_models(module, call)
        if found is None:
            continue
        name, parts = found
        for keyword, key in parts:
            pairs = fl.at.get(call, {}).get(key)
            if not pairs or any(mode != "train" for mode, _ in pairs):
                continue
            known = models.known_dropout(module, key, setup) == models.NONZERO
            by_type = None if known else _type_default_drops(module, key)
            if not known and by_type is None:
                continue
            cause = max((n for _, n in pairs), key=lambda n: (n.lineno, n.col_offset))
            yield Hit(src.path, module.span(call),
                      f"{name} is built for validation from {key} in train mode ({keyword}={key}): "
                      f"{_cited(module, cause)} (line {cause.lineno}) is not followed by {key}.eval(), so its "
                      f"dropout runs in the validation outputs; call {key}.eval() before (and {key}.train() after)"
                      + (f" ({by_type})" if by_type else ""),
                      key=f"{key}@pipeline", severity="info" if by_type else "")


def _type_default_drops(module, key: str) -> str | None:
    """`T5EncoderModel.from_pretrained(args.base, ...)`: the class fixes the model type, whose
    defaults drop (t5: dropout_rate 0.1), while the checkpoint's own config.json, which could
    say otherwise, is not here. A note for info, else None."""
    cls, model_type = models.pretrained_class_type(models.binding(module, key))
    if model_type is None or models.type_dropout(model_type, ()) != models.NONZERO:
        return None
    return f"{cls} builds a {model_type}, which drops by default; the checkpoint's config.json decides"


def _cached(module, call) -> bool:
    """The no_grad forward's outputs are stored for later (appended to a list, written into a
    dict): open_clip's gradient accumulation caches each micro-batch's features under no_grad,
    in train mode on purpose, and recomputes the batch with gradients against them."""
    block = next((a for a in module.ancestors(call) if isinstance(a, (ast.With, ast.AsyncWith))), None)
    stmt = module.index.statement(call)
    if block is None or not isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        return False
    names = {n.id for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
             for n in ast.walk(t) if isinstance(n, ast.Name)}
    for node in _own_statements(block):  # names derived from the outputs, in order
        source = node.iter if isinstance(node, ast.For) else getattr(node, "value", None)
        if source is not None and _reads_any(source, names) and isinstance(node, (ast.For, ast.Assign)):
            targets = [node.target] if isinstance(node, ast.For) else node.targets
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    for node in ast.walk(block):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("append", "extend", "insert") and any(_reads_any(a, names) for a in node.args)):
            return True
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Subscript) for t in node.targets)
                and _reads_any(node.value, names)):
            return True
    return False


def _cited(module, call) -> str:
    """How a message names the call it cites: `model.train()` or `helper()`."""
    func = call.func
    text = dotted(func) or last_name(func)
    if call.args and isinstance(func, ast.Attribute) and func.attr == "train":
        ok, value = constant(call.args[0])
        if ok and isinstance(value, bool):
            return f"{text}({value})"  # train(False) is an eval(): quote it as written
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
    if not any(last_name(c.func) == "step" for c in steps) and not _updates_by_hand(module):
        steps = []  # backward() with nothing that applies the gradients: a gradient test, not training
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
                    if key != "self" and not _steps_train(module, step, key, steps):
                        continue  # another network's phase (a GAN's discriminator step after G.eval())
                    if _restores_mode(module, node):
                        continue
                    if key != "self" and _ends_its_training(module, node, key):
                        continue  # sd-scripts' stop_text_encoder_training: eval plus frozen weights
                    if key != "self" and _probe_branch(module, node, key):
                        continue  # vicreg's linear probe: eval() where the backbone is frozen
                    verdict, severity = _judged(module, key, ctx.setup) if key != "self" else _judged_self(module, node)
                    if severity is None:
                        continue
                    reported.add(node)
                    yield Hit(src.path, module.span(node),
                              f"{_cited(module, node)} switches {key} to eval mode inside the training loop and "
                              f"no train() follows on some path to {_cited(module, step)} (line {step.lineno}): "
                              f"the following optimizer steps train with dropout off{_dropout_note(verdict)}",
                              key=key, severity=severity)


def _updates_by_hand(module) -> bool:
    """Weights updated from their gradients without an optimizer (`p.data -= lr * p.grad`,
    `p.add_(p.grad, alpha=-lr)`): a backward() there is training. Without this or an optimizer
    step, a backward() computes gradients only (LoRA's copy of Transformers' head-masking test
    checks the gradient of a head mask in eval mode)."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.AugAssign) and any(isinstance(n, ast.Attribute) and n.attr == "grad"
                                                   for n in ast.walk(node.value)):
            return True
        if (isinstance(node, ast.Call) and last_name(node.func) in ("add_", "sub_", "copy_")
                and any(isinstance(n, ast.Attribute) and n.attr == "grad" for a in node.args for n in ast.walk(a))):
            return True
    return False


def _feeds_another_network(module, call, key: str) -> bool:
    """The no_grad pass comes before an optimizer step that does not update `key` (a GAN's
    discriminator phase: `fake = G(z)` under no_grad, then opt_d.step()): its output is another
    network's training input, drawn in the mode that network trains against."""
    steps = [c for c in models.training_calls(module) if last_name(c.func) == "step"
             and (c.lineno, c.col_offset) > (call.lineno, call.col_offset)]
    if not steps:
        return False
    first = min(steps, key=lambda c: (c.lineno, c.col_offset))
    return isinstance(first.func, ast.Attribute) and receiver_key(first.func.value) in models.optimizer_models(module) \
        and not _steps_train(module, first, key, steps)


def _ends_its_training(module, toggle_call, key: str) -> bool:
    """The eval() comes with frozen weights for the same model in the same block
    (`text_encoder.train(False); text_encoder.requires_grad_(False)`, or a loop setting its
    parameters' requires_grad to False): training of that network stops there on purpose,
    and the later optimizer steps train the others."""
    blocks = []  # the statement's block and the enclosing ones, up to the loop (sd-scripts nests
    # the train(False) in `if not args.gradient_checkpointing:` beside the requires_grad_)
    for stmt in (a for a in module.ancestors(toggle_call) if isinstance(a, ast.stmt)):
        if isinstance(stmt, (ast.For, ast.While, ast.AsyncFor, ast.FunctionDef, ast.AsyncFunctionDef)) or len(blocks) == 3:
            break
        parent = module.parent(stmt)
        body = next((b for b in (getattr(parent, "body", None), getattr(parent, "orelse", None))
                     if isinstance(b, list) and stmt in b), None)
        if body is not None:
            blocks.append(body)
    return any(models.freezes(n, key) for body in blocks for other in body for n in ast.walk(other))


def _probe_branch(module, toggle_call, key: str) -> bool:
    """The eval() sits in the branch of an option that also freezes a part the model is built
    from (vicreg's evaluate.py: `model = nn.Sequential(backbone, head)`; `if args.weights ==
    "freeze": backbone.requires_grad_(False)`; in the loop `elif args.weights == "freeze":
    model.eval()`): the linear-probe protocol, which keeps the frozen backbone's batch norm and
    dropout fixed while the head trains. The same eval() with no freeze under its condition,
    or a freeze under another condition, is still an eval the training forgot to undo."""
    test = next((a.test for a, below in zip(module.ancestors(toggle_call), _with_self(toggle_call, module))
                 if isinstance(a, ast.If) and below in a.body), None)
    built = models.binding(module, key)
    if test is None or not isinstance(built, ast.Call):
        return False
    parts = {receiver_key(a) for a in built.args if isinstance(a, (ast.Name, ast.Attribute))} - {"", key}
    condition = ast.dump(test)
    return any(ast.dump(branch.test) == condition and any(models.freezes(n, part) for stmt in branch.body
                                                            for n in ast.walk(stmt) for part in parts)
               for branch in module.index.of(ast.If))


def _with_self(node, module):
    """node, then each of its ancestors: the child beside each ancestor of `module.ancestors(node)`."""
    yield node
    yield from module.ancestors(node)


def _steps_train(module, step, key: str, steps) -> bool:
    """Whether a training call updates `key`: an optimizer step does when its optimizer holds
    key's parameters, a backward when the first optimizer step after it does. Unknown
    optimizers count as training everything (issue #31: each network of a GAN or a teacher
    setup is judged by the optimizer that steps in its phase)."""
    held = models.optimizer_models(module)
    if last_name(step.func) == "backward":
        later = [c for c in steps if last_name(c.func) == "step" and (c.lineno, c.col_offset) > (step.lineno, step.col_offset)]
        if not later:
            return True
        step = min(later, key=lambda c: (c.lineno, c.col_offset))
    if last_name(step.func) != "step" or not isinstance(step.func, ast.Attribute):
        return True
    keys = held.get(receiver_key(step.func.value))
    if keys is None:
        return True
    tail = key.rsplit(".", 1)[-1]
    return key in keys or tail in {k.rsplit(".", 1)[-1] for k in keys}


def _judged_self(module, node):
    """(known dropout, severity) for `self`: the nn.Module class of this file whose method runs
    the loop (a Keras-style fit() on the model itself, DeepCTR-Torch's BaseModel.fit)."""
    cls = module.parent(module.enclosing_method(node)) if module.enclosing_method(node) is not None else None
    verdict = models.UNKNOWN
    if isinstance(cls, ast.ClassDef) and _may_be_module(module, cls):
        verdict = models.class_dropout(module, cls)
    return verdict, {models.NONZERO: "", models.UNKNOWN: "info"}.get(verdict)


def _restores_mode(module, node) -> bool:
    """The helper that switched to eval records the mode first and switches back to train (s3prl's
    runner.evaluate: `trainings.append(entry.model.training)`, then `if training:
    entry.model.train()`): the restore is conditional only on the mode it found."""
    fn = _helper(module, node)
    if fn is None:
        return False
    reads_mode = any(isinstance(n, ast.Attribute) and n.attr == "training" and isinstance(n.ctx, ast.Load)
                     for n in ast.walk(fn))
    return reads_mode and any(isinstance(n, ast.Call) and (toggle(n) or ("",))[0] in ("train", "unknown")
                              for n in ast.walk(fn))


def _helper(module, call):
    """The function of this file a call runs: `name(...)` or `self.name(...)` in a method."""
    func = getattr(call, "func", None)
    if isinstance(func, ast.Name):
        return module.index.functions.get(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
        method = module.enclosing_method(call)
        cls = module.parent(method) if method is not None else None
        return module.index.methods.get(cls.name, {}).get(func.attr) if isinstance(cls, ast.ClassDef) else None
    return None


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
        if pairs and all(mode == "train" for mode, _ in pairs):
            continue  # a train() reaches it on every path: DRP602 says so, citing that call (one finding)
        region = no_grad_region(module, call)
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
        region = (no_grad_region(module, call), key)
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
            if _method_switches_itself(module, key, "forward"):
                return None  # calling the model runs its forward, which switches to eval itself
            if no_grad_region(module, call) is not None:
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
    """The model's own class (of this file or of a sibling module) defines the method and
    switches to eval in it: `self.eval()` in its body, or a decorator named for it
    (DALLE-pytorch's @eval_decorator). For a direct call of the model the method is `forward`
    (DALLE2-pytorch's DALLE2.forward is decorated so)."""
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
    if fn is None:
        # a script's top-level loop: a training call in the same loop makes the pass part of
        # the step (a GAN's discriminator phase samples G under no_grad, in train mode on purpose)
        loop = _loop_in(module, call, None)
        return loop is not None and any(module.enclosing_function(c) is None and _inside(module, c, loop)
                                        for c in models.training_calls(module))
    if isinstance(fn, ast.Lambda):
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
