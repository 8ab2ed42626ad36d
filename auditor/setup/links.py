"""The edges of the setup graph: which file a recipe, script or launch command points to.

Each Link is one edge: its kind, where it is written, the path as written and the file it
reaches under the checked root. A path built at run time (f-string, os.environ, sys.argv, a
`${...}` interpolation) is an edge with no target and the reason `run-time`: nothing guesses
where it leads. Absolute paths and paths escaping the root are not followed (reason
`absolute`, `outside-root`), so a link can never make the auditor read outside the root.

Paths are tried the way the programs resolve them: relative to the file that names them, then
to each parent directory up to the root (the working directory of a launch is the top of its
project, which may sit anywhere between the file and the root).

Imports inside functions (`core.model`, `setup.links_python`, `sources.nodes`,
`sources.python_code`, `sources.python_facts`, `sources.shell`) are deferred for start-up time:
a run that never takes that path never pays for them.
"""

from __future__ import annotations

import os

from auditor.core.lazy_regex import LazyRegex
from auditor.setup.link import (  # noqa: F401 - the link vocabulary, re-exported for callers
    HFARGS_FILE,
    KINDS,
    LAUNCH_RECIPE,
    LAUNCH_SCRIPT,
    MODEL_PATH,
    MUST_EXIST,
    RECIPE_SUFFIXES,
    SAVED_ADAPTER,
    Link,
    locate,
)

# --- recipes (a Python script's links: links_python.py) -------------------------------------

def from_recipe(src, root: str) -> list:
    """`output_dir` of a recipe: the saved adapter the run writes there."""
    if "output_dir" not in src.text:
        return []
    from auditor.sources import nodes

    try:
        docs = nodes.compose(src.text, src.path)
    except nodes.ParseError:
        return []
    roots = [d for d in docs if nodes.is_mapping(d)]
    if not roots:
        return []
    for entry in nodes.walk(roots[0], max_depth=0):
        if entry.key != "output_dir" or not nodes.is_scalar(entry.value_node):
            continue
        value = nodes.scalar_value(entry.value_node)
        if not isinstance(value, str) or not value:
            return []
        link = Link(SAVED_ADAPTER, src.path, nodes.value_span(entry, src.text), value, via="output_dir")
        if os.path.normpath(os.path.join(os.path.dirname(src.path), value)) == os.path.normpath(os.path.dirname(src.path) or "."):
            link.reason = "loop"  # the adapter beside the recipe is in its setup already
            return [link]
        return [locate(link, root, "adapter_config.json")]
    return []


# --- launch commands ---------------------------------------------------------------------------

def _overrides(words: list, style: str) -> list:
    """key=value (llamafactory, torchtune) or --key value / --key=value (axolotl) words."""
    out = []
    i = 0
    while i < len(words):
        w, span = words[i]
        if style == "kv" and "=" in w and not w.startswith("-"):
            key, value = w.split("=", 1)
            out.append((key, value, span))
        elif style == "flags" and w.startswith("--"):
            if "=" in w:
                key, value = w[2:].split("=", 1)
                out.append((key, value, span))
            elif i + 1 < len(words) and not words[i + 1][0].startswith("--"):
                out.append((w[2:], words[i + 1][0], span))
                i += 1
        i += 1
    return out


def _config_flag(words: list):
    for i, (w, span) in enumerate(words):
        if w in ("--config", "--config_file", "--config-file") and i + 1 < len(words):
            return words[i + 1], i + 1
        if w.startswith(("--config=", "--config_file=")):
            value = w.split("=", 1)[1]
            return (value, span), i
    return None, -1


def from_shell(src, root: str) -> list:
    """The links of each command `shell.launches` finds: a recipe a framework CLI trains from,
    or a Python script a launcher (python, torchrun, deepspeed, accelerate launch) runs."""
    from auditor.sources import shell

    out = []
    moves = [m.start() for m in _MOVES.finditer(src.text)]
    for launch in shell.launches(src.text):
        before = len(out)
        _launch_links(src, launch, root, out)
        if moves and moves[0] < launch.span.start:
            for link in out[before:]:
                _after_move(src, link, launch, root)
    return out


# Commands after which a launch runs elsewhere, or on files the script fetches itself: `cd`,
# `pushd`, `git clone`, downloads and archives. A target missing from the file's own
# directory may then be where the run looks, so it is unknown rather than missing (#25).
_MOVES = LazyRegex(r"(?m)^[ \t]*(?:cd|pushd)[ \t]+\S|\bgit[ \t]+clone\b|\b(?:wget|curl)\b|\b(?:tar[ \t]+-?x|unzip)\b")
_CD = LazyRegex(r"(?m)^[ \t]*(?:cd|pushd)[ \t]+([^\s;&|]+)")


