"""What a name in a training script is: a model (and a trained or a frozen one), whether that
model has any dropout, and whether the file trains at all.

The eval-mode rules only mean something for a module that is trained and has dropout: eval()
on a frozen reference model is right, a context manager named `model_ctx` is no model, and a
model without dropout (or batch norm) behaves the same in both modes. These questions are
answered from evidence in the file and its setup, never from the name alone; where there is
none, the answer is "unknown" and the rules say so at info severity.

Imports inside functions (`knowledge.architectures`, `knowledge.library_models`,
`setup.identity`) are deferred for start-up time: a run that never takes that path never pays
for them.
"""

from __future__ import annotations

import ast
import re

from auditor.checks.code import classes
from auditor.checks.code.common import ATTENTION, DROPOUT_MODULES, FUNCTIONAL, MODEL, NOT_MODEL, RNNS
from auditor.checks.code.flow import NN_BUILT, SELF_RETURNING, UNPICKLE, WRAPPERS, receiver_key
from auditor.sources.python_facts import (
    ASSIGNMENTS,
    arg_or_kwarg,
    constant,
    dotted,
    imported_from,
    is_zero,
    last_name,
    target_names,
    walk,
)

ZERO, NONZERO, UNKNOWN = "zero", "nonzero", "unknown"

# Calls whose result is a model (or wraps one).
_FACTORIES = frozenset({"from_pretrained", "from_config", "get_peft_model", "prepare_model", "PeftModel",
                        "DistributedDataParallel", "DDP", "FSDP", "FullyShardedDataParallel", "compile",
                        "deepcopy", "create_reference_model", "build_model", "get_model", "load_model"})
_MODEL_CLASS = re.compile(r"(Model|Net|Network|GPT|Transformer|Classifier|ForCausalLM|ForSequenceClassification|"
                          r"ForConditionalGeneration|Encoder|Decoder|MLP|CNN|RNN|LSTM|ValueHead)\w*$")
# Models meant to stay in eval: their eval() is right, and their forward passes are not "evaluation".
_FROZEN_NAME = re.compile(r"(^|_|\.)(ref|reference|teacher|reward|rm|frozen|ema|judge|old|target|vae|text_encoder|"
                          r"clip|tokenizer)(_|$|\.)|ref_model|teacher_model|reward_model", re.I)
# torch.nn modules that have dropout by default (nn.MultiheadAttention's defaults to 0).
_NN_WITH_DROPOUT = frozenset({"Transformer", "TransformerEncoderLayer", "TransformerDecoderLayer",
                              "TransformerEncoder", "TransformerDecoder"}) | DROPOUT_MODULES
NN_WITHOUT_DROPOUT = frozenset({
    "Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "Embedding", "EmbeddingBag",
    "LayerNorm", "RMSNorm", "GroupNorm", "ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "Softmax", "Identity",
    "Sequential", "ModuleList", "ModuleDict", "Parameter", "ParameterList", "Flatten", "MaxPool1d", "MaxPool2d",
    "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveAvgPool1d", "Upsample", "PixelShuffle", "Bilinear", "Mish",
    "LeakyReLU", "ELU", "Softplus", "Hardswish", "Unflatten", "ZeroPad2d",
    "Module",  # an empty container (StyleGAN2's `self.noises = nn.Module()` holds buffers)
})
# torch.nn layers besides dropout, attention, RNNs and batch norm (matched before these) whose
# output changes with the mode: RReLU draws its slope in training; lazy batch norm is batch norm
NN_MODE_DEPENDENT = frozenset({"RReLU", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d"})
NN_BATCHNORM = frozenset({"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "InstanceNorm1d",
                           "InstanceNorm2d", "InstanceNorm3d"})

def keeps_running_stats(call) -> bool:
    """A norm layer that an inference pass must run in eval mode: batch norm, never instance norm.
    Instance norm normalises each sample by its own statistics in training, and a train-mode
    pass does the same at inference. Only eval() would change it, to running averages when
    `track_running_stats=True` (StarGAN's generator), which no training step computed with:
    CycleGAN's maintainers found results better without eval() (junyanz/pytorch-CycleGAN-and-pix2pix#1005)
    and turned the tracking off rather than switching modes (#395)."""
    return not (last_name(call.func) or "").startswith("InstanceNorm")


def binding(module, key):
    """The last value assigned to `key` anywhere in the module (an expression), else None.
    `model = model.to(device)` or `model = accelerator.prepare(model)` keeps the model it is
    given, so the value before it stands."""
    found = None
    for stmt in module.index.assigns.get(key, ()):
        value = getattr(stmt, "value", None)
        if value is None:
            continue
        if found is not None and _same_model(value, key):
            continue
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], (ast.Tuple, ast.List)):
            if isinstance(value, ast.Call):
                found = value  # model, optimizer = accelerator.prepare(model, optimizer)
            elif isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(stmt.targets[0].elts):
                # G, D = Generator(), Discriminator(): each name gets its own element
                for target, element in zip(stmt.targets[0].elts, value.elts):
                    if isinstance(target, ast.Name) and target.id == key:
                        found = element
            continue
        found = value
    return found


