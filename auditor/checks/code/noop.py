"""no-op checks in code: RNN dropout with one layer, dropout modules and parameters that are
never used, and config changes after the model is built (pitfalls.md section A).

Imports inside functions (`checks.code.eval_mode`, `knowledge.architectures`, `sources.python_facts`) are deferred for
start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import ast
import re

from auditor.checks.base import Hit, check
from auditor.checks.code import classes, models
from auditor.checks.code.common import (
    ATTENTION,
    DROPOUT_MODULES,
    RNNS,
    dropout_param,
    hit,
    model_like,
    python_driver,
    python_module_of,
)
from auditor.checks.code.flow import receiver_key
from auditor.knowledge import dropout_keys
from auditor.sources.python_facts import (
    ASSIGNMENTS,
    arg_or_kwarg,
    constant,
    dotted,
    has_star_args,
    is_zero,
    kwarg,
    last_name,
    parameters_with_defaults,
    self_assignments,
    self_attribute,
    target_names,
    walk,
)


@check("rnn-dropout-single-layer")
def rnn_dropout_single_layer(ctx, rule):
    """nn.LSTM/GRU/RNN apply dropout between stacked layers only; with one layer it does
    nothing (torch warns once; pytorch#5985, pyro#1415)."""
    module = python_module_of(ctx)
    if module is None:
        return
    for call in module.index.calls_named(RNNS):
        name = last_name(call.func)
        if dotted(call.func).split(".")[0] not in ("nn", "torch", name):
            continue
        if any(kw.arg is None for kw in call.keywords):
            continue
        dropout = arg_or_kwarg(call, "dropout", RNNS[name])
        if dropout is None or is_zero(dropout):
            continue
        layers = arg_or_kwarg(call, "num_layers", 2)
        if layers is not None:
            ok, value = constant(layers)
            if not ok or value != 1:
                continue
        text = module.text[module.span(dropout).start:module.span(dropout).end]
        yield hit(ctx, module, dropout,
                   f"{name}(dropout={text}) with {'num_layers=1' if layers is not None else 'the default num_layers=1'} "
                   "does nothing: RNN dropout is applied between stacked layers only", key=name)


@check("dropout-module-unused")
def dropout_module_unused(ctx, rule):
    """An nn.Dropout assigned in __init__ that no code reads never runs: the configured rate
    has no effect (pytorch-openai-transformer-lm#49)."""
    module = python_module_of(ctx)
    if module is None:
        return
    idx = module.index
    others = strings = None
    for name in sorted(DROPOUT_MODULES):
        for call in idx.calls_by_name.get(name, ()):
            node = idx.parents.get(call)
            if not (isinstance(node, ast.Assign) and node.value is call):
                continue
            p = arg_or_kwarg(call, "p", 0)
            if p is not None and is_zero(p):
                continue
            for cls in _init_owners(module, node):
                if others is None:
                    others, strings = _attribute_reads(module)
                own = _self_reads(module, cls)
                for target in node.targets:
                    if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                            and target.value.id == "self" and target.attr not in own and target.attr not in others
                            and target.attr not in strings):
                        found = hit(ctx, module, target,
                                    f"self.{target.attr} = {last_name(call.func)}(...) is never used: "
                                    f"{cls.name} does not call it, so this dropout never runs",
                                    key=f"{cls.name}.{target.attr}")
                        why = (_dead_on_purpose(module, cls, target.attr)
                               or _rate_applied_elsewhere(module, call, p, target.attr, others)
                               or _rate_stored_and_passed(module, cls, call, p))
                        yield found if why is None else found.replace(severity="info",
                                                                      message=f"{found.message}; but {why}")


def _dead_on_purpose(module, cls, attr: str):
    """The class's only call of the module is commented out (FunASR's SANMEncoder:
    `# xs_pad = self.dropout(xs_pad)`): switched off on purpose, not forgotten."""
    lines = module.text.splitlines()[cls.lineno - 1:cls.end_lineno]
    for i, line in enumerate(lines, cls.lineno):
        comment = line[line.find("#"):] if "#" in line else ""
        if f"self.{attr}(" in comment:
            return f"its call is commented out at line {i}, so it was switched off on purpose"
    return None


def _rate_applied_elsewhere(module, call, p, attr: str, others: set):
    """The same rate expression (not a literal) is given to another layer that applies it, so the
    setting still takes effect: another call in the same function (RecBole's NNCF gives
    config["dropout"] to its MLP too), or, for a config field, a live module of the same name
    elsewhere in the file, the copy this line was pasted from (XLNetLayer's dead
    `self.dropout = nn.Dropout(config.dropout)` beside XLNetRelativeAttention's live one). A
    dead module with a name of its own marks a site of its own and stays loud (Phi-4-multimodal's
    `embed_dropout` for text while `drop` drops image features). Another dropout module counts
    when it runs; a single-layer RNN does not: its dropout is a no-op itself (DRP520; FunASR's
    EEND-EDA gives decoder_dropout only to such an LSTM)."""
    if p is None or constant(p)[0]:
        return None
    rate = ast.dump(p)
    fn = module.enclosing_function(call)
    local = [n for n in ast.walk(fn) if isinstance(n, ast.Call)] if fn is not None else []
    copies = [] if isinstance(p, ast.Name) else [
        c for c in module.index.calls_named(DROPOUT_MODULES) if isinstance(module.parent(c), ast.Assign)
        and any(isinstance(t, ast.Attribute) and t.attr == attr for t in module.parent(c).targets)]
    for other in local + copies:
        if other is call or not any(ast.dump(a) == rate for a in list(other.args) + [k.value for k in other.keywords]):
            continue
        name = last_name(other.func)
        if name in DROPOUT_MODULES and not _dropout_runs(module, other, others):
            continue  # a dropout that may be as dead as this one
        if name in RNNS:
            layers = arg_or_kwarg(other, "num_layers", 2)
            if layers is None or constant(layers) == (True, 1):
                continue
        span = module.span(p)
        return (f"the same rate {module.text[span.start:span.end]} is given to {name}(...) at line {other.lineno}, "
                "so the setting still takes effect")
    return None


