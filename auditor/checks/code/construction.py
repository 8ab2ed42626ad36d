"""Does a model built by the script have dropout, judged at the call that builds it?

models.class_dropout answers for a class: it has an nn.Dropout(config.dropout), so it may
drop. Whether it does depends on the value the construction passes: nanoGPT's GPTConfig
defaults dropout to 0.0, a from-scratch book's config dict says "drop_rate": 0.1. A loud
finding needs the rate as a fact, so each rate the class (and the classes it builds) reads
is looked up by name where the construction gives it: a literal keyword of the call, a field
of a config object passed to it (a literal keyword of the config's call, a default of its
dataclass or __init__, a key of a dict literal), else the default of a parameter of that
name in the class's __init__. NONZERO when one resolves above 0, ZERO when every one
resolves to 0, UNKNOWN otherwise (and for anything from elsewhere). Batch norm counts as a
fact too: it also behaves differently in train mode.
"""

from __future__ import annotations

import ast

from auditor.checks.code import classes, models, siblings
from auditor.checks.code.common import ATTENTION, DROPOUT_MODULES, FUNCTIONAL, rate_name
from auditor.sources.python_facts import arg_or_kwarg, constant, has_star_args, last_name, parameters_with_defaults

# torch.nn layers with a dropout argument and its default (torch/nn/modules/transformer.py).
_NN_DROPOUT_DEFAULT = {"Transformer": 0.1, "TransformerEncoderLayer": 0.1, "TransformerDecoderLayer": 0.1,
                       "MultiheadAttention": 0.0, "LSTM": 0.0, "GRU": 0.0, "RNN": 0.0}
_NN_CONTAINS = frozenset({"TransformerEncoder", "TransformerDecoder"})  # dropout of the layer they are given
_BATCHNORM = models.NN_BATCHNORM
_MISSING = object()