def _same_model(value, key) -> bool:
    """The value is `key` itself, moved or wrapped (`key.to(d)`, `prepare(key)`, `DDP(key)`);
    get_peft_model adds the adapter's dropout, so it is a new value."""
    if isinstance(value, ast.Call) and last_name(value.func) == "get_peft_model":
        return False
    if isinstance(value, ast.Call) and last_name(value.func) in WRAPPERS and value.args:
        value = value.args[0]
    return isinstance(value, (ast.Name, ast.Attribute, ast.Call)) and receiver_key(value) == key


def _class_of(value):
    """The class name a value is built from: `Net(...)` -> 'Net', `Auto...from_pretrained` -> 'Auto...'."""
    if not isinstance(value, ast.Call):
        return ""
    func = value.func
    if isinstance(func, ast.Attribute) and func.attr in ("from_pretrained", "from_config"):
        return last_name(func.value)
    return last_name(func)


def is_model(module, key: str, _seen=frozenset()) -> bool:
    """Evidence that `key` names a torch module: it is bound from a model factory or a module
    class, it is a `self.model`-style attribute, or it is switched with train()/eval() (or its
    parameters are read) and named like a model. A function, a trainer or a tokenizer is not."""
    if not key or key in module.index.functions or key in module.index.classes:
        return False
    last = key.rsplit(".", 1)[-1]
    if NOT_MODEL.search(last):
        return False
    value = binding(module, key)
    if value is None and len(_seen) < 4 and any(is_model(module, a, _seen | {key})
                                                for a in aliases(module, key) - _seen):
        return True
    same = _copied_from(value, key)
    if same and same not in _seen:
        return is_model(module, same, _seen | {key})
    if isinstance(value, ast.Call):
        name = last_name(value.func)
        cls = _class_of(value)
        if (name in _FACTORIES or name == "prepare" or cls in _local_module_classes(module) or _MODEL_CLASS.search(cls)
                or classes.module_class(module, value.func) is not None
                or (name in NN_BUILT and isinstance(value.func, ast.Attribute))):
            return True
        if dotted(value.func) in UNPICKLE and MODEL.search(last) and not NOT_MODEL.search(last):
            return True  # model = torch.load(path): a pickled module
        if MODEL.search(last) is None:
            return False
    if not MODEL.search(last):
        return False
    if key.startswith("self."):
        return True
    return key in _switched_or_trained(module)


def _copied_from(value, key) -> str:
    """`m = model.to(device)`, `m = model`: the other name of the same model, else ''."""
    if not isinstance(value, (ast.Name, ast.Attribute, ast.Call)):
        return ""
    if isinstance(value, ast.Call) and not isinstance(value.func, ast.Attribute):
        return ""  # a factory call, a wrapper: judged by the callers as before
    same = receiver_key(value)
    return same if same and same != key else ""


