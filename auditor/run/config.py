"""The user's configuration, validated: `[tool.dropout-audit]` or `.dropout-audit.toml`.

Pydantic is used here (and only here) because this is where input typed by people arrives,
and its errors name the offending key, which is what a user needs from exit code 2. The
module is imported only when a configuration file exists (see config_file.py).

    [tool.dropout-audit]
    select = ["DRP"]                   # codes, prefixes, categories or rule names
    ignore = ["DRP300"]
    extend-select = []
    fail-on = "warning"
    exclude = ["vendor/", "*.generated.yaml"]
    rule-dirs = ["policies/dropout"]   # extra rule YAML directories
    report-only-given = true           # with explicit files: report only on those
    per-file-ignores = { "legacy/**" = ["DRP2"], "config.json" = ["DRP501"] }
    [tool.dropout-audit.params.DRP201]
    max = 0.2
    [tool.dropout-audit.severity]
    DRP300 = "warning"
    [tool.dropout-audit.models]         # private models: a model type or a path to config.json
    "acme/atlas-3b" = "mistral"

Imports inside functions (`knowledge.architectures`) are deferred for start-up time: a run that
never takes that path never pays for them.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from auditor.run.config_file import PYPROJECT, TABLE

Severity = Literal["error", "warning", "info"]


class ConfigError(Exception):
    """Invalid configuration; the message names the file and the key."""


class UserConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=lambda name: name.replace("_", "-"),
                              populate_by_name=True, strict=True)

    select: list[str] | None = None
    ignore: list[str] | None = None
    extend_select: list[str] = []
    per_file_ignores: dict[str, list[str]] = {}
    fail_on: Severity | None = None
    exclude: list[str] = []
    params: dict[str, dict[str, Any]] = {}
    severity: dict[str, Severity] = {}
    rule_dirs: list[str] = []
    report_only_given: bool = True
    models: dict[str, str] = {}



def _key_prefix(path: str) -> str:
    return f"tool.{TABLE}." if os.path.basename(path) == PYPROJECT else ""


def load(path: str, table: dict) -> "Loaded":
    try:
        cfg = UserConfig.model_validate(table)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(f"{path}: {_key_prefix(path)}{key}: {msg}") from None
    return Loaded(path, cfg)


class Loaded:
    """A validated configuration and the folder its relative paths are relative to."""

    def __init__(self, path: str, cfg: UserConfig):
        self.path = path
        self.root = os.path.dirname(os.path.abspath(path))
        self.cfg = cfg

    def resolve(self, relative: str) -> str:
        return os.path.join(self.root, relative)

    def key_prefix(self) -> str:
        """How a key of this file is named in a message: `pyproject.toml: tool.dropout-audit.`."""
        return f"{self.path}: {_key_prefix(self.path)}"

    def _code_of(self, key: str, rules, table: str) -> str:
        """A table key names one rule, by code or by name (rule names work wherever codes do)."""
        from auditor.core.selectors import closest, describe

        for rule in rules:
            if key.upper() == rule.code or key == rule.name:
                return rule.code
        raise ConfigError(describe(key, closest(key, rules), f"{self.key_prefix()}{table}.{key}")
                          + ": a table key names one rule, by code or name")

    def severities(self, rules) -> dict:
        return {self._code_of(key, rules, "severity"): value for key, value in self.cfg.severity.items()}

    def check_rules(self, rules) -> dict:
        """Params and severities must name existing rules and parameters of the right shape:
        a typo would otherwise silently leave the default threshold in force. Returns the
        params to use, with per-role tables merged into the rule's defaults, so that
        `[params.DRP200.max] attention = 0.2` keeps the limits of the other roles."""
        by_code = {r.code: r for r in rules}
        prefix = f"{self.path}: {_key_prefix(self.path)}"
        merged = {}
        for key, params in self.cfg.params.items():
            code = self._code_of(key, rules, "params")
            rule = by_code[code]
            merged[code] = {}
            for name, value in params.items():
                if name not in rule.params:
                    known = ", ".join(sorted(rule.params)) or "none"
                    raise ConfigError(f"{prefix}params.{code}.{name}: unknown parameter (known: {known})")
                default = rule.params[name]
                if not _same_shape(default, value):
                    raise ConfigError(f"{prefix}params.{code}.{name}: expected {_shape(default)}, "
                                      f"got {_shape(value)}")
                merged[code][name] = {**default, **value} if isinstance(default, dict) else value
        self.severities(rules)
        return merged

    def models(self) -> dict:
        """The user's model references, each to a model type this Transformers knows or to an
        existing config.json (a path relative to the configuration file, made absolute)."""
        from auditor.knowledge import architectures

        prefix = f"{self.path}: {_key_prefix(self.path)}models"
        out = {}
        for ref, target in self.cfg.models.items():
            if not ref.strip() or not target.strip():
                raise ConfigError(f"{prefix}: model references and their targets cannot be empty")
            if architectures.lookup(target) is not None and "/" not in target and not target.endswith(".json"):
                out[ref] = target
                continue
            path = self.resolve(target)
            cfg = path if path.endswith(".json") else os.path.join(path, "config.json")
            if not os.path.isfile(cfg):
                raise ConfigError(f"{prefix}.\"{ref}\": '{target}' is neither a model type of Transformers "
                                  f"{architectures.library_version()} nor a path to a config.json")
            out[ref] = os.path.abspath(cfg)
        return out


def _shape(value) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__


def _same_shape(default, value) -> bool:
    if isinstance(default, dict) and isinstance(value, dict):
        return all(_same_shape(default[k], v) for k, v in value.items() if k in default)
    return _shape(default) == _shape(value)
