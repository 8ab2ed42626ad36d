"""Inheritance of Python training configs. OpenMMLab's `_base_` files and detectron2's imported
LazyConfigs often hold the key that loads pretrained weights (`load_from`, `init_cfg=dict(type=
'Pretrained')`, `train.init_checkpoint`) while the child config sets the rates: without the
base, a fine-tune's 0.5 dropout would be judged as a from-scratch run's (#31). Only that fact is
inherited; the base's own settings are reported in the base file, where they are written, so a
shared base is never reported once per child.
"""

from __future__ import annotations

from auditor.core.model import Field

MAX_DEPTH = 8  # OpenMMLab chains are 2-3 deep; a loop or a pathological tree stops here


def inherit(engine, src) -> None:
    """Give `src` its bases' `pretrained_from` when it states none and does not clear it."""
    if src.kind != "python" or "pretrained_from" in src.fields or src.get("pretrained_cleared"):
        return
    found = _stated(engine, src, 0, {src.path})
    if found is not None:
        written, span, stated = found
        src.fields["pretrained_from"] = Field(f"{stated}, inherited from {written}", span)


def _stated(engine, src, depth: int, seen: set):
    for written, path, span in src.get("config_bases") or ():
        if path in seen or depth >= MAX_DEPTH:
            continue
        seen.add(path)
        base = engine.load_linked(path)  # also records the base for the cache
        if base is None or base.kind != "python":
            continue
        if base.get("pretrained_cleared"):
            continue
        stated = base.get("pretrained_from")
        if stated:
            return written, span, stated
        deeper = _stated(engine, base, depth + 1, seen)
        if deeper is not None:
            return written, span, deeper[2]
    return None
