"""Hand-written dropout, judged statically (issue #26; the probe's DRP802/DRP803 measure the
same bugs at run time).

PyTorch's dropout is inverted: training keeps each unit with probability 1-p and scales it
by 1/(1-p), and eval is the identity. The textbook form is the other consistent choice: keep
without scaling in training, multiply by (1-p) at inference. A hand-written layer must pick
one; picking both shrinks every eval output by (1-p) (double scaling), picking neither makes
train and eval differ in expectation by (1-p). So the scaling is judged where both sides are
visible: a module or function that draws a keep mask and branches on its training flag.
Three narrower slips are checked beside it: a manual `* (1 - p)` on top of the built-in
(already inverted) nn.Dropout/F.dropout, a keep mask built with a legacy tensor constructor
given a shape tuple (`torch.FloatTensor((B, 1, 1, 1))` is a vector holding those four
numbers), and a keep mask drawn with the drop rate (`bernoulli(p)` keeps with probability p).

A mask "keeps with probability q" when it is `bernoulli(q)` (`.bernoulli_(q)`,
np.random.binomial(1, q)), `rand(...) < q`, or `rand(...) > 1 - q`; the rate names follow
knowledge.dropout_keys (a keep_prob is the opposite of a drop rate, pitfalls #50).
"""

from __future__ import annotations

import ast
import re

from auditor.checks.base import check
from auditor.checks.code.common import DROPOUT_MODULES, dropout_param, hit, python_module_of, rate_name
from auditor.knowledge import dropout_keys
from auditor.sources.python_facts import arg_or_kwarg, constant, dotted, last_name, mentions_training

_RAND = frozenset({"rand", "rand_like", "random", "uniform", "random_sample"})
_LEGACY = frozenset({"FloatTensor", "Tensor", "tensor", "HalfTensor", "DoubleTensor", "BFloat16Tensor",
                     "ByteTensor", "BoolTensor", "LongTensor", "IntTensor"})
_FUNCTIONAL = frozenset({"dropout", "dropout1d", "dropout2d", "dropout3d"})


# --- what one function does --------------------------------------------------------------------

class _Mask:
    """A keep mask drawn in a function: the node, the expression of its keep probability as
    written (`keep`), or of one minus it (`drop`)."""

    __slots__ = ("node", "keep", "drop")

    def __init__(self, node, keep=None, drop=None):
        self.node = node
        self.keep = keep
        self.drop = drop


def _mask_of(node):
    """A _Mask when `node` draws a keep mask, else None."""
    if isinstance(node, ast.Call):
        name = last_name(node.func)
        if name in ("bernoulli", "bernoulli_"):
            if name == "bernoulli_":
                q = arg_or_kwarg(node, "p", 0)
            else:
                q = arg_or_kwarg(node, "p", 1)
                if q is None and node.args:
                    q = _probability_tensor(node.args[0])
            return _Mask(node, keep=q) if q is not None else None
        if name == "binomial" and len(node.args) >= 2 and constant(node.args[0]) == (True, 1):
            return _Mask(node, keep=node.args[1])
        return None
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, op, right = node.left, node.ops[0], node.comparators[0]
        if _is_rand(left):
            if isinstance(op, (ast.Lt, ast.LtE)):
                return _Mask(node, keep=right)
            if isinstance(op, (ast.Gt, ast.GtE)):
                return _Mask(node, drop=right)
        if _is_rand(right):
            if isinstance(op, (ast.Gt, ast.GtE)):
                return _Mask(node, keep=left)
            if isinstance(op, (ast.Lt, ast.LtE)):
                return _Mask(node, drop=left)
    return None


def _probability_tensor(node):
    """`torch.full_like(x, q)`, `torch.ones_like(x) * q`, `x.new_full(shape, q)`: q."""
    if isinstance(node, ast.Call) and last_name(node.func) in ("full", "full_like", "new_full") and len(node.args) >= 2:
        return node.args[1]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for a, b in ((node.left, node.right), (node.right, node.left)):
            if isinstance(a, ast.Call) and last_name(a.func) in ("ones_like", "ones", "new_ones"):
                return b
    return None


def _is_rand(node) -> bool:
    return isinstance(node, ast.Call) and last_name(node.func) in _RAND and (
        dotted(node.func).split(".")[0] in ("torch", "np", "numpy", "random") or isinstance(node.func, ast.Attribute))