def _rate_stored_and_passed(module, cls, call, p):
    """The rate parameter is also stored on the instance (`self.dropout = dropout`) and a method
    of the class passes that attribute to a call (flow_matching's DDiT block: the dead
    `self.dropout1 = nn.Dropout(dropout)` beside `bias_dropout_add_scale(..., prob=self.dropout,
    training=self.training)`, which calls F.dropout): the setting takes effect there."""
    if not isinstance(p, ast.Name):
        return None
    fn = module.enclosing_function(call)
    stored = {attr for attr, value, _ in self_assignments(fn) if isinstance(value, ast.Name) and value.id == p.id} \
        if fn is not None else set()
    if not stored:
        return None
    for method in cls.body:
        if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)) or method is fn:
            continue
        for other in ast.walk(method):
            if not isinstance(other, ast.Call):
                continue
            for arg in list(other.args) + [k.value for k in other.keywords]:
                if self_attribute(arg) in stored:
                    return (f"the same rate is stored as self.{arg.attr} and passed to {last_name(other.func)}(...) "
                            f"at line {other.lineno}, so the setting still takes effect")
    return None


def _dropout_runs(module, call, others: set) -> bool:
    """A dropout module call that is not assigned to an attribute (inside a Sequential, called
    at once), or is assigned to one its class family or another object reads."""
    holder = module.parent(call)
    if not isinstance(holder, ast.Assign):
        return True
    cls = next((a for a in module.ancestors(holder) if isinstance(a, ast.ClassDef)), None)
    own = _self_reads(module, cls) if cls is not None else set()
    return any(isinstance(t, ast.Attribute) and (t.attr in own or t.attr in others) for t in holder.targets)


def _attribute_reads(module):
    """(names read as `<x>.name` with x other than self, string constants) of the whole file:
    another object may call a module's dropout (`self.encoder.dropout(h)`, getattr by name).
    A read inside a dropout constructor's own arguments is the rate, not the module
    (`nn.Dropout(cfg.dropout_features)` reads the config field, s3prl's data2vec)."""
    rates = {id(n) for c in module.index.calls_named(DROPOUT_MODULES) for a in c.args + [k.value for k in c.keywords]
             for n in ast.walk(a)}
    others = {n.attr for n in module.index.of(ast.Attribute)
              if isinstance(n.ctx, ast.Load) and id(n) not in rates
              and not (isinstance(n.value, ast.Name) and n.value.id == "self")}
    strings = {n.value for n in module.index.of(ast.Constant) if isinstance(n.value, str)}
    return others, strings


def _self_reads(module, cls) -> set:
    """Names read as `self.name` in cls, in the classes of this file derived from it and in its
    bases defined here (an inherited forward may call it): a class that builds a dropout is
    judged by its own family's code (FunASR's CifPredictorV2 is not excused by CifPredictor, an
    unrelated class of the same file, calling its own self.dropout)."""
    classes = module.index.of(ast.ClassDef)
    derived, changed = {cls.name}, True
    while changed:  # the classes derived from cls
        changed = False
        for other in classes:
            if other.name not in derived and any(last_name(b) in derived for b in other.bases):
                derived.add(other.name)
                changed = True
    family, todo = set(derived), [cls]
    while todo:  # and the bases defined here (not their other subclasses)
        for base in todo.pop().bases:
            found = module.index.classes.get(last_name(base))
            if found is not None and found.name not in family:
                family.add(found.name)
                todo.append(found)
    found = set()
    for other in classes:
        if other.name in family:
            found.update(n.attr for n in ast.walk(other) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load)
                         and isinstance(n.value, ast.Name) and n.value.id == "self")
    return found