def built_dropout(module, call) -> str:
    """ZERO, NONZERO or UNKNOWN for the model `call` builds (a module class of the file or of
    a sibling module, a torch.nn container, or anything else: UNKNOWN)."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "from_pretrained":
        owner = classes.module_class(module, func.value)
        return models.class_dropout(*owner) if owner is not None else models.UNKNOWN
    owner = classes.module_class(module, func)
    if owner is not None:
        mod, cls = owner
        if models.class_dropout(mod, cls) != models.NONZERO:
            return models.class_dropout(mod, cls)
        sites = []
        if not _sites(mod, cls, sites, set()):
            return models.UNKNOWN
        return _judge([_value(module, call, mod, cls, s) for s in sites])
    name = last_name(func)
    if name == "Sequential":
        sites = []
        for arg in call.args:
            if isinstance(arg, ast.Call):
                if not _layer(module, arg, sites):
                    return models.UNKNOWN
        return _judge([_value(module, call, module, None, s) for s in sites]) if sites else models.ZERO
    if name in _NN_DROPOUT_DEFAULT or name in _NN_CONTAINS:
        sites = []
        return _judge([_value(module, call, module, None, s) for s in sites]) if _layer(module, call, sites) \
            else models.UNKNOWN
    return models.UNKNOWN


def _judge(values) -> str:
    if any(v is not None and v > 0 for v in values):
        return models.NONZERO
    if values and all(v is not None for v in values):
        return models.ZERO
    return models.UNKNOWN


def _layer(module, call, sites) -> bool:
    """The rate sites of one torch.nn layer call; False when it is from elsewhere."""
    name = last_name(call.func)
    if name in DROPOUT_MODULES:
        p = arg_or_kwarg(call, "p", 0)
        sites.append(p if p is not None else 0.5)
    elif name in _NN_DROPOUT_DEFAULT:
        p = arg_or_kwarg(call, "dropout", {"Transformer": 6, "TransformerEncoderLayer": 3, "TransformerDecoderLayer": 3,
                                           "MultiheadAttention": 2, "LSTM": 5, "GRU": 5, "RNN": 6}.get(name))
        sites.append(p if p is not None else _NN_DROPOUT_DEFAULT[name])
    elif name in _NN_CONTAINS:
        layer = arg_or_kwarg(call, "encoder_layer" if name == "TransformerEncoder" else "decoder_layer", 0)
        if isinstance(layer, ast.Name):
            layer = models.binding(module, layer.id)
        return isinstance(layer, ast.Call) and _layer(module, layer, sites)
    elif name in _BATCHNORM:
        if models.keeps_running_stats(call):
            sites.append(1.0)
    elif name not in models.NN_WITHOUT_DROPOUT:
        return False
    return True


def _sites(mod, cls, out, seen) -> bool:
    """Collect the rate expressions of a class of `mod` and of the local classes it builds;
    False when it builds something whose dropout cannot be known here."""
    if cls.name in seen:
        return True
    seen.add(cls.name)
    local = classes.local_module_classes(mod)
    for base in cls.bases:
        if last_name(base) in local and not _sites(mod, local[last_name(base)], out, seen):
            return False
    for node in ast.walk(cls):
        if not isinstance(node, ast.Call):
            continue
        name = last_name(node.func)
        if name in DROPOUT_MODULES:
            p = arg_or_kwarg(node, "p", 0)
            out.append(p if p is not None else 0.5)
        elif name in FUNCTIONAL:
            p = arg_or_kwarg(node, "p", 1)
            out.append(p if p is not None else 0.5)
        elif name in ATTENTION:
            p = arg_or_kwarg(node, *ATTENTION[name])
            if p is not None:
                out.append(p)
        elif name in _NN_DROPOUT_DEFAULT or name in _BATCHNORM:
            _layer(mod, node, out)
        elif name in local:
            if not _sites(mod, local[name], out, seen):
                return False
    return True


def _value(module, call, mod, cls, site):
    """The number a rate site has for this construction, else None."""
    if isinstance(site, (int, float)):
        return float(site)
    ok, v = constant(site)
    if ok:
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
    if isinstance(site, ast.IfExp):  # `p if self.training else 0.0`: the training value decides
        return _value(module, call, mod, cls, site.body)
    name = rate_name(site)
    if name is None:
        return None
    found = _given(module, call, name)
    if found is not _MISSING:
        return found
    if cls is not None:
        default = _init_default(mod, cls, name, set())
        if default is not _MISSING:
            return default
    return None


def _number(node):
    ok, v = constant(node)
    if ok and isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def _given(module, call, name):
    """The value the construction gives `name`: its own keyword, or a field of a config it
    is passed; _MISSING when it gives nothing, None when it gives something not literal."""
    kw = next((k for k in call.keywords if k.arg == name), None)
    if kw is not None:
        return _number(kw.value)
    if has_star_args(call):
        return None
    for arg in list(call.args) + [k.value for k in call.keywords]:
        found = _field(module, arg, name)
        if found is not _MISSING:
            return found
    return _MISSING


def _field(module, node, name, depth=0):
    """`name` in a config object: a call XConfig(...) or dict(...), a dict literal, or a name
    bound to one of them in the driver (its later `cfg[name] = v` and `cfg.update(...)` too)."""
    if depth > 2:
        return None
    if isinstance(node, ast.Name):
        value = models.binding(module, node.id)
        if value is None:
            return _MISSING
        changed = _mutated(module, node.id, name)
        if changed is not _MISSING:
            return changed
        return _field(module, value, name, depth + 1)
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            return None  # {**base, ...}
        for k, v in zip(node.keys, node.values):
            if constant(k) == (True, name):
                return _number(v)
        return _MISSING
    if isinstance(node, ast.Call):
        kw = next((k for k in node.keywords if k.arg == name), None)
        if kw is not None:
            return _number(kw.value)
        if has_star_args(node):
            return None
        if last_name(node.func) == "dict":
            return _MISSING
        owner = _config_class(module, node.func)
        if owner is not None:
            return _init_default(*owner, name, set(), fields=True)
    return _MISSING


def _mutated(module, var, name):
    """A later `var[name] = v` / `var.name = v` (its value) or `var.update(...)` (None)."""
    found = _MISSING
    for stmt in module.index.of(ast.Assign):
        for t in stmt.targets:
            if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == var \
                    and constant(t.slice) == (True, name):
                found = _number(stmt.value)
            elif isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == var \
                    and t.attr == name:
                found = _number(stmt.value)
    for c in module.index.calls_by_name.get("update", ()):
        if isinstance(c.func, ast.Attribute) and isinstance(c.func.value, ast.Name) and c.func.value.id == var:
            return None
    return found


def _config_class(module, func):
    """(module, ClassDef) of a config class named by `func`: the file's or a sibling's."""
    if isinstance(func, ast.Name):
        cls = module.index.classes.get(func.id)
        if cls is not None:
            return module, cls
        return siblings.imported(module).lookup(func.id)
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return siblings.imported(module).attribute(func.value.id, func.attr)
    return None


def _init_default(mod, cls, name, seen, fields=False):
    """The literal default of `name` in a class: a dataclass-style field `name: float = 0.1`
    (fields=True, for configs) or a parameter of __init__; _MISSING when it has none."""
    if cls.name in seen:
        return _MISSING
    seen.add(cls.name)
    for node in cls.body:
        if fields and isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and node.target.id == name and node.value is not None:
            return _number(node.value)
        if fields and isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                                           for t in node.targets):
            return _number(node.value)
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            for a, d in parameters_with_defaults(node):
                if a.arg == name:
                    return _number(d) if d is not None else _MISSING
    for base in cls.bases:
        sub = mod.index.classes.get(last_name(base))
        if sub is not None:
            found = _init_default(mod, sub, name, seen, fields)
            if found is not _MISSING:
                return found
    return _MISSING