def _one_minus(node):
    """`1 - e` / `1.0 - e` -> e, else None."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and constant(node.left) in ((True, 1), (True, 1.0)):
        return node.right
    return None


def _same(a, b) -> bool:
    if a is None or b is None:
        return False
    if ast.dump(a) == ast.dump(b):
        return True
    na, nb = rate_name(a), rate_name(b)
    return na is not None and na == nb


def _is_drop_rate(node, owner_name: str) -> bool:
    """A rate named as a drop probability: dropout, drop_rate, drop_prob... or `p` inside
    something named like dropout (nn.Dropout's own convention)."""
    name = rate_name(node)
    if not name or dropout_keys.is_keep_probability(name):
        return False
    if dropout_param(name):
        return True
    return name in ("p", "prob", "rate") and "drop" in owner_name.lower()


def _is_keep_rate(node) -> bool:
    name = rate_name(node)
    return bool(name) and (dropout_keys.is_keep_probability(name) or name in ("keep", "keep_p", "p_keep", "retain_prob"))


def _scalings(region) -> list:
    """Expressions a region divides by (`/ e`, `* (1 / e)`, `.div(e)`, `/= e`)."""
    found = []
    for stmts in region:
        for n in ast.walk(stmts):
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div):
                found.append(n.right)
            elif isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Div):
                found.append(n.value)
            elif isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult):
                for side in (n.left, n.right):
                    if isinstance(side, ast.BinOp) and isinstance(side.op, ast.Div) and constant(side.left)[0]:
                        found.append(side.right)
            elif isinstance(n, ast.Call) and last_name(n.func) in ("div", "div_", "true_divide") and n.args:
                found.append(n.args[0])
    return found


def _multipliers(region) -> list:
    """(BinOp or AugAssign node, factor) for each `* e` in a region."""
    found = []
    for stmts in region:
        for n in ast.walk(stmts):
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult):
                found += [(n, n.left), (n, n.right)]
            elif isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Mult):
                found.append((n, n.value))
            elif isinstance(n, ast.Call) and last_name(n.func) in ("mul", "mul_") and n.args:
                found.append((n, n.args[0]))
    return found


def _regions(fn):
    """(train statements, eval statements or None) of a function that branches on its
    training flag; (body, None) when it does not."""
    body = fn.body
    for i, stmt in enumerate(body):
        if isinstance(stmt, ast.If) and mentions_training(stmt.test):
            negated = isinstance(stmt.test, ast.UnaryOp) and isinstance(stmt.test.op, ast.Not)
            yes, no = (stmt.orelse or body[i + 1:], stmt.body) if negated else (stmt.body, stmt.orelse or body[i + 1:])
            return body[:i] + list(yes), list(no)
        if isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.IfExp) and mentions_training(stmt.value.test):
            test = stmt.value.test
            negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
            yes, no = (stmt.value.orelse, stmt.value.body) if negated else (stmt.value.body, stmt.value.orelse)
            return body[:i] + [ast.Expr(yes)], [ast.Expr(no)]
    return body, None


def _returns_input(fn, region) -> bool:
    """The eval region hands back an input unchanged (`return x`)."""
    params = {a.arg for a in fn.args.posonlyargs + fn.args.args}
    for stmt in region:
        value = stmt.value if isinstance(stmt, (ast.Return, ast.Expr)) else None
        if isinstance(value, ast.Name) and value.id in params:
            return True
    return False


def _functions(module):
    return module.index.of(ast.FunctionDef, ast.AsyncFunctionDef)


def _owner_name(module, fn) -> str:
    cls = module.parent(fn)
    return f"{cls.name}.{fn.name}" if isinstance(cls, ast.ClassDef) else fn.name


def _masks(module, fn) -> list:
    """The keep masks a function draws; a comparison is a mask only as a value (assigned,
    multiplied, converted), not as the test of an if (`if random() < p: continue` drops a
    layer with probability p, which is right)."""
    found = []
    for node in ast.walk(fn):
        m = _mask_of(node)
        if m is None:
            continue
        if isinstance(node, ast.Compare) and _is_test(module, node):
            continue
        use = _flag_use(module, node) if isinstance(node, ast.Compare) else None
        if use == "skip":
            continue
        if use == "drop":
            m = _Mask(node, keep=m.drop, drop=m.keep)  # True marks what is dropped: `rand < p` is right
        found.append(m)
    return found


