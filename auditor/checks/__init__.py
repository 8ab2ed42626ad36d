"""Check primitives: the Python behind `check:` in rule files.

A primitive is registered under a name with the scope it runs at: `source` (once per file)
or `setup` (once per training run, for cross-file questions). It yields Hits; the engine adds
the rule's code, name, category and severity, so one primitive can serve many rules with
different params.
"""

from __future__ import annotations

import sys

from auditor.model import Fix, Span
from auditor.record import Record

CHECKS: dict = {}


class Hit(Record):
    """`severity`: a primitive may lower (never raise) its rule's severity for one hit: an
    eval-mode finding on a model whose dropout is unknown is info, not a warning."""

    __slots__ = ("path", "span", "message", "fix", "key", "severity")

    def __init__(self, path: str, span: Span, message: str, fix: Fix | None = None, key: str = "",
                 severity: str = ""):
        self.path = path
        self.span = span
        self.message = message
        self.fix = fix
        self.key = key
        self.severity = severity


class Context(Record):
    """What a primitive may look at: the source (for source scope), the setup and its plan."""

    __slots__ = ("source", "setup", "plan")

    def __init__(self, source=None, setup=None, plan=None):
        self.source = source
        self.setup = setup
        self.plan = plan


def check(name: str, scope: str = "source"):
    def register(fn):
        CHECKS[name] = (scope, fn)
        return fn
    return register


# The primitives of auditor.checks.code, by scope. Each is silent unless the file (source
# scope) or the setup's driver (setup scope) is Python (code.common._module,
# code.eval_mode._python_driver), so a run over recipes and configs need not import the AST
# machinery behind them (a third of a one-recipe check's imports). tests/test_perf_imports.py
# asserts this table is exactly what the package registers.
PYTHON_ONLY = {
    "functional-dropout-training": "source", "attention-dropout-ungated": "source",
    "trainer-args-dropout-kwarg": "source", "rnn-dropout-single-layer": "source",
    "dropout-module-unused": "source", "dropout-parameter-unused": "source",
    "dropout-set-after-build": "source", "dropout-result-discarded": "source",
    "dropout-flag-unread": "source", "attention-path-without-dropout": "source",
    "checkpoint-without-rng-state": "source", "same-seed-every-rank": "source",
    "preference-dropout-on": "setup",
    "inference-in-train-mode": "setup", "eval-without-train": "setup",
    "no-grad-is-not-eval": "setup", "mc-dropout-in-eval": "setup",
}


def load_all() -> dict:
    """Import the primitive modules (each registers itself) and return the registry; the
    Python-code primitives are registered as stand-ins that import them on first Python file."""
    from auditor.checks import consistency, extreme, missing, noop, problems, setup_links, values  # noqa: F401

    for optional in ("auditor.checks.architecture", "auditor.checks.model_identity",
                     "auditor.checks.layerdrop_ddp", "auditor.checks.frameworks"):
        try:
            __import__(optional)
        except ImportError:
            pass
    if "auditor.checks.code" not in sys.modules:
        for name, scope in PYTHON_ONLY.items():
            CHECKS.setdefault(name, (scope, _deferred(name, scope)))
    return CHECKS


def _deferred(name: str, scope: str):
    def run(ctx, rule):
        src = ctx.source if scope == "source" or ctx.setup is None else ctx.setup.driver
        if src is None or src.kind != "python":
            return ()
        try:
            import auditor.checks.code  # noqa: F401  (registers the real primitives over the stand-ins)
        except ImportError:
            return ()
        return CHECKS[name][1](ctx, rule)
    return run


def hit_at(setting, message: str, fix=None) -> Hit:
    return Hit(setting.path, setting.value_span, message, fix, setting.dotted)


def replace_value(setting, replacement: str, description: str, applicability: str = "safe") -> Fix:
    from auditor.model import Edit

    span = setting.value_span
    return Fix(description, (Edit(span.start, span.end, replacement),), applicability)


def fmt_p(p: float) -> str:
    text = f"{p:.6g}"
    return text if "." in text or "e" in text else text + ".0"
