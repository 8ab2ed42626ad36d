"""A script's model default is a placeholder when a launch line sets the flag (issue #28).

`model_name_or_path: str = field(default="facebook/opt-125m")` in FastChat's train_flant5.py is
what runs only when the script is launched without the flag; its launch lines set
`--model_name_or_path google/flan-t5-xl`. So before a script's setup takes such a default as its
model, the launch lines that run the script are looked up from the script's side: the shell
scripts in its directory and each parent up to the root, and in their direct subfolders
(`scripts/train.sh` beside `fastchat/train/`). One launch value replaces the default; launch lines
that name different models of one type give that type; otherwise (or a value set at run time) the
model is left to each launch (no model, no note); none found keeps the default.

The look-up runs only for a setup whose model came from a default (a byte test on each shell
file's name of the script before anything is parsed), and every file it scans joins the run's
dependencies, so the cache sees a launch line change.

Imports inside functions (`setup.identity`, `setup.links`) are deferred for start-up time: a
run that never takes that path never pays for them.
"""

from __future__ import annotations

import os

from auditor.core.model import ModelIdentity

# The argument names whose default names the model (python_code.MODEL_ARGUMENTS), as flags.
MODEL_FLAGS = frozenset(f"--{name}{sep}" for name in ("model_name_or_path", "base_model", "model_name",
                                                        "pretrained_model_name_or_path")
                        for sep in ("", "="))
RUN_TIME = "<set at run time>"
_SHELL_SUFFIXES = (".sh", ".bash")
_MAX_FILES = 400     # shell files read, and subfolders listed per level: a bounded look, not a walk
_MAX_FOLDERS = 200
_MAX_BYTES = 1 << 20


def replace_default(engine, setup) -> None:
    """Give `setup` (a Python script's own) the model its launch lines set, when its model is an
    argparse/dataclass default they replace."""
    driver = setup.driver
    defaults = driver.fields.get("model_ref_defaults") if driver is not None else None
    model = setup.model
    if defaults is None or model is None or model.ref not in defaults.value:
        return
    found = [hit for launcher in _launchers(engine, driver.path) for hit in _model_flags(engine, launcher, driver.path)]
    if not found:
        return
    from auditor.setup import identity

    where = ", ".join(f"{path}:{span.line}" for _, path, span, _ in found)
    resolved = {}
    for value, path, span, launcher in found:
        if value not in resolved and value != RUN_TIME:
            resolved[value] = identity.resolve(value, path, span, engine.options.models,
                                               remote_code=identity.trusts_remote_code(launcher))
    types = {ident.model_type for ident in resolved.values()}
    if len(resolved) == 1 and len(found) == len([f for f in found if f[0] != RUN_TIME]):
        (value, replaced), = resolved.items()
        replaced.detail = (f"{replaced.detail}; " if replaced.detail else "") + \
            f"set by the launch line at {where}, which replaces the script's default {model.ref!r}"
        setup.model = replaced
        setup.models[identity.reference_key(value, None)] = replaced
        return
    each = "; ".join(f"{v} ({p}:{s.line})" for v, p, s, _ in found)
    common = types.pop() if len(types) == 1 and RUN_TIME not in {f[0] for f in found} else None
    first = next(iter(resolved.values()), None)
    setup.model = ModelIdentity(first.ref if common else model.ref, model.path, model.span, common, "launch-lines",
                                (f"every launch line runs a {common}: " if common else "")
                                + f"the default {model.ref!r} is replaced by each launch: {each}",
                                architectures=first.architectures if common else ())


def _launchers(engine, script: str) -> list:
    """Shell files near the script whose bytes name it (its directory and parents up to the
    root, and their direct subfolders)."""
    name = os.path.basename(script).encode()
    root_real = os.path.realpath(engine.options.root or ".")
    seen, found, budget = set(), [], [_MAX_FILES]
    directory = os.path.dirname(os.path.abspath(script))
    for _ in range(32):
        for folder in [directory, *_subfolders(directory)[:_MAX_FOLDERS]]:
            for path in _shell_files(folder, budget):
                if path in seen:
                    continue
                seen.add(path)
                engine.deps.add(os.path.normpath(path))
                if _names(path, name):
                    found.append(path)
        real = os.path.realpath(directory)
        if real == root_real or not real.startswith(root_real.rstrip(os.sep) + os.sep):
            break
        directory = os.path.dirname(directory)
    return found


def _subfolders(directory: str) -> list:
    try:
        with os.scandir(directory) as it:
            return sorted(e.path for e in it if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))
    except OSError:
        return []


def _shell_files(folder: str, budget: list) -> list:
    try:
        with os.scandir(folder) as it:
            entries = sorted(e.path for e in it if e.name.endswith(_SHELL_SUFFIXES) and e.is_file(follow_symlinks=False))
    except OSError:
        return []
    taken = entries[:max(budget[0], 0)]
    budget[0] -= len(taken)
    return taken


def _names(path: str, name: bytes) -> bool:
    try:
        with open(path, "rb") as handle:
            return name in handle.read(_MAX_BYTES)
    except OSError:
        return False


def _model_flags(engine, path: str, script: str) -> list:
    """(value, launcher path, span, launcher Source) for each launch of `script` in the file
    that sets a model flag to a literal."""
    from auditor.setup import links as L

    src = engine.load_linked(path)
    if src is None:
        return []
    script_real = os.path.realpath(script)
    found = []
    for link in L.of_source(src, engine.options.root):
        if link.kind != L.LAUNCH_SCRIPT or not link.target or os.path.realpath(link.target) != script_real:
            continue
        words = link.detail or []
        for i, (word, span) in enumerate(words):
            flag, eq, inline = word.partition("=")
            if f"{flag}{eq}" not in MODEL_FLAGS:
                continue
            if eq:
                value, at = inline, span
            elif i + 1 < len(words) and not words[i + 1][0].startswith("-"):
                value, at = words[i + 1]
            else:
                continue
            if value:
                found.append((RUN_TIME if "$" in value else value, src.path, at, src))
            break
    return found