def _flag_use(module, node):
    """How a comparison that draws against a rate is used, from the name it is stored under and
    its uses: "drop" when it marks what is dropped (DiT's `drop_ids = torch.rand(n) < p` then
    `torch.where(drop_ids, null, labels)`; sd-scripts' `drop_l = ... and random.random() < rate`
    then `if drop_l:` zeroing; F5-TTS's `drop_audio_cond = random() < p` passed on), "skip" for a
    scalar coin flip that never multiplies anything (it decides a branch, it is no mask), None to
    judge it as a mask. A flag that multiplies (ai-toolkit's LoKr: `drop = rand(n) < rank_dropout;
    weight *= drop`) keeps what it marks, whatever its name: that is the bug the rule is for.
    A comparison that selects between the original and a replacement (`torch.where`, `masked_fill`)
    is read by its branches, before any name: see _selection."""
    side = _selection(module, node)
    if side is not None:
        return side
    stmt = None
    child = node
    for a in module.ancestors(node):
        if isinstance(a, ast.Assign):
            stmt = a if a.value is child else None
            break
        if not _carries(a, child):
            break
        child = a
    scalar = _scalar_draw(node)
    if stmt is None or len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
        return None
    name = stmt.targets[0].id
    fn = module.enclosing_function(node) or module.tree
    uses = [n for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]
    blends = {_blend(module, use) for use in uses} - {None}
    if len(blends) == 1:  # `m * null + (1 - m) * labels`: a selection written as arithmetic
        return "drop" if blends.pop() == "drop" else None
    if any(_multiplies(module, use) for use in uses):
        return None
    sides = {_selection(module, use) for use in uses} - {None}
    if len(sides) == 1:  # `mask = rand(n) < p; labels = torch.where(mask, null, labels)`: a drop mask by its use
        side = sides.pop()
        return "drop" if side == "drop" else None
    if "drop" in name.lower() and "keep" not in name.lower():
        return "drop"
    return "skip" if scalar else None


def _blend(module, use):
    """The side ("drop"/"keep") a 0/1 flag marks in a blend `m * a + (1 - m) * b`, which takes
    `a` where m is 1 and `b` elsewhere, like `torch.where(m, a, b)` (MAR's
    `class_embedding = drop_latent_mask * self.fake_latent + (1 - drop_latent_mask) * class_embedding`
    drops labels with probability p, right as written); None when `use` is not in such a blend or
    the branches do not say which is the original (see _original)."""
    def complement(node) -> bool:  # `1 - m`
        return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and isinstance(node.left, ast.Constant) \
            and node.left.value == 1 and isinstance(node.right, ast.Name) and node.right.id == use.id

    def flag(node) -> bool:
        return isinstance(node, ast.Name) and node.id == use.id

    node, parent = use, module.parent(use)
    negated = complement(parent)
    if negated:
        node, parent = parent, module.parent(parent)
    if not (isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Mult)):
        return None
    value = parent.right if parent.left is node else parent.left
    add = module.parent(parent)
    if not (isinstance(add, ast.BinOp) and isinstance(add.op, ast.Add)):
        return None
    other = add.right if add.left is parent else add.left
    if not (isinstance(other, ast.BinOp) and isinstance(other.op, ast.Mult)):
        return None
    wanted = flag if negated else complement
    factor = next((f for f in (other.left, other.right) if wanted(f)), None)
    if factor is None:
        return None
    other_value = other.right if other.left is factor else other.left
    taken, rest = (other_value, value) if negated else (value, other_value)  # `taken` where m is 1
    original = _original(module, add, taken, rest)
    return None if original is None else ("keep" if original is taken else "drop")


def _flip(side):
    return "keep" if side == "drop" else "drop"


def _negates(node) -> bool:
    """`~mask`, `not flag`, `mask.logical_not()`: the value marks the other units."""
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, (ast.Invert, ast.Not))
    return isinstance(node, ast.Attribute) and node.attr in ("logical_not", "logical_not_")


def _selection(module, node):
    """How a boolean flag picks values where it is used: "drop" when its True units take the
    replacement (`torch.where(flag, null, labels)`, `x.masked_fill(flag, 0)`), "keep" when they
    keep the original (`torch.where(flag, labels, null)`, `x.where(flag, 0)`), None when it selects
    nothing or the branches do not say which is the original."""
    child = node
    flipped = False
    for a in module.ancestors(node):
        side = _selects(module, a, child)
        if side is not None:
            return _flip(side) if flipped else side
        indexed = isinstance(a, ast.Subscript) and a.value is child  # `mask[:, None]`
        if isinstance(a, ast.stmt) or not (indexed or _carries(a, child)):
            return None
        flipped ^= _negates(a)
        child = a
    return None


