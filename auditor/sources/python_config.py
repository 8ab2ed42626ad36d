"""Training configs written in Python: OpenMMLab's `model = dict(backbone=dict(drop_path_rate=0.1))`
(mmengine, mmpretrain, mmdetection; `_base_` lists and the `with read_base():` form) and
detectron2's LazyConfig (`model = L(ViT)(drop_path_rate=0.1)`, `model.backbone.drop_path_rate =
0.4`). Read statically from the tree the Python reader parsed, never executed (#31): their
dropout keys become settings with exact spans, so every value rule applies, and the keys that
load pretrained weights say whether the config fine-tunes (knowledge/data/setup_kinds.json).
"""

from __future__ import annotations

import ast
import os

from auditor.core import probability
from auditor.core.model import Field, Setting, Source
from auditor.knowledge import dropout_keys
from auditor.knowledge.key_roles import role_in
from auditor.sources.python_facts import PyModule, constant, dotted, last_name

# Module-level names that mark a config file rather than code that happens to build a dict.
_OPENMMLAB_NAMES = frozenset({"_base_", "train_cfg", "optim_wrapper", "default_scope", "train_dataloader",
                              "param_scheduler", "optimizer_config", "runner", "lr_config", "load_from"})
_LAZY_CALLS = frozenset({"L", "LazyCall"})


def flavour(module: PyModule) -> str | None:
    """`openmmlab`, `detectron2` (LazyConfig) or None for ordinary code."""
    text = module.text
    if ("LazyCall" in text and "detectron2" in text) or _lazy_overrides(module):
        return "detectron2"
    if "read_base" in text and "mmengine" in text:
        return "openmmlab"
    names = {}
    for stmt in module.tree.body:
        if isinstance(stmt, ast.Assign):
            names.update((t.id, stmt.value) for t in stmt.targets if isinstance(t, ast.Name))
    model = names.get("model")
    if model is not None and (set(names) & _OPENMMLAB_NAMES or _registry_dict(model)):
        return "openmmlab"
    # a base with no model: default_runtime.py (default_scope, load_from, ...) or a schedule
    if "_base_" in names or len(set(names) & _OPENMMLAB_NAMES) >= 2:
        return "openmmlab"
    return None


def _lazy_overrides(module: PyModule) -> bool:
    """detectron2's derived LazyConfigs import `model`/`train` from a sibling config and set
    attributes on them (`model.backbone.net.drop_path_rate = 0.4`), naming no LazyCall."""
    imported = set()
    for stmt in module.tree.body:
        if isinstance(stmt, ast.ImportFrom):
            imported.update(a.asname or a.name for a in stmt.names)
    if not imported & {"model", "train"}:
        return False
    return any(isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Attribute)
               and dotted(stmt.targets[0]).split(".")[0] in ("model", "train") for stmt in module.tree.body)


def _registry_dict(value) -> bool:
    """`model = dict(type='ImageClassifier', ...)`: a registry-built model, OpenMMLab's base files
    (configs/_base_/models/*.py) hold nothing else."""
    return (isinstance(value, ast.Call) and last_name(value.func) == "dict"
            and any(kw.arg == "type" for kw in value.keywords))


def read(src: Source, module: PyModule, kind: str) -> None:
    src.fields["config_flavour"] = Field(kind, None)
    bases = _bases(src.path, module, kind)
    if bases:
        src.fields["config_bases"] = Field(bases, bases[0][2])
    for stmt in module.tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name):
                _value(src, module, (target.id,), target, stmt.value, kind)
            elif isinstance(target, ast.Attribute) and kind == "detectron2":
                path = tuple(dotted(target).split("."))
                _scalar(src, module, path, target, stmt.value)
        elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            _value(src, module, (stmt.target.id,), stmt.target, stmt.value, kind)


def _bases(path: str, module: PyModule, kind: str) -> list:
    """The files this config inherits from, as (written, path, Span): OpenMMLab's `_base_ =
    '../x.py'` or list of them, mmengine's `with read_base(): from .._base_.x import *`, and
    detectron2's `from .mask_rcnn_vitdet_b_100ep import model, train` (the derived LazyConfig
    imports the objects it edits). A base's pretrained-weights key makes its children fine-tunes
    too (setup/config_bases.py)."""
    here = os.path.dirname(path)
    out = []
    for stmt in module.tree.body:
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in stmt.targets):
            items = stmt.value.elts if isinstance(stmt.value, (ast.List, ast.Tuple)) else [stmt.value]
            for item in items:
                ok, written = constant(item)
                if ok and isinstance(written, str) and written.endswith(".py") and "://" not in written \
                        and "::" not in written:
                    out.append((written, os.path.normpath(os.path.join(here, written)), module.span(item)))
        elif isinstance(stmt, ast.With) and any(isinstance(i.context_expr, ast.Call)
                                                and last_name(i.context_expr.func) == "read_base" for i in stmt.items):
            out.extend(_relative_import(here, module, s) for s in stmt.body if _is_relative_import(s))
        elif kind == "detectron2" and _is_relative_import(stmt) \
                and {a.name for a in stmt.names} & {"model", "train", "*"}:
            out.append(_relative_import(here, module, stmt))
    return out


def _is_relative_import(stmt) -> bool:
    return isinstance(stmt, ast.ImportFrom) and stmt.level > 0 and bool(stmt.module)


