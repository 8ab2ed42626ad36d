"""What the code checks share: the parsed module of a Python source, located hits, and the
names that identify dropout calls, attention kernels, models and seeding.

Imports inside functions (`knowledge.dropout_keys`) are deferred for start-up time: a run that
never takes that path never pays for them.
"""

from __future__ import annotations

import ast
import functools
import re

from auditor.checks.base import Hit
from auditor.sources.python_code import get_module
from auditor.sources.python_facts import (
    arg_or_kwarg,
    constant,
    last_name,
)

FUNCTIONAL = {"dropout": True, "dropout1d": True, "dropout2d": True, "dropout3d": True,
               "alpha_dropout": False, "feature_alpha_dropout": False}  # name -> default of `training`
FUNCTIONAL_PREFIXES = ("F", "functional", "nn.functional", "torch.nn.functional")
# Attention kernels whose dropout has no training flag: name -> (keyword, positional index).
ATTENTION = {
    "scaled_dot_product_attention": ("dropout_p", 4), "flash_attn_func": ("dropout_p", 3),
    "flash_attn_qkvpacked_func": ("dropout_p", 1), "flash_attn_kvpacked_func": ("dropout_p", 2),
    "flash_attn_varlen_func": ("dropout_p", 7), "flash_attn_varlen_qkvpacked_func": ("dropout_p", 3),
    "flash_attn_varlen_kvpacked_func": ("dropout_p", 6), "memory_efficient_attention": ("p", 4),
    # flash-attn 1.x names of the varlen kernels (flash_attn/flash_attn_interface.py, v1.0.x),
    # still imported and aliased by code written for it (mPLUG-Owl, Qwen-VL's visual encoder)
    "flash_attn_unpadded_func": ("dropout_p", 7), "flash_attn_unpadded_qkvpacked_func": ("dropout_p", 3),
    "flash_attn_unpadded_kvpacked_func": ("dropout_p", 6),
}
# The packages whose kernels the table describes: a table name imported from anywhere else (a
# project's own wrapper, flash_attn_triton's flash_attn_func without dropout) has a signature
# the table does not know.
KERNEL_PACKAGES = ("flash_attn", "xformers", "torch")
DROPOUT_MODULES = frozenset({"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"})
RNNS = {"LSTM": 5, "GRU": 5, "RNN": 6}  # class -> positional index of `dropout`
MODEL = re.compile(r"model|net$|^net|policy|actor|critic|encoder|decoder|transformer|gpt|bert|llm|(^|_)lm($|_)|classifier",
                    re.I)
NOT_MODEL = re.compile(r"trainer|recipe|optim|sched|loader|dataset|tokenizer|processor", re.I)
NO_GRAD = frozenset({"no_grad", "inference_mode"})
SEEDERS = frozenset({"manual_seed", "manual_seed_all", "set_seed", "seed_everything"})
RANKISH = re.compile(r"rank|offset|process_index|local_process|worker|device_id", re.I)
DDP_MARKERS = ("DistributedDataParallel", "init_process_group", "Accelerator(", "DDP(")


# Names constructors and builders give a dropout rate beyond the `*dropout*` family (timm's
# drop/attn_drop/proj_drop/drop_path, DropBlock, the GPT-2 style *_pdrop, Transformer-XL's
# dropatt). Only for parameters in code: `drop_last` and friends are switches, never rates.
_DROP_PARAM = re.compile(r"(?:drop|p_drop|dropatt|(?:attn|proj|resid|embd|emb|mlp|ffn|pos|head|hidden|path|"
                         r"feat|token|layer)_drop|drop_(?:path|block|connect)(?:_rate|_prob)?|drop_rate|drop_prob)")


@functools.lru_cache(maxsize=4096)
def dropout_param(name: str) -> bool:
    """A parameter name that carries a dropout rate in model code."""
    from auditor.knowledge import dropout_keys

    if dropout_keys.is_keep_probability(name):
        return False
    return dropout_keys.is_rate_key(name) or bool(_DROP_PARAM.fullmatch(name.lower()))


def python_module_of(ctx):
    src = ctx.source
    return located(src, get_module(src)) if src is not None and src.kind == "python" else None


def located(src, module):
    """The module, knowing its file (siblings.py reads the modules beside it)."""
    if module is not None and "path" not in module.cache:
        module.cache["path"] = src.path
    return module


def hit(ctx, module, node, message, fix=None, key="", end_node=None):
    return Hit(ctx.source.path, module.span(node, end_node), message, fix, key)


def _receiver_name(node) -> str:
    if isinstance(node, ast.Call):  # accelerator.unwrap_model(model) -> model
        if node.args:
            return _receiver_name(node.args[0])
        return last_name(node.func)
    return last_name(node)


def model_like(node) -> bool:
    name = _receiver_name(node)
    return bool(name) and bool(MODEL.search(name)) and not NOT_MODEL.search(name)


def python_driver(ctx):
    """(source, module) of the Python driver a setup-scope code check judges, else (None, None)."""
    setup = ctx.setup
    src = setup.driver if setup is not None else ctx.source
    if src is None or src.kind != "python":
        return None, None
    return src, located(src, get_module(src))


def rate_name(node):
    """The name a rate expression goes by: `p`, `self.p`, `config.dropout`, `cfg["drop_rate"]`
    -> its last name (None for anything else)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        ok, key = constant(node.slice)
        return key if ok and isinstance(key, str) else None
    return None


def turns_grad_off(expr) -> bool:
    """`torch.no_grad()`, `torch.inference_mode()` (called or as a decorator), or
    `torch.set_grad_enabled(False)`."""
    name = last_name(getattr(expr, "func", expr))
    if name in NO_GRAD:
        return True
    if name == "set_grad_enabled" and isinstance(expr, ast.Call):
        arg = arg_or_kwarg(expr, "mode", 0)
        return arg is not None and constant(arg) == (True, False)
    return False


def no_grad_region(module, node):
    """The with-item or decorator that turns gradients off around node (up to its function),
    else None."""
    for a in module.ancestors(node):
        if isinstance(a, (ast.With, ast.AsyncWith)):
            for item in a.items:
                if turns_grad_off(item.context_expr):
                    return item.context_expr
        if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return next((d for d in a.decorator_list if turns_grad_off(d)), None)
    return None