def _selects(module, call, cond):
    """The side ("drop"/"keep") that `cond` marks when it is the condition of a selection `call`,
    else None. `torch.where(c, a, b)` takes `a` where c holds and `b` elsewhere: c is a drop mask
    when the original is `b` (VAR's `label_B = torch.where(rand(B) < p, num_classes, label_B)`,
    classifier-free guidance dropping labels with probability p, right as written), a keep mask
    when it is `a`. `x.masked_fill(c, v)` replaces where c holds (a drop mask); `x.where(c, v)`
    (the method, two arguments) keeps x where c holds (a keep mask)."""
    if not isinstance(call, ast.Call):
        return None
    name = last_name(call.func)
    if name in ("masked_fill", "masked_fill_"):
        return "drop" if arg_or_kwarg(call, "mask", 0) is cond else None
    if name != "where" or arg_or_kwarg(call, "condition", 0) is not cond:
        return None
    a, b = arg_or_kwarg(call, "input", 1), arg_or_kwarg(call, "other", 2)
    if a is not None and b is not None:
        original = _original(module, call, a, b)
        return None if original is None else ("keep" if original is a else "drop")
    if isinstance(call.func, ast.Attribute) and a is not None and len(call.args) == 2:
        return "keep"
    return None


_FILLS = frozenset({"zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "empty", "empty_like",
                    "new_zeros", "new_ones", "new_full", "new_empty"})


def _original(module, call, a, b):
    """Which branch of a selection holds the value being dropped, or None when the code does not
    say. In order: the branch the selection is assigned back to (`labels = torch.where(m, null,
    labels)`); the one branch that is not a constant or a freshly filled tensor (`torch.zeros_like(x)`,
    `0.0`); the one branch that comes from a parameter of the enclosing function (DiT's `labels`
    against `self.num_classes`). Two parameters (`torch.where(m, labels, null)`) say nothing."""
    stmt = module.parent(call)
    if isinstance(stmt, ast.Assign) and stmt.value is call and len(stmt.targets) == 1:
        target = ast.unparse(stmt.targets[0])
        found = [x for x in (a, b) if ast.unparse(x) == target]
        if len(found) == 1:
            return found[0]
    fills = [x for x in (a, b) if _is_fill(x)]
    if len(fills) == 1:
        return b if fills[0] is a else a
    fn = module.enclosing_function(call)
    if fn is not None:
        params = {p.arg for p in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)} - {"self", "cls"}
        rooted = [x for x in (a, b) if _root_name(x) in params]
        if len(rooted) == 1:
            return rooted[0]
    return None


def _is_fill(node) -> bool:
    """A constant (`0`, `-1.0`, `float('-inf')`) or a tensor filled with one (`torch.zeros_like(x)`)."""
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if isinstance(node, ast.Constant):
        return True
    if not isinstance(node, ast.Call):
        return False
    name = last_name(node.func)
    if name in ("tensor", "as_tensor", "new_tensor", "float"):  # of a constant, not `torch.tensor(labels)`
        return bool(node.args) and _is_fill(node.args[0])
    return name in _FILLS


def _root_name(node):
    """The variable an expression reads through attributes, indexing and method calls: `labels`
    for `labels[:, 0].long()`, `self` for `self.num_classes`."""
    while True:
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node = node.func.value
        else:
            return node.id if isinstance(node, ast.Name) else None


def _carries(parent, child) -> bool:
    """The parent's value is the child's, reshaped: `a and random() < p`, `random() < p if p else
    False`, `torch.tensor([random() < p for _ in range(n)]).view(n, 1)` (lerobot's GR00T state
    dropout, then masked_fill), `(rand(n) < p).to(dtype)`, or the indices of the units it marks
    (`np.where(rand(n) <= p)[0]`)."""
    if isinstance(parent, (ast.BoolOp, ast.UnaryOp, ast.List, ast.Tuple)):
        return True
    if isinstance(parent, ast.IfExp):
        return parent.test is not child
    if isinstance(parent, (ast.ListComp, ast.GeneratorExp)):
        return parent.elt is child
    if isinstance(parent, ast.Attribute):
        return parent.value is child
    if isinstance(parent, ast.Call):
        if last_name(parent.func) in _INDICES_OF and parent.args == [child] and not parent.keywords:
            return True  # `np.where(rand(n) <= p)[0]`: the indices of the units it marks (LAVIS' drop_idx)
        return parent.func is child or (child in parent.args and last_name(parent.func) in ("tensor", "as_tensor", "stack"))
    if isinstance(parent, ast.Subscript):
        return parent.value is child
    return False


