"""Check primitives: the Python behind `check:` in rule files.

A primitive is registered under a name with the scope it runs at: `source` (once per file)
or `setup` (once per training run, for cross-file questions). It yields Hits; the engine adds
the rule's code, name, category and severity, so one primitive can serve many rules with
different params.

Imports inside functions (`checks.code`, `checks.consistency`, `checks.extreme`,
`checks.missing`, `checks.noop`, `checks.problems`, ...) are deferred for start-up time: a run
that never takes that path never pays for them.
"""

from __future__ import annotations

import sys

from auditor.checks.base import CHECKS, Context, Hit, check, fmt_p, hit_at, replace_value  # noqa: F401 - re-exported

# The primitives of auditor.checks.code, by scope. Each is silent unless the file (source
# scope) or the setup's driver (setup scope) is Python (code.common._module,
# code.eval_mode._python_driver), so a run over recipes and configs need not import the AST
# machinery behind them (a third of a one-recipe check's imports). tests/test_perf_imports.py
# asserts this table is exactly what the package registers.
PYTHON_ONLY = {
    "functional-dropout-training": "source", "attention-dropout-ungated": "source",
    "trainer-args-dropout-kwarg": "source", "rnn-dropout-single-layer": "source",
    "dropout-module-unused": "source", "dropout-parameter-unused": "source",
    "dropout-set-after-build": "setup", "dropout-result-discarded": "source",
    "dropout-flag-unread": "source", "attention-path-without-dropout": "source",
    "checkpoint-without-rng-state": "source", "same-seed-every-rank": "source",
    "rng-sync-cpu-only": "source", "frozen-stages-unfrozen-by-train": "source",
    "dropout-scaling-inconsistent": "source", "dropout-rescaled-after-builtin": "source",
    "dropout-mask-shape": "source", "dropout-keep-drop-confused": "source",
    "preference-dropout-on": "setup",
    "inference-in-train-mode": "setup", "eval-without-train": "setup",
    "no-grad-is-not-eval": "setup", "mc-dropout-in-eval": "setup", "inference-without-eval": "setup",
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
