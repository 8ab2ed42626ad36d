"""Check primitives: the Python behind `check:` in rule files.

A primitive is registered under a name with the scope it runs at: `source` (once per file)
or `setup` (once per training run, for cross-file questions). It yields Hits; the engine adds
the rule's code, name, category and severity, so one primitive can serve many rules with
different params.
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Fix, Span

CHECKS: dict = {}


@dataclass(slots=True)
class Hit:
    path: str
    span: Span
    message: str
    fix: Fix | None = None
    key: str = ""
    # A primitive may lower (never raise) its rule's severity for one hit: an eval-mode finding
    # on a model whose dropout is unknown is info, not a warning.
    severity: str = ""


@dataclass(slots=True)
class Context:
    """What a primitive may look at: the source (for source scope), the setup and its plan."""

    source: object = None
    setup: object = None
    plan: object = None


def check(name: str, scope: str = "source"):
    def register(fn):
        CHECKS[name] = (scope, fn)
        return fn
    return register


def load_all() -> dict:
    """Import the primitive modules (each registers itself) and return the registry."""
    from auditor.checks import consistency, extreme, missing, noop, problems, setup_links, values  # noqa: F401

    for optional in ("auditor.checks.architecture", "auditor.checks.model_identity", "auditor.checks.code",
                     "auditor.checks.layerdrop_ddp", "auditor.checks.frameworks"):
        try:
            __import__(optional)
        except ImportError:
            pass
    return CHECKS


def hit_at(setting, message: str, fix=None) -> Hit:
    return Hit(setting.path, setting.value_span, message, fix, setting.dotted)


def replace_value(setting, replacement: str, description: str, applicability: str = "safe") -> Fix:
    from auditor.model import Edit

    span = setting.value_span
    return Fix(description, (Edit(span.start, span.end, replacement),), applicability)


def fmt_p(p: float) -> str:
    text = f"{p:.6g}"
    return text if "." in text or "e" in text else text + ".0"