def _relative_import(here: str, module: PyModule, stmt: ast.ImportFrom) -> tuple:
    folder = here
    for _ in range(stmt.level - 1):
        folder = os.path.dirname(folder)
    target = os.path.join(folder, *stmt.module.split(".")) + ".py"
    return ("." * stmt.level + stmt.module, os.path.normpath(target), module.span(stmt))


def _value(src: Source, module: PyModule, path: tuple, key_node, value, kind: str) -> None:
    """A value under `path`: nested dict()/L()(...) calls and dict literals are walked, a
    scalar under a rate key is a setting, a scalar under a pretrained key states a fine-tune."""
    if isinstance(value, ast.Call) and _is_container(value, kind):
        for kw in value.keywords:
            if kw.arg:
                _value(src, module, path + (kw.arg,), kw, kw.value, kind)
        if last_name(value.func) == "dict":
            _pretrained_init(src, module, path, value)
    elif isinstance(value, ast.Dict):
        for k, v in zip(value.keys, value.values):
            ok, name = constant(k) if k is not None else (False, None)
            if ok and isinstance(name, str):
                _value(src, module, path + (name,), k, v, kind)
    elif isinstance(value, (ast.List, ast.Tuple)):
        for i, item in enumerate(value.elts):
            if isinstance(item, (ast.Call, ast.Dict)):
                _value(src, module, path + (i,), item, item, kind)
    else:
        _scalar(src, module, path, key_node, value)


def _is_container(call: ast.Call, kind: str) -> bool:
    name = last_name(call.func)
    if name == "dict":
        return True
    # detectron2: L(ViT)(drop_path_rate=0.1) is a call of the call L(ViT)
    return kind == "detectron2" and isinstance(call.func, ast.Call) and last_name(call.func.func) in _LAZY_CALLS


def _pretrained_init(src: Source, module: PyModule, path: tuple, call: ast.Call) -> None:
    """OpenMMLab's `init_cfg=dict(type='Pretrained', checkpoint=...)` loads pretrained weights."""
    kinds = [kw for kw in call.keywords if kw.arg == "type"]
    if kinds and constant(kinds[0].value) == (True, "Pretrained") and any(kw.arg == "checkpoint" for kw in call.keywords):
        _state(src, module, ".".join(map(str, path)) + ".type=Pretrained",
               "OpenMMLab: mmengine/model/weight_init.py PretrainedInit loads init_cfg's checkpoint", kinds[0].value)


_PRETRAINED_WHERE = {
    "load_from": "OpenMMLab: mmengine/runner/runner.py Runner(load_from=...)",
    "init_checkpoint": "detectron2: tools/lazyconfig_train_net.py loads train.init_checkpoint before training",
    "WEIGHTS": "detectron2: DetectionCheckpointer loads MODEL.WEIGHTS before training",
    # mmaction2/mmdet 2.x backbones: ResNet(pretrained='torchvision://resnet50') loads ImageNet weights
    "pretrained": "OpenMMLab: a backbone's pretrained= checkpoint is loaded in init_weights()",
}


def _scalar(src: Source, module: PyModule, path: tuple, key_node, value) -> None:
    key = str(path[-1])
    if key in ("load_from", "init_checkpoint", "WEIGHTS") or (key == "pretrained" and len(path) > 2):
        ok, written = constant(value)
        if ok and (isinstance(written, str) and written.strip() or (key == "pretrained" and written is True)):
            where = _PRETRAINED_WHERE[key]
            _state(src, module, ".".join(map(str, path)), where, value)
        elif ok and written is None and len(path) == 1:
            src.fields["pretrained_cleared"] = Field(True, module.span(value))  # `load_from = None` overrides a base
        return
    if not dropout_keys.is_rate_key(key):
        return
    ok, literal = constant(value)
    vspan = module.span(value)
    raw = module.text[vspan.start:vspan.end]
    if ok:
        if isinstance(literal, bool) or literal is None or dropout_keys.setting_reason(key, literal):
            return
        p, reason = probability.classify(literal, quoted=isinstance(literal, str))
    else:
        literal, p, reason = raw, None, "expression"
    kspan = module.span(key_node)
    if isinstance(key_node, ast.keyword):
        kspan = type(kspan)(kspan.line, kspan.column, kspan.line, kspan.column + len(key), kspan.start, kspan.start + len(key))
    src.settings.append(Setting(
        path=src.path, key=key, key_path=path, role=_role(src, key, path), raw=raw, value=literal, p=p,
        reason=reason, key_span=kspan, value_span=vspan, origin="config", canonical=dropout_keys.canonical(key)))


def _role(src: Source, key: str, path: tuple) -> str:
    """OpenMMLab's `dropout_ratio` is the dropout of fully connected layers before the output:
    every mmaction2 and mmpretrain head (TSNHead, I3DHead, ...) and C3D's fc6/fc7 (its backbone
    default is 0.5, as the C3D paper trained it); transformer blocks there use drop_rate,
    attn_drop_rate and drop_path_rate. So it is judged as a classifier's, wherever it sits."""
    if key == "dropout_ratio" and src.get("config_flavour") == "openmmlab":
        return "classifier"
    return role_in(key, path[:-1])


def _state(src: Source, module: PyModule, where_key: str, source: str, node) -> None:
    if "pretrained_from" not in src.fields:
        src.fields["pretrained_from"] = Field(f"{where_key} ({source})", module.span(node))