def _switched_or_trained(module) -> set:
    cached = module.cache.get("switched-keys")
    if cached is None:
        cached = set()
        for name in ("train", "eval", "parameters", "named_parameters", "requires_grad_", "zero_grad"):
            for call in module.index.calls_by_name.get(name, ()):
                if isinstance(call.func, ast.Attribute):
                    cached.add(receiver_key(call.func.value))
        for call in module.index.calls_by_name.get("backward", ()):
            # `model(x).backward()`, `loss = model(x).loss; loss.backward()`: model is trained
            if not isinstance(call.func, ast.Attribute):
                continue
            sources = [call.func.value]
            if isinstance(call.func.value, ast.Name):
                bound = binding(module, call.func.value.id)
                if bound is not None:
                    sources.append(bound)
            for expr in sources:
                for n in ast.walk(expr):
                    if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute)):
                        cached.add(receiver_key(n.func))
        module.cache["switched-keys"] = cached
    return cached


def _local_module_classes(module) -> dict:
    return classes.local_module_classes(module)


def aliases(module, key: str) -> set:
    """The caller keys bound to `key` when it is a parameter of a function the module calls
    (`evaluate(model, ...)` -> {'model'} for evaluate's `net`), from the mode flow."""
    if not key or key.count(".") > 3:
        return set()  # a chain of parameters bound to parameters' attributes goes no deeper
    head, dot, rest = key.partition(".")
    return {a + dot + rest for a in param_aliases(module).get(head, ()) if a != key}


def param_aliases(module) -> dict:
    """parameter name -> the caller keys passed for it at the module's calls of its own
    functions (`evaluate(model, val)` -> {'net': {'model'}}), whether or not the mode flow ran."""
    found = module.cache.get("param-aliases")
    if found is None:
        found = module.cache["param-aliases"] = {}
        functions = module.index.functions
        for call in module.index.calls:
            fn = functions.get(call.func.id) if isinstance(call.func, ast.Name) else None
            if fn is None:
                continue
            for i, a in enumerate(fn.args.posonlyargs + fn.args.args):
                arg = arg_or_kwarg(call, a.arg, i)
                src = receiver_key(arg) if isinstance(arg, (ast.Name, ast.Attribute, ast.Call)) else ""
                if src:
                    found.setdefault(a.arg, set()).add(src)
        fl = module.cache.get("mode-flow")
        for name, keys in (fl.aliases.items() if fl is not None else ()):
            found.setdefault(name, set()).update(keys)
    return found


def is_frozen(module, key: str, _seen=frozenset()) -> bool:
    """A model meant to stay in eval mode: a reference, teacher, reward or EMA model, one whose
    parameters are frozen, or one the file never optimizes while it optimizes another. A
    parameter that receives a model at the module's call sites is frozen when they all are."""
    if _FROZEN_NAME.search(key):
        # by its name, unless its parameters reach the optimizer: diffusers' train_text_encoder
        # scripts optimize `list(unet.parameters()) + list(text_encoder.parameters())`
        return key not in optimized_models(module)
    bound = aliases(module, key) - _seen if len(_seen) < 4 else set()
    if bound and binding(module, key) is None:
        return all(is_frozen(module, a, _seen | {key}) for a in bound)
    for call in module.index.calls_by_name.get("requires_grad_", ()):
        if freezes(call, key) and not _adapter_trained(module, key):
            return True
    if any(freezes(node, key) for node in module.index.of(ast.For)):
        return True
    optimized = optimized_models(module)
    return bool(optimized) and key not in optimized and key.rsplit(".", 1)[-1] not in {
        k.rsplit(".", 1)[-1] for k in optimized}


_GRAD_HELPER = re.compile(r"^(?!un).*(requires_grad|freez)", re.I)  # not unfreeze()


