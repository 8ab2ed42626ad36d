"""The probe's finding codes. The rule YAML files in rules/ document them; a test keeps the two
in step. Kept here as data so a finding can be built without loading the rule catalogue."""

from __future__ import annotations

from auditor.core.model import Finding, Span

# code -> (name, default severity)
PROBE_CODES = {
    "DRP800": ("dropout-active-in-eval", "error"),
    "DRP801": ("dropout-rate-mismatch", "error"),
    "DRP802": ("dropout-not-inverted", "error"),
    "DRP803": ("inference-rescaled", "error"),
    "DRP804": ("configured-key-no-effect", "warning"),
    "DRP805": ("unexplained-live-site", "info"),
    "DRP806": ("loss-not-finite", "error"),
    "DRP807": ("loss-not-falling", "warning"),
    "DRP808": ("eval-nondeterministic", "error"),
    "DRP809": ("eval-differs-from-identity", "error"),
    "DRP810": ("dropout-step-overhead", "info"),
    "DRP811": ("cannot-probe", "error"),
    "DRP812": ("dropout-masks-shared-across-ranks", "warning"),
}


def probe_finding(code: str, path: str, message: str, span: Span | None = None, key: str = "") -> Finding:
    name, severity = PROBE_CODES[code]
    return Finding(code=code, name=name, category="probe", severity=severity, path=path,
                   span=span or Span.file_start(), message=message, key=key)