def _init_owners(module, node):
    """The classes with a forward() whose __init__ (the last one defined) contains node."""
    for fn in module.ancestors(node):
        if not (isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name == "__init__"):
            continue
        cls = module.parent(fn)
        if not isinstance(cls, ast.ClassDef):
            continue
        methods = {m.name: m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
        if "forward" in methods and methods.get("__init__") is fn:
            yield cls


def _switch_default(default) -> bool:
    """`drop: bool = False` is a switch, not a rate."""
    ok, value = constant(default) if default is not None else (False, None)
    return ok and isinstance(value, (bool, str))


def _is_stub(fn) -> bool:
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return all(isinstance(s, (ast.Pass, ast.Raise)) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
               for s in body)


# Decorators that bind a function to a signature it must take whole: abstract interfaces, and
# torch.library fake/meta kernels, which receive every argument of the op (xtuner's shape
# functions take dropout_p and rightly ignore it).
_SIGNATURE_BOUND = frozenset({"abstractmethod", "overload", "register_fake", "impl_abstract", "register_kernel",
                              "register_autograd", "register_meta"})


@check("dropout-parameter-unused")
def dropout_parameter_unused(ctx, rule):
    """A dropout parameter of a constructor or builder that the body never reads, or overwrites
    with a literal before reading: callers configure a value that is ignored (torchtune#996,
    TabDPT#4, CLUENER2020#55)."""
    module = python_module_of(ctx)
    if module is None or "tensorrt_llm" in module.text and _imports(module, "tensorrt_llm"):
        return  # a TensorRT-LLM port keeps the PyTorch signature for an inference engine (F5-TTS)
    idx = module.index
    named = {id(idx.parents.get(idx.parents.get(a))) for a in idx.of(ast.arg) if dropout_param(a.arg)}
    if not named:
        return  # no function has a parameter named like a rate
    for fn in idx.of(ast.FunctionDef, ast.AsyncFunctionDef):
        if id(fn) not in named:
            continue
        parent = module.parent(fn)
        if isinstance(parent, ast.ClassDef) and fn.name != "__init__":
            continue  # other methods often keep a parameter to honour an interface
        params = [a for a in parameters_with_defaults(fn) if not a[0].arg.startswith("_") and dropout_param(a[0].arg)
                  and not _switch_default(a[1])]
        params = [a for a, _ in params]
        if not params:
            continue
        if _is_stub(fn) or any(last_name(getattr(d, "func", d)) in _SIGNATURE_BOUND for d in fn.decorator_list):
            continue
        if any(_inside(module, call, fn) for call in module.index.calls_named(("locals", "vars"))):
            continue
        reads = _first_reads(fn, {arg.arg for arg in params})
        recorded = _recorded_reads(module, fn, parent) if isinstance(parent, ast.ClassDef) else set()
        for arg in params:
            name = arg.arg
            first_read = reads.get(name)
            if first_read is None and name in recorded:
                continue  # stored by @register_to_config / save_hyperparameters and read back (#25)
            if first_read is None:
                literal = _literal_passed(fn, name)
                extra = ""
                if literal is not None:
                    span = module.span(literal)
                    extra = f"; a literal {name}={module.text[span.start:span.end]} is passed at line {span.line} instead"
                found = hit(ctx, module, arg, f"parameter {name} of {fn.name}() is never used{extra}",
                            key=f"{fn.name}.{name}")
                why = None if literal is not None else _interface_reason(module, fn, parent, name, set(reads))
                yield found if why is None else found.replace(severity="info", message=f"{found.message}, but {why}")
                continue
            shadow = _shadowed(fn, name, first_read)
            if shadow is not None:
                yield hit(ctx, module, shadow,
                           f"parameter {name} of {fn.name}() is overwritten with a literal before it is read, so "
                           "the caller's value is ignored", key=f"{fn.name}.{name}")
                continue
            stored = _stored_unread(module, fn, name)
            if stored is not None:
                found = hit(ctx, module, arg,
                            f"parameter {name} of {fn.name}() is stored as self.{stored.attr} (line {stored.lineno}), "
                            f"which nothing reads: the caller's rate never reaches a dropout", key=f"{fn.name}.{name}")
                why = _headless_copy(module, fn, parent, name)
                yield found if why is None else found.replace(severity="info", message=f"{found.message}, but {why}")


def _imports(module, package: str) -> bool:
    for node in module.index.of(ast.Import, ast.ImportFrom):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
        if any(n == package or n.startswith(package + ".") for n in names):
            return True
    return False


def _stored_unread(module, fn, name):
    """`self.dropout = dropout` as the parameter's only use, with `self.dropout` read nowhere
    in the module (no attribute load, no string naming it, no dynamic access to the object's
    attributes): the stored rate reaches no dropout (#26). Returns the store target."""
    cls = module.parent(fn)
    if not isinstance(cls, ast.ClassDef) or cls.name not in classes.local_module_classes(module) or not any(
            isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name == "forward" for m in cls.body):
        return None  # a config or a test helper stores values for readers in other modules
    loads = module.cache.setdefault("name-loads", {}).get(fn)
    if loads is None:
        loads = module.cache["name-loads"][fn] = {}
        for node in walk(fn):
            if node.__class__ is ast.Name and node.ctx.__class__ is ast.Load:
                loads.setdefault(node.id, []).append(node)
    stores = []
    for node in loads.get(name, ()):
        stmt = module.parent(node)
        if not (isinstance(stmt, ast.Assign) and stmt.value is node and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Attribute) and isinstance(stmt.targets[0].value, ast.Name)
                and stmt.targets[0].value.id == "self"):
            return None
        stores.append(stmt.targets[0])
    if not stores:
        return None
    used = _attribute_uses(module)
    if used is None:
        return None
    cls = module.parent(fn)
    family = {cls.name} | {c.name for c in module.index.of(ast.ClassDef)
                           if any(last_name(b) == cls.name for b in c.bases)}
    for target in stores:
        if target.attr in used["other"] or any(target.attr in used["self"].get(c, ()) for c in family):
            return None
    return stores[0]