def freezes(node, key: str) -> bool:
    """`key.requires_grad_(False)`; `for p in key.parameters(): p.requires_grad = False` (or
    `p.requires_grad_(False)`, over named_parameters too); or a helper named for it given the
    model, `requires_grad(key, False)` / `freeze(key)` (DiT's and Latte's EMA)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "requires_grad_":
        return receiver_key(node.func.value) == key and _false_arg(arg_or_kwarg(node, "requires_grad", 0), False)
    if isinstance(node, ast.Call) and _GRAD_HELPER.search(last_name(node.func) or "") and node.args:
        return receiver_key(node.args[0]) == key and _false_arg(node.args[1] if len(node.args) > 1 else None, True)
    if isinstance(node, ast.For) and isinstance(node.iter, ast.Call) and isinstance(node.iter.func, ast.Attribute) \
            and node.iter.func.attr in ("parameters", "named_parameters") and receiver_key(node.iter.func.value) == key:
        return any(isinstance(n, ast.Assign) and any(last_name(t) == "requires_grad" for t in n.targets)
                   and constant(n.value) == (True, False)
                   or isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "requires_grad_"
                   and _false_arg(arg_or_kwarg(n, "requires_grad", 0), False) for n in ast.walk(node))
    return False


def _false_arg(arg, missing: bool) -> bool:
    """A literal False; `missing` when there is no argument (`freeze(m)` freezes)."""
    return missing if arg is None else constant(arg) == (True, False)


def _adapter_trained(module, key: str) -> bool:
    """Frozen base weights with an adapter added in place (diffusers' `unet.requires_grad_(False)`
    then `unet.add_adapter(LoraConfig(...))`): the model is trained through its adapter."""
    return any(isinstance(call.func, ast.Attribute) and receiver_key(call.func.value) == key
               for name in ("add_adapter", "load_adapter", "inject_adapter")
               for call in module.index.calls_by_name.get(name, ()))


_OPTIMIZER = re.compile(r"Adam|SGD|optim|Optimizer|Lion|Adafactor|RMSprop|Adagrad")


def optimizer_models(module) -> dict:
    """Optimizer name -> the model keys whose parameters it holds (`opt_d = Adam(D.parameters())`),
    for optimizers built in this file from `.parameters()` calls only; others are not listed."""
    cached = module.cache.get("optimizer-models")
    if cached is not None:
        return cached
    found = {}
    for stmt in module.index.of(ast.Assign):
        value = stmt.value
        if not (isinstance(value, ast.Call) and _OPTIMIZER.search(last_name(value.func) or "")
                and len(stmt.targets) == 1 and isinstance(stmt.targets[0], (ast.Name, ast.Attribute))):
            continue
        keys = {receiver_key(n.func.value) for n in ast.walk(value) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute) and n.func.attr in ("parameters", "named_parameters")}
        keys.discard("")
        if keys:
            found[receiver_key(stmt.targets[0])] = keys
    module.cache["optimizer-models"] = found
    return found


def optimized_models(module) -> set:
    """Models whose parameters reach an optimizer, a trainer or accelerator.prepare in this file."""
    cached = module.cache.get("optimized-models")
    if cached is not None:
        return cached
    found = set()
    for call in module.index.calls:
        name = last_name(call.func)
        if name in ("parameters", "named_parameters") and isinstance(call.func, ast.Attribute):
            parent = module.parent(call)
            while isinstance(parent, (ast.Call, ast.ListComp, ast.GeneratorExp, ast.comprehension, ast.List,
                                      ast.Dict, ast.keyword, ast.Starred, ast.BinOp)) and parent is not None:
                if isinstance(parent, ast.Call) and re.search(r"Adam|SGD|optim|Optimizer|Lion|Adafactor",
                                                               last_name(parent.func) or ""):
                    found.add(receiver_key(call.func.value))
                    break
                parent = module.parent(parent)
        elif name == "prepare" or name.endswith("Trainer"):
            for a in list(call.args) + [kw.value for kw in call.keywords if kw.arg in ("model", None)]:
                k = receiver_key(a)
                if k:
                    found.add(k)
    found.discard("")
    module.cache["optimized-models"] = found
    return found


# --- does the model have dropout? ------------------------------------------------------------

def known_dropout(module, key: str, setup=None, _seen=frozenset()) -> str:
    """ZERO, NONZERO or UNKNOWN: whether the model named `key` has any dropout.

    Evidence, in order: the module class defined in this file (nn.Dropout, F.dropout, attention
    dropout_p, torch.nn layers with dropout); for a pretrained model, the model the setup stage
    resolved for its reference (#11), else the config.json of the same setup. Nothing is guessed.
    """
    if key != "self" and _added_adapter_dropout(module, key) == NONZERO:
        return NONZERO
    value = binding(module, key)
    if value is None and key != "self":
        bound = aliases(module, key) - _seen if len(_seen) < 4 else set()
        found = {known_dropout(module, a, setup, _seen | {key}) for a in sorted(bound)}
        return found.pop() if len(found) == 1 else UNKNOWN
    same = _copied_from(value, key)
    if same and same not in _seen and key != "self":
        return known_dropout(module, same, setup, _seen | {key})
    value = _unmoved(value)  # `Net(...).to(device)` is the Net(...) it returns
    cls = _class_of(value) if value is not None else ""
    local = _local_module_classes(module)
    if key == "self":
        cls = ""
    if cls in local:
        return class_dropout(module, local[cls])
    if isinstance(value, ast.Call) and key != "self":
        func = value.func
        if isinstance(func, ast.Attribute) and func.attr == "from_pretrained":
            func = func.value  # a module class's own from_pretrained (nanoGPT's GPT.from_pretrained)
        owner = classes.module_class(module, func, project=True)
        if owner is not None:
            return class_dropout(*owner)
    if isinstance(value, ast.Call) and last_name(value.func) == "get_peft_model":
        if _adapter_dropout(module, value) == NONZERO:
            return NONZERO  # the adapter drops, whatever the base model does
        inner = value.args[0] if value.args else None
        if isinstance(inner, ast.Name) and inner.id != key:
            return known_dropout(module, inner.id, setup)
        return UNKNOWN
    if isinstance(value, ast.Call) and last_name(value.func) in ("from_pretrained", "from_config"):
        verdict = identity_dropout(module, value, setup)
        return verdict if verdict != UNKNOWN else config_dropout(setup)
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and library_without_dropout(
            module, value.func.id, value):
        return ZERO
    return UNKNOWN


def _unmoved(value):
    """The module a chain of calls that return it builds on: `.to(device)`, `.cuda()`,
    `.train()` hand back the same module, so what decides its dropout is the call below them
    (pytorch_geometric_temporal's `TemporalGNN(...).to(DEVICE)`, ogb's `MetaPath2Vec(...).to(device)`)."""
    while isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr in SELF_RETURNING:
        value = value.func.value
    return value


def library_without_dropout(module, name: str, call=None) -> bool:
    """`model = MetaPath2Vec(...)` with `from torch_geometric.nn import MetaPath2Vec`: a library
    class whose source has no dropout (knowledge/data/library_models.json). The call's keywords
    matter where a keyword can hand the class a module of the user's (a PyG conv's `aggr`); one
    given as a string (or strings) names a built-in of the library, so it hands over nothing."""
    from auditor.knowledge import library_models

    package, original = imported_from(module, name)
    if not package:
        return False
    keywords = tuple(k.arg or "**" for k in call.keywords if not _names_only(k.value)) if call is not None else ()
    return library_models.without_dropout(original, package, keywords)


def _names_only(value) -> bool:
    """A literal string, or a list or tuple of them (`aggr="max"`, `aggr=["mean", "max"]`)."""
    if isinstance(value, (ast.List, ast.Tuple)):
        return all(_names_only(e) for e in value.elts)
    return isinstance(value, ast.Constant) and isinstance(value.value, str)


def _adapter_dropout(module, call) -> str:
    """NONZERO when get_peft_model's config is a literal *Config(..._dropout=p > 0) of this file."""
    return _config_dropout(module, arg_or_kwarg(call, "peft_config", 1))


