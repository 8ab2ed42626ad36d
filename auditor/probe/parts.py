"""The parts of a model (text, vision, audio, protein, ...) and whether the probe ran each one.

A multimodal model is built from sub-configs (`vision_config`, `audio_config`,
`protein_encoder_config`, ...), and the module built from one keeps it as its `config`: that
module and everything below it are the part. The probe's synthetic batch may leave a part idle
(no image placeholders it could count, no audio features), and a part that never ran measured
nothing: its sites are absent, not clean, and its keys are "not exercised", never "no effect"
(DRP804). So every part is reported with whether it ran and how often its dropout sites fired.

Imports inside functions (`transformers`) are deferred for start-up time: a factory's model,
which has no Transformers config, never pays for them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

MAX_DEPTH = 3   # sub-configs of sub-configs (an omni model's thinker_config.audio_config)


@dataclass
class Part:
    name: str                 # "vision", "audio", "protein_encoder", ...; "main" for the rest
    config_path: tuple        # where its sub-config sits in the config: ("vision_config",)
    module: str = ""          # the module built from it ("" for the main part)
    built: bool = True
    why: str = ""             # why it did not run, when the batch knows
    calls: int = 0            # forward calls of its modules in the fine-tune
    sites: int = 0            # dropout sites (kernels and surveyed modules) inside it
    fired: int = 0            # calls of those sites in training
    ids: set = field(default_factory=set)

    @property
    def ran(self) -> bool:
        return self.calls > 0

    def describe(self) -> str:
        where = f"{'.'.join(self.config_path)} -> {self.module}" if self.config_path else "the rest of the model"
        if not self.built:
            return f"{self.name} ({'.'.join(self.config_path)}): not built by this model class"
        if not self.ran:
            return f"{self.name} ({where}): did not run: " + (
                self.why or "the probe's synthetic batch gave it no input")
        return (f"{self.name} ({where}): ran ({self.calls} module calls); {self.sites} dropout site(s) "
                f"fired {self.fired} times in training")

    def to_dict(self) -> dict:
        return {"part": self.name, "config": ".".join(self.config_path), "module": self.module,
                "built": self.built, "ran": self.ran, "calls": self.calls, "sites": self.sites,
                "fired": self.fired, "why": self.why}


def _name(path: tuple) -> str:
    return path[-1].removesuffix("_config") or path[-1]


def _sub_configs(config, prefix: tuple = (), depth: int = 0) -> list:
    """(path, config object) of every sub-config, depth-first."""
    from transformers import PretrainedConfig

    out = []
    if depth >= MAX_DEPTH:
        return out
    for key, value in sorted(vars(config).items()):
        if isinstance(value, PretrainedConfig) and not key.startswith("_"):
            out.append((prefix + (key,), value))
            out += _sub_configs(value, prefix + (key,), depth + 1)
    return out


def parts_of(model) -> list:
    """The main part, then one part per sub-config (built or not), each with its module ids."""
    config = getattr(model, "config", None)
    named = list(model.named_modules())
    holders: dict = {}
    for path, module in named:
        c = getattr(module, "config", None)
        if c is not None and c is not config:
            holders.setdefault(id(c), path)   # the topmost module holding that config object
    parts = []
    claimed: set = set()
    for cpath, sub in (_sub_configs(config) if config is not None else []):
        module_path = holders.get(id(sub))
        part = Part(_name(cpath), cpath, module_path or "", built=module_path is not None)
        if module_path is not None:
            prefix = module_path + "."
            part.ids = {id(m) for p, m in named if (p == module_path or p.startswith(prefix))}
        parts.append(part)
    # nested parts keep their own modules: an outer part (thinker) does not count an inner one's
    for part in sorted(parts, key=lambda p: -len(p.module)):
        part.ids -= claimed
        claimed |= part.ids
    main = Part("main", (), "", ids={id(m) for _, m in named} - claimed)
    return [main] + parts


MODALITY = {"image": ("vision", "visual", "image", "vq", "perceiver", "qformer", "projector"),
            "audio": ("audio", "speech", "encoder", "projector", "sound", "whisper", "acoustic", "semantic")}


def measure(parts: list, calls: dict, sites: list, dropped: dict | None = None) -> None:
    """calls: id(module) -> forward calls in training; sites: (module id, train calls) per site;
    dropped: modality -> why the batch left that input out (said of the idle parts it feeds, known by
    their name or their module's: Molmo2's `adapter` part is its `multi_modal_projector`)."""
    for part in parts:
        part.calls = sum(calls.get(i, 0) for i in part.ids)
        inside = [n for i, n in sites if i in part.ids]
        part.sites, part.fired = len(inside), sum(inside)
        names = f"{part.name} {part.module.rsplit('.', 1)[-1]}"
        for modality, why in (dropped or {}).items():
            if not part.calls and why and not part.why and any(v in names for v in MODALITY[modality]):
                part.why = f"the probe's batch left the {modality} out: {why}"


def explain_unreached(model, parts: list) -> None:
    """A part the batch could not reach because the model's forward never calls it: Janus builds
    its VQ image model (`vqmodel`) only to decode generated image tokens into pixels, so no
    training forward runs it, whatever the batch. Said when the modeling file uses the module's
    attribute in functions none of which its forwards call (by name, transitively)."""
    for part in parts:
        if part.ran or part.why or not part.built or not part.module:
            continue
        attr = part.module.rsplit(".", 1)[-1]
        users = _users_outside_forward(model, attr)
        if users:
            part.why = (f"the model's forward never calls it: its modeling code uses `.{attr}` only in "
                        f"{', '.join(users)}; no training batch runs it, at full size either")


def _users_outside_forward(model, attr: str) -> list:
    """Names of the modeling file's functions that use `.attr`, when no forward reaches any."""
    import sys

    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    path = getattr(sys.modules.get(type(base).__module__), "__file__", None)
    functions = _functions_of(path) if path and path.endswith(".py") else {}
    users = {name for name, (attrs, _calls) in functions.items()
             if attr in attrs and not name.startswith(("__", "_init"))}
    if not users:
        return []
    reached, frontier = set(), {"forward"}
    while frontier:
        reached |= frontier
        frontier = {c for name in frontier for c in functions.get(name, ((), ()))[1]
                    if c in functions} - reached
    return [] if users & reached else sorted(users)


@functools.lru_cache(maxsize=16)
def _functions_of(path: str) -> dict:
    """name -> (attributes it reads, names it calls), over every function of that name in the file."""
    import ast

    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return {}
    out: dict = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            attrs, calls = out.setdefault(fn.name, (set(), set()))
            for node in ast.walk(fn):
                if isinstance(node, ast.Attribute):
                    attrs.add(node.attr)
                if isinstance(node, ast.Call):
                    f = node.func
                    calls.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return out


def part_of_key(parts: list, key_path: tuple):
    """The innermost part whose sub-config holds the key; the main part for a top-level key."""
    best = parts[0] if parts else None
    for part in parts[1:]:
        n = len(part.config_path)
        if key_path[:n] == part.config_path and len(key_path) > n and (best is None or n > len(best.config_path)):
            best = part
    return best
