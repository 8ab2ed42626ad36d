"""The rule catalogue: one YAML file per rule, built-in ones shipped in the package.

Rules are data so that their documentation, their examples (which run as tests) and their
tunable parameters live in one place, and so that users can add organisation policies with
`--rules DIR` using the same check primitives, without writing Python.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from auditor.model import CATEGORIES, SEVERITIES

REQUIRED = ("code", "name", "category", "severity", "check", "summary", "why")


class RuleError(Exception):
    """A rule file that cannot be used; the message names the file and the key."""


@dataclass(slots=True)
class Rule:
    code: str
    name: str
    category: str
    severity: str
    check: str
    summary: str
    why: str
    params: dict = field(default_factory=dict)
    references: list = field(default_factory=list)
    examples: dict = field(default_factory=dict)
    fix: str = ""
    origin: str = ""

    @classmethod
    def from_dict(cls, data, origin: str) -> "Rule":
        if not isinstance(data, dict):
            raise RuleError(f"{origin}: a rule file must be a mapping")
        for key in REQUIRED:
            if not isinstance(data.get(key), str) or not data[key].strip():
                raise RuleError(f"{origin}: '{key}' is required and must be a non-empty string")
        if data["category"] not in CATEGORIES:
            raise RuleError(f"{origin}: category '{data['category']}' is not one of {', '.join(CATEGORIES)}")
        if data["severity"] not in SEVERITIES:
            raise RuleError(f"{origin}: severity '{data['severity']}' is not one of {', '.join(SEVERITIES)}")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise RuleError(f"{origin}: 'params' must be a mapping")
        examples = data.get("examples") or {}
        if not isinstance(examples, dict):
            raise RuleError(f"{origin}: 'examples' must be a mapping with 'bad' and 'good' lists")
        known = set(REQUIRED) | {"params", "references", "examples", "fix"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RuleError(f"{origin}: unknown key '{unknown[0]}'")
        return cls(code=data["code"], name=data["name"], category=data["category"], severity=data["severity"],
                   check=data["check"], summary=data["summary"].strip(), why=data["why"].strip(), params=params,
                   references=list(data.get("references") or []), examples=examples,
                   fix=str(data.get("fix") or ""), origin=origin)


def builtin_dir() -> str:
    """Built-in rules: `auditor/rules` in a wheel, the top-level `rules/` in a checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    packaged = os.path.join(here, "rules")
    if os.path.isdir(packaged):
        return packaged
    return os.path.join(os.path.dirname(here), "rules")


def _load_file(path: str) -> Rule:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        with open(path, encoding="utf-8") as fh:
            data = YAML(typ="safe", pure=True).load(fh)
    except (OSError, YAMLError, ValueError) as exc:
        raise RuleError(f"{path}: cannot read rule file: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    return Rule.from_dict(data, path)


def load(extra_dirs=()) -> list:
    """Every rule, built-in first; a user rule with a built-in code replaces it."""
    by_code = {}
    for directory in (builtin_dir(), *extra_dirs):
        if not os.path.isdir(directory):
            raise RuleError(f"{directory}: rules directory does not exist")
        for name in sorted(os.listdir(directory)):
            if name.endswith((".yaml", ".yml")):
                rule = _load_file(os.path.join(directory, name))
                by_code[rule.code] = rule
    return sorted(by_code.values(), key=lambda r: r.code)