def _added_adapter_dropout(module, key: str) -> str:
    """NONZERO when `key.add_adapter(LoraConfig(..., lora_dropout=0.1))` (diffusers' and
    Transformers' PEFT integration) adds an adapter whose literal rate is above 0: the adapter
    drops whatever the base model does (#31)."""
    for call in module.index.calls_by_name.get("add_adapter", ()):
        if isinstance(call.func, ast.Attribute) and receiver_key(call.func.value) == key and call.args:
            if _config_dropout(module, call.args[0]) == NONZERO:
                return NONZERO
    return UNKNOWN


def _config_dropout(module, cfg) -> str:
    """NONZERO for a literal *Config(..._dropout=p > 0) call, or a name bound to one, of this file."""
    if isinstance(cfg, ast.Name):
        cfg = binding(module, cfg.id)
    if not isinstance(cfg, ast.Call):
        return UNKNOWN
    for kw in cfg.keywords:
        if kw.arg and "dropout" in kw.arg:
            ok, v = constant(kw.value)
            if ok and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
                return NONZERO
    return UNKNOWN


def class_dropout(module, cls, seen=None) -> str:
    """Dropout of a module class defined in this file, following the classes it builds here and
    those it imports from its own package (siblings.py)."""
    seen = seen if seen is not None else set()
    if (module.cache.get("path"), cls.name) in seen:
        return ZERO
    seen.add((module.cache.get("path"), cls.name))
    local = _local_module_classes(module)
    verdict = ZERO
    for base in cls.bases:
        name = last_name(base)
        found = (module, local[name]) if name in local else classes.module_class(module, base, project=True)
        if found is not None:
            sub = class_dropout(*found, seen)
            verdict = NONZERO if sub == NONZERO else (UNKNOWN if sub == UNKNOWN else verdict)
        elif name in NN_WITHOUT_DROPOUT and classes.torch_nn_class(base):
            continue  # a torch layer extended (LSGM's `class Conv2D(nn.Conv2d)`): its own body is read below
        elif name not in ("Module",) and not name.endswith("Module"):
            return UNKNOWN  # a base from elsewhere may add dropout
    for node in ast.walk(cls):
        if isinstance(node, ast.Call):
            name = last_name(node.func)
            if name in DROPOUT_MODULES or name in FUNCTIONAL:
                p = arg_or_kwarg(node, "p", 0 if name in DROPOUT_MODULES else 1)
                if p is None or not zero_rate(module, p):
                    return NONZERO
            elif name in ATTENTION:
                p = arg_or_kwarg(node, *ATTENTION[name])
                if p is not None and not zero_rate(module, p):
                    return NONZERO
            elif name in _NN_WITH_DROPOUT:
                return NONZERO
            elif name in NN_BATCHNORM:
                if keeps_running_stats(node):
                    return NONZERO  # batch norm also changes with the mode
            elif name in RNNS:
                p = arg_or_kwarg(node, "dropout", RNNS[name])
                if p is not None and not zero_rate(module, p):
                    return NONZERO  # between stacked layers (DRP520 says when it does nothing)
            elif name not in local and classes.torch_nn_class(node.func):
                if name in NN_MODE_DEPENDENT:
                    return NONZERO
                continue  # torch.nn's other layers draw nothing and do not change with the mode
            elif name in local or name and name[0].isupper() and name not in NN_WITHOUT_DROPOUT:
                found = (module, local[name]) if name in local else classes.module_class(module, node.func, project=True)
                if found is None and isinstance(node.func, ast.Name) and library_without_dropout(module, name, node):
                    continue  # TGCN2's GCNConv: PyG's source has no dropout and no norm
                sub = class_dropout(*found, seen) if found is not None else UNKNOWN  # else a layer from elsewhere
                if sub == NONZERO:
                    return NONZERO
                if sub == UNKNOWN:
                    verdict = UNKNOWN
    return verdict


