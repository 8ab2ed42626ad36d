"""The value types every stage passes along: Source -> Setting -> Setup -> DropoutPlan -> Finding.

These are plain slotted classes rather than pydantic models: they are created once per
dropout key in every file of a repository, on the hot path of a pre-commit hook, and need no
validation (the parsers build them from already-checked data). Pydantic is used where input
from people arrives: rule files and the user's configuration. They write `__init__` by hand
rather than through the dataclass decorator, whose cost at import was a fifth of a one-file
check (auditor/core/record.py); the fields are the `__slots__`, in order.
"""

from __future__ import annotations

from auditor.core.record import FrozenRecord, Record

# Severities, most severe first; the order is used for --fail-on comparisons.
SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

CATEGORIES = ("invalid", "extreme", "missing", "inconsistent", "no-op", "eval-mode", "rng", "probe")

# Roles a dropout-like setting can play; rules select settings by role.
ROLES = (
    "attention", "hidden", "embedding", "activation", "classifier", "lora",
    "stochastic-depth", "layerdrop", "rnn", "other",
)


class Span(FrozenRecord):
    """A region of a file. Lines and columns are 1-based; end_column is exclusive (as SARIF).

    start/end are character offsets into the decoded text, so fixes can replace exact spans
    without re-deriving them from line/column.
    """

    __slots__ = ("line", "column", "end_line", "end_column", "start", "end")

    def __init__(self, line: int, column: int, end_line: int, end_column: int, start: int = 0, end: int = 0):
        set_ = object.__setattr__
        set_(self, "line", line)
        set_(self, "column", column)
        set_(self, "end_line", end_line)
        set_(self, "end_column", end_column)
        set_(self, "start", start)
        set_(self, "end", end)

    @classmethod
    def file_start(cls) -> "Span":
        return cls(1, 1, 1, 1, 0, 0)


class Setting(Record):
    """One dropout-like value exactly as written in one file.

    `p` is the probability when the value is a real number (range is judged by rules, not
    here); `reason` says why the value is not a number (`string`, `yaml11-string`,
    `template`, `null`, `bool`, `other`). `key_path` is the path of keys from the document
    root, e.g. ("model", "lora_dropout"), used for messages and for baselines that must
    survive line moves. `origin`: config | code | cli; `canonical`: the key lowercased with
    '-' mapped to '_'.
    """

    __slots__ = ("path", "key", "key_path", "role", "raw", "value", "p", "reason", "key_span", "value_span",
                 "origin", "canonical")

    def __init__(self, path: str, key: str, key_path: tuple, role: str, raw: str, value, p: float | None,
                 reason: str | None, key_span: Span, value_span: Span, origin: str = "config", canonical: str = ""):
        self.path = path
        self.key = key
        self.key_path = key_path
        self.role = role
        self.raw = raw
        self.value = value
        self.p = p
        self.reason = reason
        self.key_span = key_span
        self.value_span = value_span
        self.origin = origin
        self.canonical = canonical

    @property
    def dotted(self) -> str:
        return ".".join(str(k) if not isinstance(k, int) else f"[{k}]" for k in self.key_path).replace(".[", "[")

    @property
    def is_set(self) -> bool:
        """A key with an empty value (axolotl's `lora_dropout:`) expresses no intent."""
        return self.reason != "null"


class Field(Record):
    """A non-dropout value the resolver or rules need (model_type, adapter, rl, peft_type...)."""

    __slots__ = ("value", "span", "key_path")

    def __init__(self, value, span: Span, key_path: tuple = ()):
        self.value = value
        self.span = span
        self.key_path = key_path


class Source(Record):
    """A file and what the parsers found in it.

    kind: hf-config | peft-adapter | recipe | python | shell. dialect: for recipes, which
    framework reads it (axolotl, llamafactory, torchtune, trl, hf-trainer-args, gpt-neox, nemo,
    litgpt, generic); for other kinds it repeats the kind. `fields` holds the non-dropout facts
    (model_type, adapter, ...) keyed by a canonical name chosen by the dialect module; `facts`
    the parsed module of a Python source; `problems` the (code, span, message) raised while
    parsing.
    """

    __slots__ = ("path", "kind", "dialect", "text", "settings", "fields", "facts", "problems")

    def __init__(self, path: str, kind: str, dialect: str, text: str = "", settings: list | None = None,
                 fields: dict | None = None, facts: list | None = None, problems: list | None = None):
        self.path = path
        self.kind = kind
        self.dialect = dialect
        self.text = text
        self.settings = [] if settings is None else settings
        self.fields = {} if fields is None else fields
        self.facts = [] if facts is None else facts
        self.problems = [] if problems is None else problems

    def get(self, name: str, default=None):
        f = self.fields.get(name)
        return default if f is None else f.value