_INDICES_OF = frozenset({"where", "nonzero", "argwhere", "flatnonzero"})


def _scalar_draw(compare) -> bool:
    """`random.random() < p`, `random() < p`, `np.random.rand() < p`: one number, not a mask."""
    for side in (compare.left, *compare.comparators):
        if isinstance(side, ast.Call) and last_name(side.func) in ("random", "rand", "uniform") and not side.args:
            return True
    return False


def _multiplies(module, use) -> bool:
    """The flag enters a product: `weight *= drop`, `x * drop.view(...)`, `drop.float() * x`,
    `x * mask[:, None, None]` (OneTrainer's text-encoder dropout)."""
    node = use
    parent = module.parent(node)
    while (isinstance(parent, (ast.Attribute, ast.Subscript)) and parent.value is node) or (
            isinstance(parent, ast.Call) and parent.func is node):  # drop.view(...), mask[:, None, None]
        node, parent = parent, module.parent(parent)
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Mult):
        return True
    return isinstance(parent, ast.AugAssign) and isinstance(parent.op, ast.Mult) and parent.value is node


def _is_test(module, node) -> bool:
    child = node
    for a in module.ancestors(node):
        if isinstance(a, (ast.If, ast.While, ast.IfExp, ast.Assert)) and getattr(a, "test", None) is child:
            return True
        if isinstance(a, (ast.BoolOp, ast.UnaryOp)) and isinstance(getattr(a, "op", None), (ast.And, ast.Or, ast.Not)):
            child = a
            continue
        if isinstance(a, ast.stmt):
            return False
        child = a
    return False


# --- the rules -----------------------------------------------------------------------------------

@check("dropout-scaling-inconsistent")
def dropout_scaling_inconsistent(ctx, rule):
    """Inverted scaling in training and (1-p) at inference (double), or neither."""
    module = python_module_of(ctx)
    if module is None or not _draws_masks(module):
        return
    for fn in _functions(module):
        masks = _masks(module, fn)
        if not masks:
            continue
        train, evaluate = _regions(fn)
        if evaluate is None:
            continue
        scaled = [d for d in _scalings(train) if any(_matches_scale(d, m) for m in masks)]
        shrink = [(n, f) for n, f in _multipliers(evaluate) if any(_matches_scale(f, m) for m in masks)]
        where = _owner_name(module, fn)
        if scaled and shrink:
            node = shrink[0][0]
            yield hit(ctx, module, node,
                      f"{where} scales kept units by 1/(keep probability) in training and multiplies by the keep "
                      "probability again at inference: eval outputs shrink by (1-p); keep one of the two "
                      "(PyTorch's dropout keeps the training scaling and makes eval the identity)", key=where)
        elif not scaled and not shrink and _returns_input(fn, evaluate) and not _blends(fn):
            yield hit(ctx, module, masks[0].node,
                      f"{where} neither scales kept units by 1/(1-p) in training nor multiplies by (1-p) at "
                      "inference, so activations are (1-p) times smaller in training than in eval; divide the "
                      "masked input by the keep probability", key=where)


def _blends(fn) -> bool:
    """`m * x + (1 - m) * y`: dropped units are replaced by another value, not zeroed, so nothing
    is lost in expectation to scale back (OneTrainer's OFT dropout swaps rotation blocks for the
    identity: `stochastic_mask * x + (1 - stochastic_mask) * eye`)."""
    for node in ast.walk(fn):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
            continue
        sides = [node.left, node.right]
        if not all(isinstance(x, ast.BinOp) and isinstance(x.op, ast.Mult) for x in sides):
            continue
        names = [{n.id for n in ast.walk(x) if isinstance(n, ast.Name)} for x in sides]
        complements = [{_one_minus(f).id for f in (x.left, x.right)
                        if isinstance(_one_minus(f), ast.Name)} for x in sides]
        if complements[0] & names[1] or complements[1] & names[0]:
            return True
    return False