def config_dropout(setup) -> str:
    """ZERO/NONZERO from the setup's config.json: its written rates over its model type's defaults."""
    if setup is None:
        return UNKNOWN
    configs = setup.of_kind("hf-config")
    if len(configs) != 1:
        return UNKNOWN
    model_type = configs[0].get("model_type")
    return type_dropout(str(model_type), configs[0].settings) if model_type else UNKNOWN


def identity_dropout(module, call, setup) -> str:
    """ZERO/NONZERO for `from_pretrained(ref)` when the setup stage resolved `ref` to a model type
    (#11: hub id, HF cache, local path, the user's mapping): the type's defaults, overridden by the
    config.json that was read for it and by literal dropout keywords of the call itself."""
    if setup is None or not call.args:
        return UNKNOWN
    arg = call.args[0]
    if isinstance(arg, ast.Name):
        arg = binding(module, arg.id)
    ok, ref = constant(arg) if arg is not None else (False, None)
    if not ok or not isinstance(ref, str):
        return UNKNOWN
    found = [m for m in getattr(setup, "models", {}).values() if m.ref == ref and m.model_type]
    if len({m.model_type for m in found}) != 1:
        return UNKNOWN
    for kw in call.keywords:
        if kw.arg and "dropout" in kw.arg:
            ok, v = constant(kw.value)
            if not ok or not isinstance(v, (int, float)) or isinstance(v, bool):
                return UNKNOWN
            if v > 0:
                return NONZERO
    identity = found[0]
    return type_dropout(identity.model_type, identity.config.settings if identity.config is not None else ())


