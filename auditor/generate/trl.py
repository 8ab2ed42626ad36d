"""Generate TRL's trainer facts (data/trl.json) from the installed trl's source.

    python -m auditor.generate.trl            # write data/trl.json
    python -m auditor.generate.trl --check    # regenerate in memory, exit 1 on drift

Why a source scan and not an import: importing trl pulls in torch and transformers (seconds), and
the facts we need are spelled plainly in the source: each `*Config` dataclass declares
`disable_dropout: bool = field(default=...)`, and each trainer's `__init__` calls
`disable_dropout_in_model(...)` when that flag is set. Whether the call comes after the PEFT wrap
matters, because only then are the LoRA dropouts among the modules it zeroes: the wrap is either a
`get_peft_model(...)` call or a `super().__init__(..., peft_config=...)` into a parent that wraps.
Subclasses inherit both the config default and the trainer's call, so the class hierarchy is kept.
Experimental trainers are included (trl/experimental/*).

Imports inside functions (`importlib`) are deferred for start-up time: a run that never takes
that path never pays for them.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import sys
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent.parent / "knowledge" / "data" / "trl.json"
SCHEMA = 1


def trl_root() -> Path:
    """The installed trl package directory, found without importing trl."""
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("trl is not installed (pip install -c constraints/ci.txt 'dropout-auditor[knowledge]')")
    return Path(list(spec.submodule_search_locations)[0])


def _name(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _name(node.value)
    return ""


def _field_default(value):
    """The default of `x: T = field(default=...)` or `x: T = literal`, or None when not literal."""
    if isinstance(value, ast.Call) and _name(value.func) == "field":
        for kw in value.keywords:
            if kw.arg == "default":
                value = kw.value
                break
        else:
            return None
    try:
        return ast.literal_eval(value)
    except ValueError:
        return None


def _calls(func) -> list:
    return [n for n in ast.walk(func) if isinstance(n, ast.Call)]


def _is_peft_wrap(call) -> bool:
    name = _name(call.func)
    if name in ("get_peft_model", "prepare_peft_model"):
        return True
    return (name == "__init__" and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Call) and _name(call.func.value.func) == "super"
            and any(kw.arg == "peft_config" for kw in call.keywords))


def _trainer_facts(cls: ast.ClassDef) -> dict:
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    facts = {"config": None, "disables_dropout": False, "after_peft_wrap": None, "line": None}
    if init is None:
        return facts
    for arg in init.args.args + init.args.kwonlyargs:
        if arg.arg == "args" and arg.annotation is not None:
            names = [_name(n) for n in ast.walk(arg.annotation) if isinstance(n, (ast.Name, ast.Attribute))]
            facts["config"] = next((n for n in names if n.endswith("Config")), None)
    calls = _calls(init)
    disables = sorted(c.lineno for c in calls if _name(c.func) == "disable_dropout_in_model")
    wraps = sorted(c.lineno for c in calls if _is_peft_wrap(c))
    if disables:
        facts["disables_dropout"] = True
        facts["line"] = disables[0]
        facts["after_peft_wrap"] = bool(wraps) and wraps[0] < disables[0]
    return facts


def scan(root: Path) -> dict:
    configs, trainers = {}, {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        if "__pycache__" in rel:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            bases = [_name(b) for b in cls.bases]
            where = f"{rel}:{cls.lineno}"
            if cls.name.endswith("Config"):
                default = None
                for stmt in cls.body:
                    if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                            and stmt.target.id == "disable_dropout" and stmt.value is not None):
                        default = _field_default(stmt.value)
                configs[cls.name] = {"bases": bases, "disable_dropout": default, "where": where}
            elif cls.name.endswith("Trainer"):
                trainers[cls.name] = {"bases": bases, "where": where, **_trainer_facts(cls)}
    return {"configs": configs, "trainers": trainers}


def resolved(raw: dict) -> dict:
    """Follow the hierarchy: a config without its own field inherits its parent's default, a
    trainer without its own call inherits its parent's behaviour and config."""
    configs, trainers = raw["configs"], raw["trainers"]

    def config_default(name, seen=()):
        c = configs.get(name)
        if c is None or name in seen:
            return None
        if c["disable_dropout"] is not None:
            return c["disable_dropout"]
        return next((d for b in c["bases"] if (d := config_default(b, seen + (name,))) is not None), None)

    def trainer_attr(name, attr, seen=()):
        t = trainers.get(name)
        if t is None or name in seen:
            return None
        if t[attr] not in (None, False):
            return t[attr]
        return next((v for b in t["bases"] if (v := trainer_attr(b, attr, seen + (name,))) not in (None, False)),
                    t[attr])

    out = {}
    for name in sorted(trainers):
        t = trainers[name]
        config = trainer_attr(name, "config")
        disables = bool(trainer_attr(name, "disables_dropout"))
        out[name] = {
            "where": t["where"], "bases": t["bases"], "config": config,
            "config_disable_dropout": config_default(config) if config else None,
            "calls_disable_dropout": disables,
            "after_peft_wrap": trainer_attr(name, "after_peft_wrap") if disables else None,
        }
    return out


def build(root: Path | None = None) -> dict:
    root = root or trl_root()
    raw = scan(root)
    version = _version(root)
    return {
        "schema": SCHEMA, "trl": version,
        "generated_by": "python -m auditor.generate.trl",
        "configs": {k: v for k, v in sorted(raw["configs"].items()) if v["disable_dropout"] is not None
                    or any(b.endswith("Config") for b in v["bases"])},
        "trainers": resolved(raw),
    }


def _version(root: Path) -> str:
    from importlib import metadata

    try:
        return metadata.version("trl")
    except metadata.PackageNotFoundError:
        return "unknown"


def _dump(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auditor.generate.trl", description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when data/trl.json differs from the installed trl")
    opts = ap.parse_args(argv)
    text = _dump(build())
    if opts.check:
        current = DATA_FILE.read_text(encoding="utf-8") if DATA_FILE.exists() else ""
        if current != text:
            print(f"{DATA_FILE} is stale: run python -m auditor.generate.trl", file=sys.stderr)
            return 1
        print("trl.json matches the installed trl")
        return 0
    DATA_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {DATA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