def _matches_scale(expr, mask) -> bool:
    """`expr` is written from this mask's rate: the rate itself or one minus it (whether it
    is the right one of the two is DRP533's question, not this rule's)."""
    rate = mask.keep if mask.keep is not None else mask.drop
    forms = [rate, _one_minus(rate)]
    inner = _one_minus(expr)
    return any(f is not None and (_same(expr, f) or (inner is not None and _same(inner, f))) for f in forms)


def _draws_masks(module) -> bool:
    idx = module.index
    return bool(idx.calls_named(("bernoulli", "bernoulli_", "binomial", *_RAND)))


@check("dropout-rescaled-after-builtin")
def dropout_rescaled_after_builtin(ctx, rule):
    """nn.Dropout and F.dropout are inverted already; `* (1 - p)` on top of them (the textbook
    test-time scaling) shrinks outputs by (1-p)."""
    module = python_module_of(ctx)
    if module is None:
        return
    idx = module.index
    rates = {}  # scope (class or function) -> rate expressions of built-in dropout
    for call in idx.calls_named(DROPOUT_MODULES | _FUNCTIONAL):
        name = last_name(call.func)
        if name in _FUNCTIONAL:
            if not (isinstance(call.func, ast.Attribute) and dotted(call.func.value) in (
                    "F", "functional", "nn.functional", "torch.nn.functional")):
                continue
            p = arg_or_kwarg(call, "p", 1)
        else:
            p = arg_or_kwarg(call, "p", 0)
        if p is None or constant(p)[0] and not isinstance(constant(p)[1], (int, float)):
            continue
        scope = _scope(module, call)
        rates.setdefault(scope, []).append(p)
    seen = set()
    for scope, ps in rates.items():
        for node, factor in _multipliers([scope]):
            inner = _one_minus(factor)
            p = next((p for p in ps if inner is not None and (_same(inner, p) or _literal_equal(inner, p))), None)
            if p is None or id(node) in seen or not _only_in_eval(module, node):
                continue
            seen.add(id(node))
            text = module.text[module.span(factor).start:module.span(factor).end]
            yield hit(ctx, module, node,
                      f"multiplying by {text} after nn.Dropout/F.dropout scales twice: PyTorch's dropout already "
                      f"divides by (1-p) in training and is the identity in eval, so this shrinks outputs by "
                      f"(1-p); remove the manual rescaling", key=text)


def _only_in_eval(module, node) -> bool:
    """The (1-p) multiply runs in eval mode only: under `if not self.training:`, in the else of
    `if self.training:` (NLLB-MoE's token dropout), or the eval side of a conditional expression.
    Applied in both modes it is classic dropout's scale, consistent between them (RecBole's
    RaCT); outside a forward it is arithmetic on a rate (fairseq's pos_conv init std
    `sqrt(4 * (1 - dropout) / ...)`): neither changes eval against training."""
    child = node
    for a in module.ancestors(node):
        if isinstance(a, (ast.If, ast.IfExp)):
            flag = _training_test(a.test)
            if flag is not None:
                in_body = child is a.body or (isinstance(a.body, list) and child in a.body)
                return in_body != flag  # body of `if not training`, else of `if training`
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return bool(_EVAL_METHOD.search(a.name))  # `def predict(self, x): return self.forward(x) * (1 - p)`
        if isinstance(a, ast.Lambda):
            return False
        child = a
    return False


_EVAL_METHOD = re.compile(r"^_?(predict|inference|infer|evaluate|eval|test|generate|sample)", re.I)