def _attribute_uses(module):
    """{"self": {class name: attributes read as self.<a> in it}, "other": attributes read on
    anything else, or named by a string}; None when the module reads attributes dynamically
    (vars(), getattr with a computed name, __dict__, save_hyperparameters)."""
    if "attribute-uses" in module.cache:
        return module.cache["attribute-uses"]
    idx = module.index
    used = {"self": {}, "other": {n.value for n in idx.of(ast.Constant) if isinstance(n.value, str)}}
    dynamic = any(last_name(c.func) in ("vars", "getattr", "__getattribute__", "save_hyperparameters",
                                        "register_to_config", "asdict")
                  and not (last_name(c.func) == "getattr" and len(c.args) > 1 and constant(c.args[1])[0])
                  for c in idx.calls) or any(n.attr == "__dict__" for n in idx.of(ast.Attribute))
    if dynamic:
        module.cache["attribute-uses"] = None
        return None
    imported = {(a.asname or a.name).split(".")[0] for node in idx.of(ast.Import, ast.ImportFrom) for a in node.names}
    load, name_node = ast.Load, ast.Name
    for n in idx.of(ast.Attribute):
        if n.ctx.__class__ is not load or n.value.__class__ is not name_node:
            if n.ctx.__class__ is load:
                used["other"].add(n.attr)
            continue
        if n.value.id in imported:
            continue  # F.dropout, nn.Dropout: a module's function, not an object's attribute
        if n.value.id != "self":
            used["other"].add(n.attr)
    for cls in idx.of(ast.ClassDef):  # self.<a> read inside a class (a nested class counts for both)
        reads = used["self"].setdefault(cls.name, set())
        for n in walk(cls):
            if n.__class__ is ast.Attribute and n.ctx.__class__ is load and n.value.__class__ is name_node \
                    and n.value.id == "self":
                reads.add(n.attr)
    module.cache["attribute-uses"] = used
    return used


# --- DRP522: interface parameters (#25, wild evaluation) ----------------------------------
# A rate that a constructor accepts and ignores is a lost setting unless the signature is an
# interface the class must honour: wenet's registry-built subsampling classes all take
# (idim, odim, dropout_rate, pos_enc_class) and only some use the rate; a base class takes what
# its subclasses pass up through super(). Those stay visible at info, with the reason.

_MODULE_TYPES = frozenset({"Module", "nn.Module", "torch.nn.Module"})


def _interface_reason(module, fn, cls, name: str, read: set):
    """Why an unused rate parameter of `fn` is part of an interface, else None."""
    for n in ast.walk(fn):
        if isinstance(n, ast.Delete) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets):
            return f"{fn.name}() discards it on purpose (`del {name}`, line {n.lineno}): the signature keeps it for callers"
    family = _absent_component(module, fn, cls, name, read)
    if family:
        return (f"the other {family[0]}* parameters ({', '.join(family[1])}) are unused too and no "
                f"{family[0].strip('_')} component is built here: the rate has nothing to apply to")
    if not (isinstance(cls, ast.ClassDef) and fn.name == "__init__"):
        return None
    layer = _component_built_without_it(cls, name)
    if layer is not None:
        return (f"self.{layer[0]} is built as {layer[1]} (line {layer[2]}), which has no attention weights to drop: "
                "the parameter keeps the signature of the blocks that have them")
    sibling = _sibling_using(module, cls, fn, name)
    if sibling is not None:
        return (f"{sibling.name} (line {sibling.lineno}), with the same base and the same parameters, uses it: a "
                "shared signature, not a lost setting")
    sub = _subclass_passing_up(module, cls, name)
    if sub is not None:
        return (f"subclass {sub.name} (line {sub.lineno}) uses it and passes it up through super().__init__: an "
                "interface parameter, not a lost setting")
    built = _built_component(fn, read)
    if built is not None:
        return f"{fn.name}() takes the built module {built}, whose own dropout the caller may have set with this rate"
    return _headless_copy(module, fn, cls, name)


_HEAD = re.compile(r"(^|_)(classifier|head|fc|logits|cls)(_|$)", re.I)


def _headless_copy(module, fn, cls, name: str):
    """The rate is another class's head dropout, and this class builds no head: timm's
    features-only backbones (EfficientNetFeatures, MobileNetV3Features) take the classifier's
    `drop_rate` to share its signature, and RDNet passes it to blocks that never use it while
    its own head does (#31). None when this class has a head or no class of the file reads it."""
    if not (isinstance(cls, ast.ClassDef) and fn.name == "__init__"):
        return None
    if _built_heads(cls):
        return None
    for other in module.index.of(ast.ClassDef):
        if other is cls:
            continue
        init = module.index.methods.get(other.name, {}).get("__init__")
        if init is None or name not in _params(init):
            continue
        if _built_heads(other) and (_first_reads(init, {name}) or _stored_unread(module, init, name) is None):
            return (f"{other.name} (line {other.lineno}) takes the same {name} for its head, and {cls.name} builds "
                    "no head: a shared signature, not a lost setting")
    return None


def _built_heads(cls) -> list:
    """The class's attributes named as a head and built as a module (`self.head = nn.Linear(...)`),
    not a number or a flag (`self.head_hidden_size = 2048`, pytorchvideo's `self.has_cls_embed = True`)."""
    return [attr for attr, value, _ in self_assignments(cls) if isinstance(value, ast.Call) and _HEAD.search(attr)]


def _params(fn) -> list:
    args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
    return [a.arg for a in args if a.arg not in ("self", "cls")]


