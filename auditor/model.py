"""The value types every stage passes along: Source -> Setting -> Setup -> DropoutPlan -> Finding.

These are plain slotted dataclasses rather than pydantic models: they are created once per
dropout key in every file of a repository, on the hot path of a pre-commit hook, and need no
validation (the parsers build them from already-checked data). Pydantic is used where input
from people arrives: rule files and the user's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Severities, most severe first; the order is used for --fail-on comparisons.
SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

CATEGORIES = ("invalid", "extreme", "missing", "inconsistent", "no-op", "eval-mode", "rng", "probe")

# Roles a dropout-like setting can play; rules select settings by role.
ROLES = (
    "attention", "hidden", "embedding", "activation", "classifier", "lora",
    "stochastic-depth", "layerdrop", "rnn", "other",
)


@dataclass(slots=True, frozen=True)
class Span:
    """A region of a file. Lines and columns are 1-based; end_column is exclusive (as SARIF).

    start/end are character offsets into the decoded text, so fixes can replace exact spans
    without re-deriving them from line/column.
    """

    line: int
    column: int
    end_line: int
    end_column: int
    start: int = 0
    end: int = 0

    @classmethod
    def file_start(cls) -> "Span":
        return cls(1, 1, 1, 1, 0, 0)


@dataclass(slots=True)
class Setting:
    """One dropout-like value exactly as written in one file.

    `p` is the probability when the value is a real number (range is judged by rules, not
    here); `reason` says why the value is not a number (`string`, `yaml11-string`,
    `template`, `null`, `bool`, `other`). `key_path` is the path of keys from the document
    root, e.g. ("model", "lora_dropout"), used for messages and for baselines that must
    survive line moves.
    """

    path: str
    key: str
    key_path: tuple
    role: str
    raw: str
    value: Any
    p: float | None
    reason: str | None
    key_span: Span
    value_span: Span
    origin: str = "config"  # config | code | cli
    canonical: str = ""     # key lowercased with '-' mapped to '_'

    @property
    def dotted(self) -> str:
        return ".".join(str(k) if not isinstance(k, int) else f"[{k}]" for k in self.key_path).replace(".[", "[")

    @property
    def is_set(self) -> bool:
        """A key with an empty value (axolotl's `lora_dropout:`) expresses no intent."""
        return self.reason != "null"


@dataclass(slots=True)
class Field:
    """A non-dropout value the resolver or rules need (model_type, adapter, rl, peft_type...)."""

    value: Any
    span: Span
    key_path: tuple = ()


@dataclass(slots=True)
class Source:
    """A file and what the parsers found in it.

    kind: hf-config | peft-adapter | recipe | python | shell. dialect: for recipes, which
    framework reads it (axolotl, llamafactory, torchtune, trl, hf-trainer-args, gpt-neox, nemo,
    litgpt, generic); for other kinds it repeats the kind. `fields` holds the non-dropout facts
    (model_type, adapter, ...) keyed by a canonical name chosen by the dialect module.
    """

    path: str
    kind: str
    dialect: str
    text: str = ""
    settings: list = field(default_factory=list)
    fields: dict = field(default_factory=dict)
    facts: list = field(default_factory=list)   # CodeFacts for python sources
    problems: list = field(default_factory=list)  # (code, span, message) raised while parsing

    def get(self, name: str, default: Any = None) -> Any:
        f = self.fields.get(name)
        return default if f is None else f.value


@dataclass(slots=True)
class ModelIdentity:
    """Which model a setup trains, and how the auditor knows (auditor/setup/identity.py).

    source: local-path | hf-cache | user | name-table | class-name | torchtune-builder |
    config.json (beside the driver) | missing-path (a local path absent here, no note) | unknown.
    `config` is the config.json Source when one was
    read (its settings are the model's real values); `detail` says how the type was decided,
    or why it could not be.
    """

    ref: str
    path: str                 # the file that names the model
    span: Span
    model_type: str | None = None
    source: str = "unknown"
    detail: str = ""
    config: Source | None = None
    architectures: tuple = ()


@dataclass(slots=True)
class Setup:
    """The files that train one model together: at most one driver (a recipe, a script or a
    launch command) plus the artifacts (config.json, adapter_config.json) beside it.
    Cross-file rules compare the driver against the artifacts; drivers are never compared
    with each other, since several recipes in one folder are alternatives, not one run.
    """

    root: str
    driver: Source | None = None
    artifacts: list = field(default_factory=list)
    links: list = field(default_factory=list)  # setup-graph edges (auditor.setup.links.Link)
    launch: Any = None        # the launch-command Link that makes the driver run, if any
    model: ModelIdentity | None = None   # the model the setup trains, when it names one
    models: dict = field(default_factory=dict)  # every model reference of the driver -> ModelIdentity

    @property
    def sources(self) -> list:
        return ([self.driver] if self.driver else []) + list(self.artifacts)

    def of_kind(self, kind: str) -> list:
        return [s for s in self.sources if s.kind == kind]


@dataclass(slots=True)
class PlanEntry:
    """The effective dropout at one site after every default and override the stack applies."""

    site: str                 # e.g. "lora", "attention", or a config key
    role: str
    configured: Setting | None
    effective: float | None
    chain: list = field(default_factory=list)   # human-readable steps, in order
    source: str = ""          # path:line of the value that decided it, or "default"


@dataclass(slots=True)
class DropoutPlan:
    setup: Setup
    entries: list = field(default_factory=list)
    trainer: str = ""         # e.g. "sft", "dpo", "full" — what kind of run this is
    finetune: str = ""        # lora | full | unknown
    disabled_by: str = ""     # why the trainer zeroes nn.Dropout modules in this run ("" if it does not)


@dataclass(slots=True, frozen=True)
class Edit:
    start: int
    end: int
    replacement: str


@dataclass(slots=True, frozen=True)
class Fix:
    description: str
    edits: tuple
    applicability: str = "safe"  # safe | unsafe


@dataclass(slots=True)
class Finding:
    code: str
    name: str
    category: str
    severity: str
    path: str
    span: Span
    message: str
    fix: Fix | None = None
    key: str = ""            # stable identity inside the file (setting path), for baselines
    suppressed: bool = False
    suppression: tuple = ()  # (SARIF kind "inSource"|"external", justification) when suppressed
    # In a notebook: (cell number, line, column, end_line, end_column) relative to the cell,
    # while `span` is the position in the .ipynb file as stored (for CI annotations).
    cell: tuple = ()

    def sort_key(self) -> tuple:
        return (self.path, self.span.line, self.span.column, self.code)

    def to_dict(self) -> dict:
        s = self.span
        line, column, end_line, end_column = self.cell[1:] if self.cell else (s.line, s.column, s.end_line,
                                                                               s.end_column)
        out = {
            "code": self.code,
            "name": self.name,
            "category": self.category,
            "severity": self.severity,
            "path": self.path,
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
            "message": self.message,
            "key": self.key,
            "fix": None if self.fix is None else {
                "description": self.fix.description,
                "applicability": self.fix.applicability,
                "edits": [{"start": e.start, "end": e.end, "replacement": e.replacement} for e in self.fix.edits],
            },
        }
        if self.cell:
            out["cell"] = self.cell[0]
        return out