class ModelIdentity(Record):
    """Which model a setup trains, and how the auditor knows (auditor/setup/identity.py).

    `path` is the file that names the model. source: local-path | hf-cache | user |
    name-table | family-token (a token of the family lexicon) | class-name | torchtune-builder |
    config.json (beside the driver) | custom-code | non-transformers (no Transformers model type:
    its own code or another library runs it; no type, no note) | missing-path (a local path absent
    here, no note) | unknown. `config` is the config.json
    Source when one was read (its settings are the model's real values); `detail` says how the
    type was decided, or why it could not be.
    """

    __slots__ = ("ref", "path", "span", "model_type", "source", "detail", "config", "architectures")

    def __init__(self, ref: str, path: str, span: Span, model_type: str | None = None, source: str = "unknown",
                 detail: str = "", config: Source | None = None, architectures: tuple = ()):
        self.ref = ref
        self.path = path
        self.span = span
        self.model_type = model_type
        self.source = source
        self.detail = detail
        self.config = config
        self.architectures = architectures


class Setup(Record):
    """The files that train one model together: at most one driver (a recipe, a script or a
    launch command) plus the artifacts (config.json, adapter_config.json) beside it.
    Cross-file rules compare the driver against the artifacts; drivers are never compared
    with each other, since several recipes in one folder are alternatives, not one run.

    `links`: the setup-graph edges (auditor.setup.links.Link); `launch`: the launch-command
    Link that makes the driver run, if any; `model`: the model the setup trains, when it names
    one; `models`: every model reference of the driver -> ModelIdentity.
    """

    __slots__ = ("root", "driver", "artifacts", "links", "launch", "model", "models")

    def __init__(self, root: str, driver: Source | None = None, artifacts: list | None = None,
                 links: list | None = None, launch=None, model: ModelIdentity | None = None,
                 models: dict | None = None):
        self.root = root
        self.driver = driver
        self.artifacts = [] if artifacts is None else artifacts
        self.links = [] if links is None else links
        self.launch = launch
        self.model = model
        self.models = {} if models is None else models

    @property
    def sources(self) -> list:
        return ([self.driver] if self.driver else []) + list(self.artifacts)

    def of_kind(self, kind: str) -> list:
        return [s for s in self.sources if s.kind == kind]


class PlanEntry(Record):
    """The effective dropout at one site after every default and override the stack applies.

    `site`: e.g. "lora", "attention", or a config key; `chain`: human-readable steps, in
    order; `source`: path:line of the value that decided it, or "default".
    """

    __slots__ = ("site", "role", "configured", "effective", "chain", "source")

    def __init__(self, site: str, role: str, configured: Setting | None, effective: float | None,
                 chain: list | None = None, source: str = ""):
        self.site = site
        self.role = role
        self.configured = configured
        self.effective = effective
        self.chain = [] if chain is None else chain
        self.source = source


class DropoutPlan(Record):
    """`trainer`: e.g. "sft", "dpo", "full" (what kind of run this is); `finetune`: lora |
    full | unknown; `disabled_by`: why the trainer zeroes nn.Dropout modules in this run
    ("" if it does not)."""

    __slots__ = ("setup", "entries", "trainer", "finetune", "disabled_by")

    def __init__(self, setup: Setup, entries: list | None = None, trainer: str = "", finetune: str = "",
                 disabled_by: str = ""):
        self.setup = setup
        self.entries = [] if entries is None else entries
        self.trainer = trainer
        self.finetune = finetune
        self.disabled_by = disabled_by


class Edit(FrozenRecord):
    __slots__ = ("start", "end", "replacement")

    def __init__(self, start: int, end: int, replacement: str):
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "replacement", replacement)


class Fix(FrozenRecord):
    """`applicability`: safe | unsafe."""

    __slots__ = ("description", "edits", "applicability")

    def __init__(self, description: str, edits: tuple, applicability: str = "safe"):
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "edits", edits)
        object.__setattr__(self, "applicability", applicability)


class Finding(Record):
    """`key`: a stable identity inside the file (setting path), for baselines; `suppression`:
    (SARIF kind "inSource"|"external", justification) when suppressed; `cell`: in a notebook,
    (cell number, line, column, end_line, end_column) relative to the cell, while `span` is
    the position in the .ipynb file as stored (for CI annotations)."""

    __slots__ = ("code", "name", "category", "severity", "path", "span", "message", "fix", "key", "suppressed",
                 "suppression", "cell")

    def __init__(self, code: str, name: str, category: str, severity: str, path: str, span: Span, message: str,
                 fix: Fix | None = None, key: str = "", suppressed: bool = False, suppression: tuple = (),
                 cell: tuple = ()):
        self.code = code
        self.name = name
        self.category = category
        self.severity = severity
        self.path = path
        self.span = span
        self.message = message
        self.fix = fix
        self.key = key
        self.suppressed = suppressed
        self.suppression = suppression
        self.cell = cell

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


def finding_identity(f: Finding) -> tuple:
    """What makes two findings one: a setup spanning directories may report a finding on a
    shared linked file from each, and the run reports it once (engine and parallel alike)."""
    return (f.code, f.path, f.span.start, f.span.line, f.span.column, f.message)