def _absent_component(module, fn, cls, name: str, read: set):
    """(prefix, names) when the rate belongs to a component that is not built at all: every
    parameter with its prefix is unused and no name in the class (or function) mentions the
    component (SenseVoice's SANM attention takes lora_list/lora_rank/lora_alpha/lora_dropout and
    its LoRA code is commented out). A component that exists (an `attention_type` beside an
    unused `attention_dropout` in an attention class) keeps the finding loud."""
    cut = name.lower().find("drop")
    prefix = name[:cut]
    if cut <= 0 or not prefix.endswith("_"):
        return None
    family = [p for p in _params(fn) if p != name and p.startswith(prefix)]
    if not family or any(p in read for p in family) or _first_reads(fn, set(family)):
        return None
    stem = prefix.strip("_").lower()
    scope = cls if isinstance(cls, ast.ClassDef) else fn
    for n in ast.walk(scope):
        word = (n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute)
                else n.name if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not scope
                else "")
        if stem in word.lower():
            return None
    return prefix, family


# torch.nn layers that hold no attention weights: a rate for them has nothing to drop
_NO_WEIGHTS_TO_DROP = re.compile(r"^(Conv[123]d|ConvTranspose[123]d|Linear|Identity)$")


def _component_built_without_it(cls, name: str):
    """(attribute, layer, line) when the rate names a component (`attn_drop` -> self.attn) that
    the class builds as a plain torch layer with no attention weights: UniFormer's CBlock takes
    SABlock's `attn_drop` but its `self.attn` is a depthwise nn.Conv2d. Only attention rates:
    an MLP or a policy net built here could have taken a general `dropout` (CORL's
    GaussianPolicy ignores the one its config sets), and that stays a warning."""
    cut = name.lower().find("drop")
    stem = name[:cut].rstrip("_").lower()
    if cut <= 0 or stem not in ("attn", "attention"):
        return None
    for attr, value, stmt in self_assignments(cls):
        if attr.lower() == stem and isinstance(value, ast.Call) and classes.torch_nn_class(value.func) \
                and _NO_WEIGHTS_TO_DROP.match(last_name(value.func) or ""):
            return stem, f"nn.{last_name(value.func)}", stmt.lineno
    return None


def _sibling_using(module, cls, fn, name: str):
    """A class of this file with the same (non-generic) base whose __init__ takes the same
    parameters up to and including `name`, and reads it."""
    bases = [ast.dump(b) for b in cls.bases]
    if not bases or all((dotted(b) or "") in _MODULE_TYPES for b in cls.bases):
        return None
    mine = _params(fn)
    head = mine[:mine.index(name) + 1]
    for other in module.index.of(ast.ClassDef):
        if other is cls or [ast.dump(b) for b in other.bases] != bases:
            continue
        init = module.index.methods.get(other.name, {}).get("__init__")
        if init is None or _params(init)[:len(head)] != head:
            continue
        if _first_reads(init, {name}):
            return other
    return None


def _subclass_passing_up(module, cls, name: str):
    """A class of this file derived from cls whose __init__ reads `name` and passes it to
    super().__init__ (wenet's TransformerEncoder gives BaseEncoder attention_dropout_rate)."""
    for other in module.index.of(ast.ClassDef):
        if other is cls or not any(last_name(b) == cls.name for b in other.bases):
            continue
        init = module.index.methods.get(other.name, {}).get("__init__")
        if init is None or name not in _params(init):
            continue
        up = [c for c in ast.walk(init) if isinstance(c, ast.Call) and last_name(c.func) == "__init__"]
        passes = any(isinstance(v, ast.Name) and v.id == name
                     for c in up for v in list(c.args) + [k.value for k in c.keywords])
        used = any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                   and not any(n is v for c in up for v in list(c.args) + [k.value for k in c.keywords])
                   for n in ast.walk(init))
        if passes and used:
            return other
    return None


def _built_component(fn, read: set):
    """The parameter annotated as a module (`encoder_layer: nn.Module`) that fn uses: a component
    the caller built, with its own dropout (icefall's Zipformer2Encoder deep-copies the layer the
    caller built with the same `dropout`; wenet's subsampling uses the pos_enc built with the
    positional rate)."""
    for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs:
        if a.annotation is not None and (dotted(a.annotation) or "") in _MODULE_TYPES and (
                a.arg in read or _first_reads(fn, {a.arg})):
            return a.arg
    return None


# Constructors that record every argument on the instance: diffusers' ConfigMixin decorator
# (diffusers/configuration_utils.py: register_to_config stores the init kwargs in self.config)
# and Lightning's save_hyperparameters (self.hparams).
_RECORDING_DECORATORS = frozenset({"register_to_config", "flax_register_to_config"})


def _recorded_reads(module, init, cls) -> set:
    """Names of __init__ arguments the constructor records on the instance and the class reads
    back as `self.config.<name>` / `self.hparams.<name>` (or `["<name>"]`). Such an argument is
    used even though __init__'s body never names it (diffusers' self.config.dropout)."""
    holders = set()
    if any(last_name(getattr(d, "func", d)) in _RECORDING_DECORATORS for d in init.decorator_list):
        holders.add("config")
    for n in ast.walk(init):
        if isinstance(n, ast.Call) and last_name(n.func) == "save_hyperparameters":
            holders.add("hparams")
    if not holders:
        return set()
    names = set()
    for n in ast.walk(cls):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute) and n.value.attr in holders:
            names.add(n.attr)
        elif (isinstance(n, ast.Subscript) and isinstance(n.value, ast.Attribute) and n.value.attr in holders
              and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str)):
            names.add(n.slice.value)
    return names


