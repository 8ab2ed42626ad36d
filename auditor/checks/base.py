"""What a check primitive is made of: the registry it joins (`check`), what it sees
(`Context`), what it yields (`Hit`) and the helpers every rule module uses. Apart from the
package's __init__, which imports the rule modules to register them.
"""

from __future__ import annotations

from auditor.core.model import Edit, Fix, Span
from auditor.core.record import Record
from auditor.knowledge import dropout_keys

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


def hit_at(setting, message: str, fix=None) -> Hit:
    return Hit(setting.path, setting.value_span, message, fix, setting.dotted)


def replace_value(setting, replacement: str, description: str, applicability: str = "safe") -> Fix | None:
    """The edit of a value, offered only on a key established as a rate: `--fix` never rewrites a
    value the tool merely guessed to be one (#25)."""
    if not dropout_keys.is_established_rate(setting.key):
        return None
    span = setting.value_span
    return Fix(description, (Edit(span.start, span.end, replacement),), applicability)


def fmt_p(p: float) -> str:
    text = f"{p:.6g}"
    return text if "." in text or "e" in text else text + ".0"
