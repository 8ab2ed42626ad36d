"""Which keys and flags a script's HfArgumentParser accepts, read from the AST.

`HfArgumentParser((A, B)).parse_yaml_file(path)` raises ValueError for a key that no field
of A or B has (unless `allow_extra_keys=True`), and `parse_args_into_dataclasses()` does the
same for a flag. The fields come from two places: the library classes, generated into
`data/hfargs.json` by `auditor/generate/hfargs.py` (never imported here), and the script's own
`@dataclass` classes. When any class is neither, the accepted set is unknown and nothing is
reported: a false "unknown key" costs more than a miss.
"""

from __future__ import annotations

import ast
import functools
import json
import os
from dataclasses import dataclass, field

from auditor.sources.python_facts import constant, kwarg, last_name

DATA = os.path.join(os.path.dirname(__file__), "data", "hfargs.json")


@dataclass(slots=True)
class Accepted:
    """The names one parser accepts: field names (YAML keys), and the extra flag spellings."""

    fields: set = field(default_factory=set)
    aliases: set = field(default_factory=set)   # flags from field metadata ("--lr", "-e")
    no_flags: set = field(default_factory=set)  # booleans defaulting to True: --no_<name>
    # Some fields come from a library class (TrainingArguments, SFTConfig, ...), known only at the
    # pinned versions: a name missing there may be a field of the release the project runs.
    versioned: bool = False

    def add(self, other: "Accepted") -> None:
        self.fields |= other.fields
        self.aliases |= other.aliases
        self.no_flags |= other.no_flags
        self.versioned = self.versioned or other.versioned

    def flags(self) -> set:
        """Every option string argparse registers (hf_argparser._parse_dataclass_field)."""
        out = set(self.aliases)
        for name in self.fields:
            out.add(f"--{name}")
            out.add(f"--{name.replace('_', '-')}")
        for name in self.no_flags:
            out.add(f"--no_{name}")
            out.add(f"--no-{name.replace('_', '-')}")
        return out


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    with open(DATA, encoding="utf-8") as fh:
        return json.load(fh)["classes"]


def library_class(name: str) -> Accepted | None:
    entry = _table().get(name)
    if entry is None:
        return None
    return Accepted(set(entry["fields"]), set(entry["aliases"]), set(entry["no_flags"]), versioned=True)


@dataclass(slots=True)
class ParserUse:
    """One `HfArgumentParser(...)` of a script and what is parsed with it."""

    call: ast.Call
    classes: tuple                      # class names as written
    accepted: Accepted | None           # None: some class or flag is not known statically
    files: list = field(default_factory=list)  # (call, "yaml"|"json", path node, allow_extra_keys)
    argv: list = field(default_factory=list)   # parse_args_into_dataclasses calls that reject extras


def _is_dataclass(cls: ast.ClassDef) -> bool:
    for d in cls.decorator_list:
        if last_name(d.func if isinstance(d, ast.Call) else d) == "dataclass":
            return True
    return False


def _field_call(value) -> ast.Call | None:
    if isinstance(value, ast.Call) and last_name(value.func) == "field":
        return value
    return None


def _own_fields(cls: ast.ClassDef) -> Accepted | None:
    acc = Accepted()
    for stmt in cls.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        if "ClassVar" in ast.dump(stmt.annotation) or "InitVar" in ast.dump(stmt.annotation):
            continue
        call = _field_call(stmt.value)
        if call is not None:
            init = kwarg(call, "init")
            if init is not None:
                ok, value = constant(init.value)
                if not ok:
                    return None
                if value is False:
                    continue
            meta = kwarg(call, "metadata")
            if meta is not None:
                aliases = _literal_aliases(meta.value)
                if aliases is None:
                    return None
                acc.aliases |= aliases
            default = kwarg(call, "default")
            default_node = default.value if default is not None else None
        else:
            default_node = stmt.value
        acc.fields.add(stmt.target.id)
        if default_node is not None and constant(default_node) == (True, True):
            acc.no_flags.add(stmt.target.id)
    return acc