def _literal_passed(fn, name):
    for n in ast.walk(fn):
        if isinstance(n, ast.Call):
            kw = kwarg(n, name)
            if kw is not None and constant(kw.value)[0]:
                return kw.value
    return None


def _shadowed(fn, name, first_read: int):
    """The literal `name = <literal>` assigned before fn.body[first_read], the first
    statement that reads name, else None."""
    for i, stmt in enumerate(fn.body):
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                ok, _ = constant(stmt.value) if stmt.value is not None else (False, None)
                return stmt.value if ok else None
        if i == first_read:
            return None
    return None


def _inside(module, node, fn) -> bool:
    return any(a is fn for a in module.ancestors(node))


def _first_reads(fn, names: set) -> dict:
    """name -> the position in fn.body of the first statement that reads it (a Name load
    anywhere under it, nested functions included), for the names that are read: one walk of
    the body for all of a function's parameters."""
    found = {}
    load = ast.Load
    for i, stmt in enumerate(fn.body):
        for node in walk(stmt):
            if node.__class__ is ast.Name and node.id in names and node.id not in found and node.ctx.__class__ is load:
                found[node.id] = i
        if len(found) == len(names):
            break
    return found


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
    return (owner, node.attr) if model_like(owner) else None


@check("dropout-set-after-build", scope="setup")
def dropout_set_after_build(ctx, rule):
    """Modules copy their dropout rate from the config when they are built; writing
    model.config.<dropout> afterwards changes the saved config but not the running model
    (transformers#27315 discussion; facts.md "Transformers configs"). The advice names a key
    the model's type declares (#26): passing an undeclared one to from_pretrained raises."""
    src, module = python_driver(ctx)
    if module is None:
        return
    idx = module.index
    for node in _config_writes(idx) + idx.calls_by_name.get("setattr", []):
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
                    and obj.attr == "config" and model_like(obj.value)):
                found, anchor = (obj.value, value), node
        if found and _rebuilt_after(module, node, found[0]):
            continue
        if found:
            owner, key = found
            name = dotted(owner) or "the model"
            if "layerdrop" in key and not _loaded_type(module, owner, ctx.setup):
                # Layer drop is a probability checked at every forward, and some encoders read it
                # there from the config (Wav2Vec2, HuBERT: `self.config.layerdrop`, 9 families of
                # transformers 5.24; 46 copy it at construction): for a model of no known type
                # the claim is a guess, said at info
                yield Hit(src.path, module.span(anchor),
                          f"{name}.config.{key} is set after {name} was built: most models copy it at construction, "
                          f"so this would change nothing, but some (Wav2Vec2, HuBERT) read config.{key} at every "
                          f"forward, and this model's type is not known here", key=f"{name}.config.{key}",
                          severity="info")
                continue
            yield Hit(src.path, module.span(anchor),
                      f"{name}.config.{key} is set after {name} was built: its layers read the value at "
                      f"construction, so this changes nothing; {_advice(module, owner, key, ctx.setup)}",
                      key=f"{name}.config.{key}")


def _advice(module, owner, key, setup) -> str:
    """What to do instead, on what is known of the model's type: the key itself where the type
    declares it, the key it reads in the same role where it does not (architectures.suggest),
    else the config route, which never raises (an undeclared from_pretrained keyword reaches
    the model's __init__ and raises TypeError: DRP124)."""
    model_type = _loaded_type(module, owner, setup)
    if model_type:
        from auditor.knowledge import architectures

        info = architectures.lookup(model_type)
        if info is not None and not info.is_composite:
            if key in info.keys or key in info.aliases:
                return f"pass {key}=... to from_pretrained instead"
            other = architectures.suggest(model_type, key)
            if other:
                return (f"{model_type} does not declare {key} (from_pretrained(..., {key}=...) raises TypeError); "
                        f"the key it reads in that role is {other}: pass {other}=... to from_pretrained instead")
            return (f"{model_type} does not declare {key} and reads no other key in that role, so this dropout "
                    "cannot be set on this model")
    return (f"set {key} on the config before the model is built (config = AutoConfig.from_pretrained(...); "
            f"config.{key} = ...; from_pretrained(..., config=config)) instead")


def _loaded_type(module, owner, setup) -> str:
    """The model type the setup stage resolved for `owner = X.from_pretrained("ref")`, else ''."""
    value = models.binding(module, receiver_key(owner))
    if setup is None or not (isinstance(value, ast.Call) and last_name(value.func) == "from_pretrained"):
        return ""
    ref = arg_or_kwarg(value, "pretrained_model_name_or_path", 0)
    if isinstance(ref, ast.Name):
        ref = models.binding(module, ref.id)
    ok, ref = constant(ref) if ref is not None else (False, None)
    if not ok or not isinstance(ref, str):
        return ""
    found = {m.model_type for m in getattr(setup, "models", {}).values() if m.ref == ref and m.model_type}
    return found.pop() if len(found) == 1 else ""


def _config_writes(idx) -> list:
    """The assignments with a `<x>.config.<rate>` target, in source order: a cheap look at each
    target, sorting only the few that qualify."""
    attribute = ast.Attribute
    found = []
    for kind in (ast.Assign, ast.AugAssign, ast.AnnAssign):
        for stmt in idx.of(kind):
            for t in (stmt.targets if kind is ast.Assign else (stmt.target,)):
                if (t.__class__ is attribute and t.value.__class__ is attribute and t.value.attr == "config"
                        and dropout_keys.is_rate_key(t.attr)):
                    found.append(stmt)
                    break
    return sorted(found, key=idx.order)