def _training_test(test):
    """True for a test that holds in training (`self.training`, `training`), False for one that
    holds in eval (`not self.training`), None for any other test."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _training_test(test.operand)
        return None if inner is None else not inner
    if isinstance(test, (ast.Name, ast.Attribute)) and last_name(test) == "training":
        return True
    return None


def _literal_equal(a, b) -> bool:
    ok_a, va = constant(a)
    ok_b, vb = constant(b)
    return ok_a and ok_b and va == vb and not isinstance(va, bool)


def _scope(module, node):
    """The class a node is in (methods share nn.Dropout rates built in __init__), else its
    function, else the module."""
    for a in module.ancestors(node):
        if isinstance(a, ast.ClassDef):
            return a
    return module.enclosing_function(node) or module.tree


@check("dropout-mask-shape")
def dropout_mask_shape(ctx, rule):
    """torch.FloatTensor((B, 1, 1, 1)) builds a 4-element tensor holding those numbers, not a
    (B, 1, 1, 1) tensor: a keep mask drawn from it has the wrong shape."""
    module = python_module_of(ctx)
    if module is None:
        return
    for call in module.index.calls_named(_LEGACY):
        if len(call.args) != 1 or call.keywords and last_name(call.func) != "tensor":
            continue
        arg = call.args[0]
        if not isinstance(arg, (ast.Tuple, ast.List)) or len(arg.elts) < 2:
            continue
        if not all(_size_like(e) for e in arg.elts) or all(constant(e)[0] for e in arg.elts):
            continue  # values (floats, nested rows, literals only): a tensor of data
        if not _used_as_mask(module, call):
            continue
        name = dotted(call.func) or last_name(call.func)
        text = module.text[module.span(arg).start:module.span(arg).end]
        yield hit(ctx, module, call,
                  f"{name}({text}) builds a {len(arg.elts)}-element tensor holding these numbers, not a tensor of "
                  f"that shape, so the dropout mask drawn from it has the wrong shape; use "
                  f"x.new_empty({text[1:-1]}) or torch.empty({text[1:-1]}) and draw the mask from that",
                  key=name)


# names that hold a value, never a size: a token id (flow_matching's `[mask_token, mask_token]`,
# a pair of [MASK] ids compared against samples), an index
_VALUE_NAME = re.compile(r"(?i)(token|_id|_ids|_idx|_index)$")


def _size_like(node) -> bool:
    """An element a shape would hold: an int literal, a name, `x.size(0)`, `x.shape[0]`; not a
    name that says it holds a token id or an index."""
    ok, v = constant(node)
    if ok:
        return isinstance(v, int) and not isinstance(v, bool)
    if isinstance(node, (ast.Name, ast.Attribute)) and _VALUE_NAME.search(last_name(node) or ""):
        return False
    return isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Call, ast.BinOp))


def _used_as_mask(module, call) -> bool:
    """The tensor feeds a Bernoulli draw, or is assigned to a mask-like name."""
    node = call
    parent = module.parent(node)
    while isinstance(parent, (ast.Attribute, ast.Call)) and not isinstance(parent, ast.Assign):
        if isinstance(parent, ast.Call) and last_name(parent.func) in ("bernoulli_", "bernoulli", "uniform_",
                                                                        "random_", "geometric_"):
            return True
        node, parent = parent, module.parent(parent)
    stmt = module.index.statement(call)
    if isinstance(stmt, ast.Assign):
        names = [n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        return any(k in n.lower() for n in names for k in ("mask", "keep", "drop", "noise"))
    return False


@check("dropout-keep-drop-confused")
def dropout_keep_drop_confused(ctx, rule):
    """A keep mask drawn with the drop rate (bernoulli(p), rand < p) or a drop mask with the
    keep probability: the layer drops 1-p of the units instead of p."""
    module = python_module_of(ctx)
    if module is None or not _draws_masks(module):
        return
    for fn in _functions(module):
        masks = _masks(module, fn)
        if not masks:
            continue
        owner = _owner_name(module, fn)
        scales = _scalings([fn])
        for m in masks:
            if m.keep is not None and _is_drop_rate(m.keep, owner):
                rate = m.keep
                consistent = any(_same(s, rate) for s in scales)  # divides by it: used as a keep probability
                confirmed = any(_same(_one_minus(s), rate) for s in scales if _one_minus(s) is not None)
                if consistent or not (confirmed or dropout_param(rate_name(rate) or "")):
                    continue
                text = module.text[module.span(rate).start:module.span(rate).end]
                yield hit(ctx, module, m.node,
                          f"this mask keeps each unit with probability {text}, but {text} is the drop rate: the "
                          f"layer drops 1-{text} of the units; draw the keep mask with 1 - {text} "
                          f"(bernoulli(1 - {text}), rand(...) > {text})", key=owner)
            elif m.drop is not None and _is_keep_rate(m.drop):
                text = module.text[module.span(m.drop).start:module.span(m.drop).end]
                yield hit(ctx, module, m.node,
                          f"this mask keeps each unit when a uniform draw exceeds {text}, a keep probability: the "
                          f"layer keeps 1-{text} of the units; compare with rand(...) < {text}", key=owner)