def _literal_aliases(node) -> set | None:
    """metadata={"help": ..., "aliases": [...]}: the aliases if literal, None if unknowable."""
    if not isinstance(node, ast.Dict):
        return None
    out = set()
    for k, v in zip(node.keys, node.values):
        ok, key = constant(k) if k is not None else (False, None)
        if not ok:
            return None
        if key != "aliases":
            continue
        items = v.elts if isinstance(v, (ast.List, ast.Tuple)) else [v]
        for item in items:
            ok, value = constant(item)
            if not ok or not isinstance(value, str):
                return None
            out.add(value)
    return out


def script_classes(tree: ast.AST) -> dict:
    """name -> Accepted (or None when unknowable) for the module's top-level dataclasses,
    inheriting fields from local or library bases."""
    classes = {n.name: n for n in getattr(tree, "body", []) if isinstance(n, ast.ClassDef) and _is_dataclass(n)}
    done: dict = {}

    def resolve(name: str, seen: frozenset):
        if name in done:
            return done[name]
        cls = classes.get(name)
        if cls is None:
            return library_class(name)
        if name in seen:
            return None
        acc = _own_fields(cls)
        for base in cls.bases:
            base_name = last_name(base)
            if acc is None or base_name == "object":
                continue
            # `class TrainingArguments(transformers.TrainingArguments)` extends the library
            # class of the same name, not itself.
            inherited = library_class(base_name) if base_name == name else resolve(base_name, seen | {name})
            acc = None if inherited is None else (acc.add(inherited) or acc)
        done[name] = acc
        return acc

    for name in classes:
        resolve(name, frozenset())
    return done


def _class_names(node) -> tuple | None:
    items = node.elts if isinstance(node, (ast.Tuple, ast.List)) else [node]
    names = []
    for item in items:
        if not isinstance(item, (ast.Name, ast.Attribute)):
            return None
        names.append(last_name(item))
    return tuple(names)


def parser_uses(module) -> list:
    """Every HfArgumentParser of a script, with the files and argv it parses."""
    tree = module.tree
    local = None
    by_var: dict = {}
    uses = []
    for node in module.index.calls_by_name.get("HfArgumentParser", ()):
        if not (isinstance(node, ast.Call) and last_name(node.func) == "HfArgumentParser"):
            continue
        if local is None:
            local = script_classes(tree)
        first = node.args[0] if node.args else (kwarg(node, "dataclass_types").value if kwarg(node, "dataclass_types") else None)
        names = _class_names(first) if first is not None else None
        accepted = None
        if names:
            accepted = Accepted()
            for name in names:
                got = local[name] if name in local else library_class(name)
                if got is None:
                    accepted = None
                    break
                accepted.add(got)
        use = ParserUse(node, names or (), accepted)
        uses.append(use)
        parent = module.parent(node)
        if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
            by_var[parent.targets[0].id] = use
    if not uses:
        return uses
    for node in module.calls():
        func = node.func
        if not isinstance(func, ast.Attribute):
            continue
        owner = func.value
        use = by_var.get(owner.id) if isinstance(owner, ast.Name) else next(
            (u for u in uses if u.call is owner), None)
        if use is None:
            continue
        if func.attr == "add_argument":
            use.accepted = None  # flags added by hand: accepted set is no longer only the fields
        elif func.attr in ("parse_yaml_file", "parse_json_file"):
            path = node.args[0] if node.args else (kwarg(node, "yaml_file") or kwarg(node, "json_file"))
            path = getattr(path, "value", path) if isinstance(path, ast.keyword) else path
            extra = kwarg(node, "allow_extra_keys")
            allow = extra is not None and constant(extra.value) != (True, False)
            if path is not None:
                use.files.append((node, "yaml" if "yaml" in func.attr else "json", path, allow))
        elif func.attr == "parse_args_into_dataclasses":
            rest = kwarg(node, "return_remaining_strings")
            own_args = kwarg(node, "args") or (node.args[0] if node.args else None)
            if (rest is None or constant(rest.value) == (True, False)) and own_args is None:
                use.argv.append(node)
    return uses


def unknown_flag(flag: str, accepted: Accepted) -> bool:
    """argparse accepts any unambiguous prefix of a long option (allow_abbrev), and an
    ambiguous one is a different error; only a flag that starts no known option is unknown."""
    name = flag.split("=", 1)[0]
    return not any(known.startswith(name) for known in accepted.flags())