def _after_move(src, link, launch, root: str) -> None:
    if link.exists or link.target is None:
        return
    cds = [m for m in _CD.finditer(src.text) if m.start() < launch.span.start]
    if cds and not any(mark in cds[-1].group(1) for mark in ("$", "`", "~")):
        moved = Link(link.kind, os.path.join(os.path.dirname(src.path), cds[-1].group(1), "_"), link.span,
                     link.written, via=link.via)
        moved = locate(moved, root)
        if moved.exists:
            link.target, link.exists = moved.target, True
            return
    link.target, link.reason = None, "run-time"


def _launch_links(src, launch, root: str, out: list) -> None:
    head = os.path.basename(launch.program)
    rest = launch.words
    if head == "axolotl" and rest and rest[0][0] in ("train", "preprocess", "evaluate") and len(rest) > 1:
        out.append(_recipe(src, rest[1], f"axolotl {rest[0][0]}", _overrides(rest[2:], "flags"), root))
    elif head in ("llamafactory-cli", "lmf") and rest and rest[0][0] == "train" and len(rest) > 1:
        out.append(_recipe(src, rest[1], "llamafactory-cli train", _overrides(rest[2:], "kv"), root))
    elif head == "tune" and rest and rest[0][0] == "run":
        cfg, at = _config_flag(rest)
        if cfg is not None and cfg[0].endswith(RECIPE_SUFFIXES):
            out.append(_recipe(src, cfg, "tune run --config", _overrides(rest[at + 1:], "kv"), root))
    elif "-m" in launch.launcher:
        if launch.program.startswith("axolotl.cli.train") and rest and not rest[0][0].startswith("-"):
            out.append(_recipe(src, rest[0], f"-m {launch.program}", _overrides(rest[1:], "flags"), root))
    elif launch.program.endswith(".py") and launch.launcher:
        out.extend(_script(src, launch, root))


def _recipe(src, word, via: str, overrides: list, root: str) -> Link:
    text, span = word
    return locate(Link(LAUNCH_RECIPE, src.path, span, text, via=via, overrides=overrides), root)


def _script(src, launch, root: str) -> list:
    args = launch.words
    link = locate(Link(LAUNCH_SCRIPT, src.path, launch.span, launch.program, via=launch.launcher[0]), root)
    link.flags = [(a, s) for a, s in args if a.startswith("-")]
    link.detail = args
    found = [link]
    cfg, at = _config_flag(args)
    if cfg is not None and cfg[0].endswith(RECIPE_SUFFIXES):
        found.append(_recipe(src, cfg, f"{launch.program} --config", _overrides(args[at + 1:], "flags"), root))
    return found


def of_source(src, root: str) -> list:
    """Every link a Source names (memoised on the Source: each file is read for links once)."""
    for fact in src.facts:
        if isinstance(fact, Links):
            return fact.links
    if src.dialect == "shell":
        found = from_shell(src, root)
    elif src.dialect == "python":
        from auditor.setup.links_python import from_python
        from auditor.sources.python_code import get_module

        module = get_module(src)
        found = from_python(src, module, root) if module is not None else []
    elif src.kind == "recipe":
        found = from_recipe(src, root)
    else:
        found = []
    src.facts.append(Links(found))
    return found


class Links:
    __slots__ = ("links",)

    def __init__(self, links):
        self.links = links


# --- files with links and nothing else -----------------------------------------------------

LINKER = "linker"
_SHELL_MARKS = (".py", "axolotl", "llamafactory-cli", "lmf ", "tune ")
_PY_MARKS = ("from_pretrained", "from_config", "save_pretrained", "save_model", "HfArgumentParser")


def linker_source(path: str, text: str):
    """A Source for a script the readers skip (no dropout in it) that still links files: a
    launch script running `axolotl train x.yml`, a script parsing a YAML. Kind `linker`: it is
    never a driver and no per-file rule reads it."""
    from auditor.core.model import Source

    if path.endswith(".sh"):
        if not any(m in text for m in _SHELL_MARKS):
            return None
        return Source(path=path, kind=LINKER, dialect="shell", text=text)
    if path.endswith(".py"):
        if not any(m in text for m in _PY_MARKS):
            return None
        from auditor.sources.python_facts import PyModule, parse

        try:
            tree = parse(text, path)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        src = Source(path=path, kind=LINKER, dialect="python", text=text)
        src.facts.append(PyModule(tree, text))
        return src
    return None
