"""A link of the setup graph (the Link record, its kinds) and how a written path resolves
under the checked root. Apart from links.py so that links_python.py (which links.py imports
for a Python source) can use them without importing links.py back.
"""

from __future__ import annotations

import os

from auditor.core.model import Span
from auditor.core.record import Record

MODEL_PATH = "model-path"            # from_pretrained("./dir") / from_config -> dir/config.json
SAVED_ADAPTER = "saved-adapter"      # output_dir / save_pretrained("dir") -> dir/adapter_config.json
HFARGS_FILE = "hfargs-file"          # HfArgumentParser(...).parse_yaml_file("x.yaml")
LAUNCH_RECIPE = "launch-recipe"      # axolotl train x.yml, llamafactory-cli train, tune run --config, --config x.yaml
LAUNCH_SCRIPT = "launch-script"      # python/torchrun/accelerate launch/deepspeed train.py --flags
KINDS = (MODEL_PATH, SAVED_ADAPTER, HFARGS_FILE, LAUNCH_RECIPE, LAUNCH_SCRIPT)

# A target that must exist when the run starts (a missing one is reported); a saved adapter
# appears only after training, so its absence says nothing.
MUST_EXIST = frozenset({MODEL_PATH, HFARGS_FILE, LAUNCH_RECIPE, LAUNCH_SCRIPT})

RECIPE_SUFFIXES = (".yaml", ".yml", ".json")
_RUNTIME_MARKS = ("$", "{", "}", "%", "~", "*", "?")


class Link(Record):
    __slots__ = ("kind", "path", "span", "written", "target", "exists", "reason", "via", "overrides", "flags",
                 "detail", "target_source")

    def __init__(self, kind: str,
                 path: str,                  # the file that names the link
                 span: Span,                 # where it is named
                 written: str,               # the path as written ('' when not a literal)
                 target: str | None = None,  # the file it reaches (None: unknown, see reason)
                 exists: bool = False,
                 reason: str = "",           # run-time | absolute | outside-root | loop | same-file
                 via: str = "",              # the call or command that makes the link (for messages)
                 overrides: list | None = None,  # (key, value, key Span) a launch command sets
                 flags: list | None = None,      # (flag word, Span) passed to a launched script
                 detail=None,                # kind-specific: the ParserUse of an hfargs-file link, kwargs of a model path
                 target_source=None):        # the Source read from target (set by graph.py)
        self.kind = kind
        self.path = path
        self.span = span
        self.written = written
        self.target = target
        self.exists = exists
        self.reason = reason
        self.via = via
        self.overrides = [] if overrides is None else overrides
        self.flags = [] if flags is None else flags
        self.detail = detail
        self.target_source = target_source

    def describe(self) -> str:
        where = self.target or f"unknown ({self.reason})"
        return f"{self.kind} {self.written or '?'} -> {where}"


# --- resolving a written path ----------------------------------------------------------------

def _inside(path: str, root_real: str) -> bool:
    real = os.path.realpath(path)
    return real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep)


def locate(link: Link, root: str, leaf: str | None = None) -> Link:
    """Fill target/exists/reason. leaf: the file inside a directory target (config.json...)."""
    written = link.written
    if not written or any(mark in written for mark in _RUNTIME_MARKS):
        link.reason = "run-time"
        return link
    if os.path.isabs(written):
        link.reason = "absolute"
        return link
    root_real = os.path.realpath(root)
    candidates = []
    for base in _bases(os.path.dirname(link.path), root, root_real):
        cand = os.path.normpath(os.path.join(base, written))
        if leaf and not cand.endswith(leaf):
            cand = os.path.join(cand, leaf) if not os.path.isfile(cand) else cand
        if cand not in candidates:
            candidates.append(cand)
    inside = [c for c in candidates if _inside(c, root_real)]
    if not inside:
        link.reason = "outside-root"
        return link
    for cand in inside:
        if os.path.isfile(cand):
            link.target, link.exists = cand, True
            break
    else:
        link.target = inside[0]
    if os.path.realpath(link.target) == os.path.realpath(link.path):
        link.target, link.exists, link.reason = None, False, "same-file"
    return link


def _bases(directory: str, root: str, root_real: str) -> list:
    """The file's directory, then each parent up to the root: a launch runs from the top of
    its project, which may be the root or a folder between it and the file."""
    bases = [directory or "."]
    current = directory or "."
    for _ in range(64):
        real = os.path.realpath(current)
        if real == root_real or not real.startswith(root_real.rstrip(os.sep) + os.sep):
            break
        current = os.path.dirname(current) if current not in (".", "") else ".."
        bases.append(current or ".")
    if root not in bases:
        bases.append(root)
    return bases


def link_root(root: str | None, paths: list) -> str:
    """The directory links may be followed within (the setup graph never reads outside it):
    --root when given, else the working directory when every path is inside it (a pre-commit
    hook runs at the repository root), else the directory holding all the paths."""
    if root:
        return root
    here = os.path.realpath(".")
    reals = [os.path.realpath(p) for p in paths]
    if all(r == here or r.startswith(here.rstrip(os.sep) + os.sep) for r in reals):
        return "."
    dirs = [r if os.path.isdir(r) else os.path.dirname(r) for r in reals]
    return os.path.commonpath(dirs)