def pretrained_class_type(value) -> tuple:
    """(class name, Transformers model type) for `X.from_pretrained(...)` where the class X fixes
    the type (T5EncoderModel -> t5, CLIPTextModel -> clip_text_model), else (name, None). The
    checkpoint's own config.json, which could change its rates, is not read here."""
    if not (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
            and value.func.attr == "from_pretrained"):
        return "", None
    cls = last_name(value.func.value) or ""
    from auditor.setup.identity import class_model_type

    return cls, (class_model_type(cls) if cls else None)


def type_dropout(model_type: str, settings) -> str:
    """ZERO/NONZERO for a model type: the rates it reads at their defaults, with the written
    settings over them; UNKNOWN for composite types or any rate that is not a number."""
    from auditor.knowledge import architectures

    found = architectures.has_dropout(model_type, settings)
    return UNKNOWN if found is None else (NONZERO if found else ZERO)


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)  # what enclosing_function stops at


def _scope_assignments(module, fn, name) -> list:
    """The assignments to `name` whose enclosing function is fn (None: the module level): those
    in fn's subtree outside the functions and lambdas nested in it. A walk of one function
    costs less than the module's map of every assignment."""
    return [s for s in walk(fn if fn is not None else module.tree, _SCOPES)
            if s.__class__ in ASSIGNMENTS and name in target_names(s)]


def zero_rate(module, node) -> bool:
    """A rate that is a literal 0, directly or through a local name only ever assigned literal 0."""
    if is_zero(node):
        return True
    if isinstance(node, ast.Name):
        fn = module.enclosing_function(node)
        stmts = _scope_assignments(module, fn, node.id)
        if not stmts:
            return False
        if fn is not None and node.id in {a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs}:
            return False
        return all(isinstance(s, (ast.Assign, ast.AnnAssign)) and s.value is not None and is_zero(s.value)
                   and not (isinstance(s, ast.Assign) and isinstance(s.targets[0], (ast.Tuple, ast.List)))
                   for s in stmts)
    return False


# --- does the file train? ----------------------------------------------------------------------

_TRAINING_CALLEES = frozenset({"backward", "step", "train"})


def training_calls(module) -> list:
    """Calls that show training: loss.backward(), optimizer.step(), accelerator.backward(loss),
    trainer.train()."""
    cached = module.cache.get("training-calls")
    if cached is not None:
        return cached
    found = []
    for call in module.index.calls_named(_TRAINING_CALLEES):
        func = call.func
        if not isinstance(func, ast.Attribute):
            continue
        recv = receiver_key(func.value) or last_name(func.value)
        if not recv and isinstance(func.value, ast.Call):  # DPOTrainer(...).train()
            recv = last_name(func.value.func)
        if func.attr == "backward":
            found.append(call)
        elif func.attr == "step" and re.search(r"optim|^opt|scaler", recv.rsplit(".", 1)[-1], re.I):
            found.append(call)
        elif func.attr == "train" and re.search(r"trainer", recv, re.I) and not call.args:
            found.append(call)
    module.cache["training-calls"] = found
    return found


def disables_dropout_itself(module) -> bool:
    """Code that switches dropout off by its own config (an RL trainer's disable_dropout): its
    rollouts run in train mode by design, with no dropout left to switch."""
    return bool(module.index.calls_by_name.get("disable_dropout_in_model")) or any(
        n.attr == "disable_dropout" for n in module.index.of(ast.Attribute))