# Capitalised callees that receive a model without building a module from its config: a
# trainer runs it, a parallel wrapper or an accelerator wraps it (#26: Trainer(model=model)
# is the commonest form and was taken for a rebuild).
_NOT_BUILDERS = re.compile(r"Trainer$|Collator|Arguments$|Config$|DistributedDataParallel$|^DDP$|^FSDP$|"
                           r"FullyShardedDataParallel$|DataParallel$|Accelerator$|Callback$|Pipeline$|Dataset$|"
                           r"DataLoader$|Evaluator$|Optimizer$|^Adam|^SGD$", re.I)


def _rebuilt_after(module, stmt, owner) -> bool:
    """A module built after the assignment from the model or its config reads the new value
    (a value head reading summary_dropout_prob, a wrapper class, get_peft_model); a trainer
    or a parallel wrapper given the model builds nothing."""
    key = receiver_key(owner)
    scope = module.enclosing_function(stmt) or module.tree
    after = module.index.order(stmt)
    for call in module.calls():
        if module.index.order(call) <= after or (module.enclosing_function(call) or module.tree) is not scope:
            continue
        name = last_name(call.func)
        if not name or not (name[0].isupper() or name in ("from_pretrained", "from_config", "get_peft_model")):
            continue
        if _NOT_BUILDERS.search(name):
            continue
        for arg in list(call.args) + [kw.value for kw in call.keywords]:
            target = arg.value if isinstance(arg, ast.Attribute) and arg.attr == "config" else arg
            if receiver_key(target) == key:
                return True
    return False


@check("dropout-result-discarded")
def dropout_result_discarded(ctx, rule):
    """F.dropout and nn.Dropout return a new tensor; a call whose result is thrown away (a bare
    expression statement) changes nothing unless inplace=True."""
    module = python_module_of(ctx)
    if module is None:
        return
    from auditor.checks.code.eval_mode import functional_name

    for stmt in module.index.of(ast.Expr):
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
            continue
        call = stmt.value
        name = functional_name(module, call)
        what = f"{dotted(call.func) or name}(...)" if name else _dropout_module_call(module, call)
        if not what or has_star_args(call):
            continue
        inplace = kwarg(call, "inplace")
        if inplace is None and name:
            inplace_arg = arg_or_kwarg(call, "inplace", 3)
            inplace = inplace_arg
        value = getattr(inplace, "value", inplace)
        if value is not None and constant(value) != (True, False):
            continue  # inplace=True (or not known): the tensor itself changes
        p = arg_or_kwarg(call, "p", 1) if name else None
        if p is not None and models.zero_rate(module, p):
            continue
        yield hit(ctx, module, call, f"the result of {what} is discarded: dropout returns a new tensor, so this "
                   "line does nothing; assign it (x = ...)", key=what)


def _dropout_assignments(module) -> dict:
    """The part of ModuleIndex.assigns whose statements assign a dropout module call
    (`self.drop = nn.Dropout(p)`), in the same order: the only statements the callers judge,
    found from the dropout calls instead of every assignment of the module."""
    found = module.cache.get("dropout-assignments")
    if found is None:
        found = module.cache["dropout-assignments"] = {}
        idx = module.index
        for call in idx.calls_named(DROPOUT_MODULES):
            stmt = idx.parents.get(call)
            if stmt.__class__ in ASSIGNMENTS and stmt.value is call:
                for name in target_names(stmt):
                    found.setdefault(name, []).append(stmt)
        for group in found.values():
            group.sort(key=idx.order)
    return found


def _dropout_module_call(module, call) -> str:
    """`self.drop(x)` where self.drop is an nn.Dropout built in the class, or `nn.Dropout(p)(x)`."""
    func = call.func
    if isinstance(func, ast.Call) and last_name(func.func) in DROPOUT_MODULES:
        return f"{last_name(func.func)}(...)(...)"
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"):
        return ""
    for stmt in _dropout_assignments(module).get(f"self.{func.attr}", ()):
        value = getattr(stmt, "value", None)
        if isinstance(value, ast.Call) and last_name(value.func) in DROPOUT_MODULES:
            inplace = arg_or_kwarg(value, "inplace", 1)
            if inplace is not None and constant(inplace) != (True, False):
                return ""  # nn.Dropout(p, inplace=True) changes its input
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                return f"self.{func.attr}(...)"
    return ""


