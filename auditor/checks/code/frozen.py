"""Frozen stages that `train()` switches back on (#31).

Backbones freeze their stem or early stages in `__init__` (mmpretrain's ViT, BEiT and HiViT,
detectron2's Swin: a `_freeze_stages()` that calls `.eval()` and sets requires_grad False). But
`nn.Module.train()` sets every submodule's mode, so the training loop's first `model.train()`
turns those stages' dropout and batch norm back on; only an override of `train(mode)` that
freezes them again keeps them frozen (mmpretrain's ResNet does this, its ViT does not).

Imports inside functions (`knowledge.library_models`) are deferred for
start-up time: only a freeze of a pretrained Transformers class takes that path.
"""

from __future__ import annotations

import ast
import re

from auditor.checks.base import check
from auditor.checks.code import models, siblings
from auditor.checks.code.classes import module_class
from auditor.checks.code.common import (
    DROPOUT_MODULES,
    dropout_param,
    hit,
    no_grad_region,
    python_module_of,
    turns_grad_off,
)
from auditor.checks.code.flow import receiver_key
from auditor.sources.python_facts import dotted, imported_from, last_name, parameters_with_defaults, self_attribute


@check("frozen-stages-unfrozen-by-train")
def frozen_stages_unfrozen_by_train(ctx, rule):
    module = python_module_of(ctx)
    if module is None or ".eval()" not in module.text or "def __init__" not in module.text:
        return
    classes = {c.name: c for c in module.index.of(ast.ClassDef)}
    for cls in classes.values():
        methods = {m.name: m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
        init = methods.get("__init__")
        if init is None or "train" in methods or not _is_module_class(cls, classes, set(), module):
            continue
        if _train_replaced(cls):
            continue  # CompVis' `self.first_stage_model.train = disabled_train`: train() cannot undo it
        if _inference_only(module, cls, methods):
            continue  # yolov7's autoShape, an EMA holder: nothing of it runs with gradients
        freezer = _eval_reached_from(init, methods, _passed_over(module, cls))
        if freezer is None:
            continue
        call, where, frozen_fn = freezer
        if _eval_again_in_pass(call, methods):
            continue  # mmagic's LightCNNFeatureLoss: forward calls self.model.eval() before each use
        dropout = _freezes_dropout(cls, frozen_fn)
        message = (f"{cls.name}.__init__ freezes submodules with .eval() ({where}), but {cls.name} does not override "
                   f"train(): the first model.train() switches them back to train mode"
                   + (", dropout included" if dropout else "")
                   + "; override train(self, mode=True) to call super().train(mode) and re-freeze them")
        yield _with_severity(hit(ctx, module, call, message, key=f"{cls.name}.train"), dropout)


_PASSES = ("forward", "__call__", "training_step")


def _inference_only(module, cls, methods: dict) -> bool:
    """A wrapper that never takes part in training, so no training loop's train() reaches it:
    its forward runs under no_grad/inference_mode (yolov7's autoShape, the torch.hub inference
    wrapper), or it has no forward of its own over a plain nn.Module (timm-style ModelEma, which
    only copies state_dicts under no_grad), and no other method runs a submodule with gradients
    on (a beam-search Translator whose helpers are called only inside its `with no_grad()`).
    A class that also freezes weights (requires_grad False, a freeze method) is built for
    training around it, as a teacher or a frozen encoder whose no_grad forward a parent's
    train() still switches: that stays a finding."""
    passes = [methods[name] for name in _PASSES if name in methods]
    if passes:
        if not all(any(turns_grad_off(d) for d in fn.decorator_list) for fn in passes):
            return False
    elif not cls.bases or any(last_name(b) != "Module" for b in cls.bases):
        return False  # a framework base may bring its own forward
    if _freezes_anything(cls, methods):
        return False
    quiet = _grad_free_methods(module, methods)
    for name, fn in methods.items():
        if name == "__init__" or fn in quiet:
            continue
        for node in ast.walk(fn):
            if (isinstance(node, ast.Call) and _runs_submodule(node.func, methods)
                    and no_grad_region(module, node) is None):
                return False
    return True


def _grad_free_methods(module, methods: dict) -> set:
    """The methods that only ever run without gradients: decorated no_grad/inference_mode, or
    called within the class only from no_grad blocks or from such methods (a method nobody in
    the class calls may be called from outside, with gradients)."""
    sites = {}
    for fn in methods.values():
        for node in ast.walk(fn):
            if isinstance(node, ast.Call) and self_attribute(node.func) in methods:
                sites.setdefault(node.func.attr, []).append((fn, node))
    quiet = {fn for fn in methods.values() if any(turns_grad_off(d) for d in fn.decorator_list)}
    changed = True
    while changed:
        changed = False
        for name, fn in methods.items():
            if fn not in quiet and name in sites and all(
                    caller in quiet or no_grad_region(module, node) is not None for caller, node in sites[name]):
                quiet.add(fn)
                changed = True
    return quiet


# nn.Module methods that compute nothing with the module's layers: reading or moving its state.
_STATE_METHODS = frozenset({
    "state_dict", "load_state_dict", "parameters", "named_parameters", "buffers", "named_buffers", "modules",
    "named_modules", "children", "named_children", "to", "cuda", "cpu", "half", "float", "double", "bfloat16",
    "eval", "train", "requires_grad_", "zero_grad", "apply", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "get_submodule", "extra_repr", "save"})


def _runs_submodule(func, methods: dict) -> bool:
    """`self.module(x)`, `self.model.decoder(x)`, `self.flow.inference(x)`: a call through a
    submodule other than reading or moving its state, and not one of the class's own methods."""
    if isinstance(func, ast.Attribute) and func.attr in _STATE_METHODS:
        return False
    node = func
    while isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
        node = node.value
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr not in methods


def _freezes_anything(cls, methods: dict) -> bool:
    if any(_FREEZER.search(name) for name in methods):
        return True
    for node in ast.walk(cls):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "requires_grad_":
            target = node.func.value
        elif isinstance(node, ast.Call) and node.args:
            target = node.args[0]
        elif isinstance(node, ast.For) and isinstance(node.iter, ast.Call) and isinstance(node.iter.func, ast.Attribute):
            target = node.iter.func.value
        key = receiver_key(target) if target is not None else ""
        if key and models.freezes(node, key):
            return True
    return False


def _with_severity(found, dropout: bool):
    """Known dropout in the class makes it the rule's warning; without it only batch norm and
    frozen weights are at stake, which is worth a note, not a dropout warning."""
    if not dropout:
        found.severity = "info"
    return found


def _eval_reached_from(init, methods: dict, skip=lambda call, fn: False):
    """(the .eval() call, how __init__ reaches it, the function that calls it) when __init__ calls
    .eval() on a submodule directly or through one of the class's own methods (one level, as
    `_freeze_stages` does). An eval() that `skip(call, function)` passes over (one that changes
    nothing, or that is no freeze) is not reported."""
    for node in ast.walk(init):
        if _is_sub_eval(node) and not _restored(init, node) and not skip(node, init):
            return node, "in __init__", init
    for node in ast.walk(init):
        if (isinstance(node, ast.Call) and self_attribute(node.func) in methods
                and node.func.attr != "__init__"):
            method = methods[node.func.attr]
            for inner in ast.walk(method):
                if _is_sub_eval(inner) and not _restored(method, inner) and not skip(inner, method):
                    return inner, f"through self.{node.func.attr}()", method
    return None


def _mode_free(module, cls):
    """A test for freezes that change nothing: `self.model.eval()` where the class assigns
    `self.model = Local(...)`, a module class of this file with neither dropout nor batch norm
    (PixArt's HEDdetector freezes ControlNetHED_Apache2, convolutions and ReLUs only): its train
    and eval modes compute the same thing."""
    built, factory, chosen = {}, {}, {}
    for fn in [f for f in ast.walk(cls) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        for node in ast.walk(fn):
            if not isinstance(node, ast.Assign):
                continue
            for t in node.targets:
                if not (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"):
                    continue
                if isinstance(node.value, ast.Call) and not _reassigns_itself(node.value, t.attr):
                    built[t.attr] = node.value
                elif isinstance(node.value, ast.Name) and _factory_model_free(module, fn, node.value.id):
                    factory[t.attr] = True  # model, _, _ = open_clip.create_model_and_transforms(...)
                elif isinstance(node.value, (ast.IfExp, ast.Name)):
                    chosen[t.attr] = node.value  # self.patch_model = ONNX_TRT if max_wh is None else ONNX_ORT
    local = {c.name: c for c in module.index.of(ast.ClassDef)}

    def moot(call) -> bool:
        receiver = call.func.value
        attr = self_attribute(receiver) or None
        if attr in factory:
            return True
        value = built.get(attr) if attr else None
        names = _classes_called(value.func, chosen) if value is not None else []
        if names and all(n in local for n in names):
            return all(models.class_dropout(module, local[n]) == models.ZERO for n in names)
        return _mode_free_pretrained(module, value)

    return moot


def _classes_called(func, chosen: dict) -> list:
    """The class names a constructor call may build: `Local(...)`, or every alternative of a
    class picked at run time, `(A if c else B)(...)` or through the attribute that holds the pick
    (yolov7's End2End: `self.patch_model = ONNX_TRT if max_wh is None else ONNX_ORT`, then
    `self.end2end = self.patch_model(...)`). Each alternative must be mode-free for the freeze to
    change nothing; [] when a pick is no class name."""
    if self_attribute(func) in chosen:
        func = chosen[func.attr]
    if isinstance(func, ast.IfExp):
        body, orelse = _classes_called(func.body, {}), _classes_called(func.orelse, {})
        return body + orelse if body and orelse else []
    name = last_name(func)
    return [name] if name else []


def _factory_model_free(module, fn, name: str) -> bool:
    """`model, _, _ = open_clip.create_model_and_transforms(arch, ...)` in `fn`, where `arch` is a
    literal or a parameter's default naming an architecture the library builds without dropout
    (knowledge/data/library_models.json): sgm's FrozenOpenCLIPEmbedder freezes a ViT-H-14, whose
    LayerNorm towers have no dropout, so undoing its eval() changes nothing."""
    from auditor.knowledge import library_models

    for node in ast.walk(fn):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        target = node.targets[0]
        first = target.elts[0] if isinstance(target, ast.Tuple) and target.elts else target
        if not (isinstance(first, ast.Name) and first.id == name):
            continue
        call = node.value
        function = dotted(call.func)
        if isinstance(call.func, ast.Name):
            package, original = imported_from(module, call.func.id)
            function = f"{package}.{original}" if package else ""
        arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "model_name"), None)
        model_name = _literal_or_default(fn, arg)
        return bool(function and model_name) and library_models.factory_without_dropout(function, model_name)
    return False


def _literal_or_default(fn, node) -> str:
    """A string literal, or the default of the parameter of `fn` it names ("" otherwise)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        for arg, default in parameters_with_defaults(fn):
            if arg.arg == node.id and isinstance(default, ast.Constant) and isinstance(default.value, str):
                return default.value
    return ""


def _passed_over(module, cls):
    """An eval() that changes nothing (`_mode_free`), that freezes nothing (`_weights_frozen`),
    or whose module the class no longer holds (`_replaced_after`)."""
    mode_free, frozen = _mode_free(module, cls), _weights_frozen(module, cls)
    return lambda call, fn: mode_free(call) or not frozen(call, fn) or _replaced_after(fn, call)


# A traced module records the ops its mode ran when traced: train() on it changes nothing. A
# scripted or deep copy keeps the eval mode as a flag that train() does switch back.
_COPIES = frozenset({"trace", "trace_module"})


def _replaced_after(fn, call) -> bool:
    """`self.model.eval()`, then later in the same function `self.model = traced` where `traced =
    torch.jit.trace(self.model, ...)` (yolov7's TracedModel): the attribute now holds another
    module, so no train() of the class reaches the one put in eval. Only an assignment that runs
    whenever the eval() ran counts (one later in its block or an enclosing one): transformers'
    BltModel freezes `self.patcher` in the if and sets `self.patcher = None` in the else. A new
    value that may still hold the old module (`self.model = Wrapper(self.model)`, `self.model =
    self.model.to(d)`), or a scripted or deep copy of it that keeps its mode, is no
    replacement; a traced copy, whose ops are fixed when traced, is one."""
    receiver = call.func.value
    if not self_attribute(receiver):
        return False
    parents = {child: node for node in ast.walk(fn) for child in ast.iter_child_nodes(node)}
    assigns = sorted((n for n in ast.walk(fn) if isinstance(n, ast.Assign)), key=lambda n: (n.lineno, n.col_offset))

    def bound(name, before):  # traced = torch.jit.trace(self.model, x); self.model = traced
        found = [a for a in assigns if (a.lineno, a.col_offset) < (before.lineno, before.col_offset)
                 and any(isinstance(t, ast.Name) and t.id == name for t in a.targets)]
        return found[-1].value if found else None

    node = call
    while node is not fn and node in parents:
        parent = parents[node]
        if isinstance(node, ast.stmt):
            block = next((b for b in (getattr(parent, f, None) for f in ("body", "orelse", "finalbody"))
                          if isinstance(b, list) and node in b), [])
            for later in block[block.index(node) + 1:] if node in block else []:
                if isinstance(later, ast.Assign) and any(self_attribute(t) == receiver.attr for t in later.targets):
                    value = later.value
                    if isinstance(value, ast.Name):
                        value = bound(value.id, later)
                    if value is not None and not _may_hold(value, receiver.attr):
                        return True
        node = parent
    return False


def _may_hold(value, attr: str) -> bool:
    """Whether a value may be or contain `self.<attr>`, or a copy still in its mode: it reads it
    outside a tracing call."""
    copied = set()
    for n in ast.walk(value):
        if isinstance(n, ast.Call) and last_name(n.func) in _COPIES:
            copied.update(id(a) for arg in n.args for a in ast.walk(arg))
    return any(self_attribute(n) == attr and id(n) not in copied for n in ast.walk(value))


_FREEZER = re.compile(r"freez|frozen", re.I)


def _weights_frozen(module, cls):
    """A test that an eval() is part of a freeze: the same module's weights are frozen too
    (models.freezes: `x.requires_grad_(False)`, a parameters() loop, a `requires_grad(x, False)`
    helper, or every parameter of the class), the eval() sits in a method named for freezing
    (`_freeze_stages`), or it is called on a module whose own class freezes its weights (LPIPS).
    An eval() right after loading weights into a module whose weights nothing freezes (mmf's
    ALBEF ViT, its end-to-end Faster R-CNN: both go on training) freezes nothing: train()
    switching it back is what the training wants, and the advice to re-freeze it would be wrong."""
    nodes = [n for n in ast.walk(cls) if isinstance(n, (ast.Call, ast.For))]

    def frozen(call, fn) -> bool:
        if _FREEZER.search(getattr(fn, "name", "")):
            return True
        receiver = call.func.value
        keys = {"self", receiver_key(receiver)}
        for node in ast.walk(cls):
            if isinstance(node, ast.Assign) and _ends_in(node.value, call):
                keys.update(receiver_key(t) for t in node.targets)  # self.teacher = teacher.eval()
        if any(models.freezes(n, k) for n in nodes for k in keys - {""}):
            return True
        if isinstance(receiver, ast.Call):  # LPIPS().eval(): its class may freeze itself; unseen, it may
            found = module_class(module, receiver.func)
            return found is None or any(models.freezes(n, "self") for n in ast.walk(found[1]))
        return not _loaded_before(fn, call)

    return frozen


def _loaded_before(fn, call) -> bool:
    """`x.load_state_dict(...)` earlier in the same function than `x.eval()`: the idiom "load the
    weights, then eval", whose module goes on training when nothing freezes its weights. Without
    it (an EMA copy put in eval, never given gradients) the eval() still counts."""
    receiver = receiver_key(call.func.value)
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "load_state_dict"
               and receiver_key(n.func.value) == receiver and (n.lineno, n.col_offset) < (call.lineno, call.col_offset)
               for n in ast.walk(fn))


def _ends_in(value, call) -> bool:
    node = value
    while isinstance(node, ast.Call):
        if node is call:
            return True
        node = node.func.value if isinstance(node.func, ast.Attribute) else None
    return False


def _reassigns_itself(value, attr: str) -> bool:
    """`self.transformer = self.transformer.eval()`: the same module, not a new one."""
    node = value
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        node = node.func.value
    return isinstance(node, ast.Attribute) and node.attr == attr and isinstance(node.value, ast.Name) \
        and node.value.id == "self"


def _mode_free_pretrained(module, value) -> bool:
    """`CLIPTextModel.from_pretrained(path)`: the class fixes a Transformers model type whose rates
    all default to 0 and whose modeling code has no batch norm (Latte's FrozenCLIPEmbedder). A
    checkpoint could ship other rates; the freeze is then said where they are written. A class
    of another library whose source has no dropout at all (diffusers' AutoencoderKL, which
    PixArt's HEDdetector freezes) is mode-free whatever checkpoint it loads."""
    cls, model_type = models.pretrained_class_type(value)
    if not model_type:
        return bool(cls) and models.library_without_dropout(module, cls)
    from auditor.knowledge import library_models

    return not library_models.batch_norm_type(model_type) \
        and models.type_dropout(model_type, ()) == models.ZERO and not any(
            kw.arg and "dropout" in kw.arg for kw in value.keywords)


def _eval_again_in_pass(call, methods: dict) -> bool:
    """The module put in eval in __init__ is put in eval again by the class's forward (or
    __call__, training_step) before it is used: whatever train() did in between, it runs frozen."""
    if not isinstance(call.func, ast.Attribute):
        return False
    receiver = ast.dump(call.func.value)
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "eval"
               and ast.dump(n.func.value) == receiver
               for name in _PASSES if name in methods for n in ast.walk(methods[name]))


def _restored(fn, call) -> bool:
    """`backbone.eval()` for a probe forward, then `backbone.train(training)`: the mode is put
    back in the same function (mmpretrain's HybridEmbed), nothing stays frozen."""
    receiver = ast.dump(call.func.value)
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "train"
               and ast.dump(n.func.value) == receiver for n in ast.walk(fn))


def _is_sub_eval(node) -> bool:
    """`m.eval()` / `self.stem.eval()` / `self.layers[i].eval()`: a submodule, never the class itself."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "eval"
            and not node.args):
        return False
    receiver = node.func.value
    return not (isinstance(receiver, ast.Name) and receiver.id == "self")


# Bases that make a class an nn.Module (directly, or a framework's module base: mmpretrain's
# BaseBackbone, detectron2's Backbone); a class with none of them has no train() to call.
_MODULE_BASE = re.compile(r"Module$|Sequential$|Backbone$|Model$|Net$|Layer$|Block$|Encoder$|Decoder$|Transformer$|ViT$")


def _is_module_class(cls, classes: dict, seen: set, module=None, depth: int = 0, runs: bool = False) -> bool:
    """Whether a class derives from an nn.Module: through this file's classes, the package's
    own modules (BasicSR's `SRModel(BaseModel)`, where base_model.py's `class BaseModel():` is a
    plain object that only holds networks: it has no train() to undo a freeze), and only when
    a base is defined nowhere here, by its name. `runs`: a class below this one defines forward."""
    runs = runs or _has_forward(cls)
    for base in cls.bases:
        name = last_name(base)
        if not name or name in seen:
            continue
        seen.add(name)
        if name in classes:
            if _is_module_class(classes[name], classes, seen, module, depth, runs):
                return True
            continue
        found = siblings.imported(module).lookup(name) if module is not None and isinstance(base, ast.Name) \
            and depth < 3 else None
        if found is not None:
            other, node = found
            inner = {c.name: c for c in other.index.of(ast.ClassDef)}
            if _is_module_class(node, inner, seen, other, depth + 1, runs):
                return True
        elif _MODULE_BASE.search(name) and (not name.endswith("Model") or runs):
            return True
    return False


def _has_forward(cls) -> bool:
    """A class named as a module by its base alone (`GFPGANModel(BaseModel)`, BaseModel from an
    installed basicsr) is one only if it runs as one: BasicSR-style model objects hold networks
    and define feed_data/optimize_parameters/test, never forward, and have no train() of their own."""
    return any(isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name == "forward" for m in cls.body)


def _train_replaced(cls) -> bool:
    return any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "train" for t in n.targets)
               for n in ast.walk(cls))


def _freezes_dropout(cls, frozen_fn) -> bool:
    """The freezing code puts a dropout module itself in eval (mmpretrain's `self.drop_after_pos
    .eval()`, "set dropout to eval model"; detectron2 Swin's `self.pos_drop.eval()`): then train()
    undoing it turns dropout back on, a fact. Freezing a submodule built elsewhere (a pretrained
    autoencoder from a config) says nothing about its dropout: info (#25 held-out set)."""
    dropouts = set()
    for node in ast.walk(cls):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and last_name(node.value.func) in DROPOUT_MODULES):
            dropouts.update(t.attr for t in node.targets if isinstance(t, ast.Attribute))
    for node in ast.walk(frozen_fn):
        if _is_sub_eval(node):
            receiver = node.func.value
            name = receiver.attr if isinstance(receiver, ast.Attribute) else ""
            if name in dropouts or (name and dropout_param(name)) or "drop" in name.lower():
                return True
    return False