@check("dropout-flag-unread")
def dropout_flag_unread(ctx, rule):
    """A `--dropout` command-line flag that is parsed but never read: whatever the user passes,
    the model trains with its own default. Reported only when the parsed arguments never leave
    the file (every use of them is an attribute read), so a reader elsewhere cannot exist."""
    module = python_module_of(ctx)
    if module is None:
        return
    flags = []
    for call in module.index.calls_by_name.get("add_argument", ()):
        option = None
        for a in call.args:
            ok, value = constant(a)
            if ok and isinstance(value, str) and value.startswith("-") and (option is None or value.startswith("--")):
                option = (a, value)
        if option is None:
            continue
        action = kwarg(call, "action")
        if action is not None and constant(action.value)[1] in ("store_true", "store_false", "store_const"):
            continue
        dest_kw = kwarg(call, "dest")
        dest = constant(dest_kw.value)[1] if dest_kw is not None else option[1].lstrip("-").replace("-", "_")
        if isinstance(dest, str) and dropout_param(dest):
            flags.append((option[0], option[1], dest))
    if not flags or not _namespace_stays_local(module):
        return
    attrs = {n.attr for n in module.index.of(ast.Attribute) if isinstance(n.ctx, ast.Load)}
    declared = {id(n) for c in module.index.calls_by_name.get("add_argument", ()) for n in ast.walk(c)}
    strings = {n.value for n in module.index.of(ast.Constant) if isinstance(n.value, str) and id(n) not in declared}
    for node, flag, dest in flags:
        if dest in attrs or dest in strings:
            continue  # read as args.<dest>, or by name (getattr(args, "<dest>"), a dict key)
        yield hit(ctx, module, node, f"{flag} is parsed but args.{dest} is never read in this file: the flag has "
                   "no effect on the model", key=flag)


def _namespace_stays_local(module) -> bool:
    """The parsed argument namespace (and local functions' parameters that receive it) is used
    only as `args.<name>`: never passed on, returned, unpacked with vars() or stored."""
    names = set()
    for call in module.index.calls:
        if last_name(call.func) in ("parse_args", "parse_known_args", "parse_args_into_dataclasses"):
            if last_name(call.func) != "parse_args":
                return False  # tuples of namespaces / dataclasses: beyond this check
            stmt = module.index.statement(call)
            if not (isinstance(stmt, ast.Assign) and stmt.value is call and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)):
                return False
            names.add(stmt.targets[0].id)
    if not names:
        return False
    functions = {fn.name: fn for fn in module.index.of(ast.FunctionDef, ast.AsyncFunctionDef)}
    changed = True
    while changed:  # parameters of local functions that receive the namespace
        changed = False
        for call in module.index.calls:
            fn = functions.get(last_name(call.func)) if isinstance(call.func, ast.Name) else None
            if fn is None:
                continue
            params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
            for i, a in enumerate(call.args):
                if isinstance(a, ast.Name) and a.id in names and i < len(params) and params[i] not in names:
                    names.add(params[i])
                    changed = True
    for node in module.index.of(ast.Name):
        if node.id in names and isinstance(node.ctx, ast.Load):
            parent = module.parent(node)
            if isinstance(parent, ast.Attribute):
                continue
            if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id in functions:
                continue
            return False
    return True


@check("attention-path-without-dropout")
def attention_path_without_dropout(ctx, rule):
    """A module with two attention paths (a fused kernel and a manual softmax, flash or not)
    that applies attention dropout on one and calls scaled_dot_product_attention/flash-attn
    without dropout_p on the other: whichever path runs decides whether the configured
    attention dropout exists at all (nanoGPT#240 class of bugs)."""
    module = python_module_of(ctx)
    if module is None:
        return
    for call in module.index.calls_named(ATTENTION):
        spec = ATTENTION[last_name(call.func)]
        if has_star_args(call):
            continue
        p = arg_or_kwarg(call, *spec)
        if p is not None and not models.zero_rate(module, p):
            continue
        other = _other_branch_with_dropout(module, call)
        if other is None:
            continue
        yield hit(ctx, module, call.func,
                   f"{last_name(call.func)}() runs without {spec[0]} here, while the other branch applies attention "
                   f"dropout ({_describe(module, other)}, line {other.lineno}): on this path the configured attention "
                   f"dropout never happens; pass {spec[0]}=<p> if self.training else 0.0", key=last_name(call.func))


def _other_branch_with_dropout(module, call):
    """The dropout call in the other branch of the nearest if/else around `call`, else None."""
    from auditor.sources.python_facts import mentions_training

    child = call
    for a in module.ancestors(call):
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            return None
        if isinstance(a, (ast.If, ast.IfExp)):
            if mentions_training(a.test):
                return None  # the paths are chosen by the mode: no dropout in eval is right
            body = a.body if isinstance(a.body, list) else [a.body]
            orelse = a.orelse if isinstance(a.orelse, list) else [a.orelse]
            if any(n is child for n in body):
                other = orelse
            elif any(n is child for n in orelse):
                other = body
            else:
                child = a
                continue
            for stmt in other:
                for n in ast.walk(stmt):
                    if isinstance(n, ast.Call) and _applies_dropout(module, n):
                        return n
            return None
        child = a
    return None


def _applies_dropout(module, call) -> bool:
    from auditor.checks.code.eval_mode import functional_name

    name = last_name(call.func)
    if name in ATTENTION:
        p = arg_or_kwarg(call, *ATTENTION[name])
        return p is not None and not models.zero_rate(module, p)
    if functional_name(module, call):
        p = arg_or_kwarg(call, "p", 1)
        return p is None or not models.zero_rate(module, p)
    return bool(_dropout_module_call(module, call)) or bool(_inplace_dropout_module(module, call))


def _inplace_dropout_module(module, call) -> bool:
    func = call.func
    if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"):
        return False
    return any(isinstance(getattr(s, "value", None), ast.Call) and last_name(s.value.func) in DROPOUT_MODULES
               for s in _dropout_assignments(module).get(f"self.{func.attr}", ()))


def _describe(module, call) -> str:
    return f"{dotted(call.func) or last_name(call.func)}(...)"
