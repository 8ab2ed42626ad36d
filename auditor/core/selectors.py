"""Rule selectors, wherever a user writes one: --select/--ignore/--extend-select,
per-file-ignores, the configuration's tables and `# dropout-audit: ignore[...]` comments.

A selector that names no rule used to select nothing: `--select NOPE` turned every rule off
and the run said "All checks passed", so one typo in a CI line silently disabled the linter.
Every selector is now checked against the catalogue, and an unknown one is an error that
quotes it and the closest real selectors (ruff's "Unknown rule selector").

A selector is a code (DRP201), a prefix of a code (DRP2, DRP), a category (no-op), a rule name
(lora-dropout-too-high) or ALL; codes and prefixes are case-insensitive.

Imports inside functions (`difflib`) are deferred for start-up time: only a typo pays for them.
"""

from __future__ import annotations


class UnknownSelector(Exception):
    """A selector that names no rule; `where` says where it was written."""

    def __init__(self, selector: str, suggestions: list, where: str = ""):
        self.selector = selector
        self.suggestions = suggestions
        self.where = where
        super().__init__(describe(selector, suggestions, where))


def describe(selector: str, suggestions: list, where: str = "") -> str:
    head = f"{where}: " if where else ""
    if suggestions:
        tail = f" (did you mean {', '.join(suggestions)}?)"
    else:
        tail = (" (a selector is a code such as DRP103, a code prefix such as DRP1, a category, a rule name"
                " or ALL; `dropout-audit rule` lists them)")
    return f"{head}unknown rule selector: {selector!r}{tail}"


def matches(rule, selector: str) -> bool:
    return (selector == "ALL" or rule.code.startswith(selector.upper()) or selector == rule.category
            or selector == rule.name)


def matches_finding(finding, selector: str) -> bool:
    """The same test on a finding (it carries its rule's code, name and category)."""
    return matches(finding, selector)


def is_known(selector: str, rules) -> bool:
    return bool(selector) and any(matches(rule, selector) for rule in rules)


def closest(selector: str, rules, n: int = 3) -> list:
    """The real selectors nearest to a typo: codes, names, categories and the code prefixes
    in use (DRP2, DRP20), ranked by difflib's similarity."""
    import difflib

    candidates = set()
    for rule in rules:
        candidates.update((rule.code, rule.name, rule.category))
        candidates.update(rule.code[:k] for k in range(4, len(rule.code)))
    by_lower = {c.lower(): c for c in sorted(candidates)}
    probe, ranked = selector.lower(), list(by_lower)
    near = difflib.get_close_matches(probe, ranked, n=n, cutoff=0.6) or \
        difflib.get_close_matches(probe, ranked, n=n, cutoff=0.3)
    return [by_lower[c] for c in near]


def check(selectors, rules, where: str = "") -> None:
    """Raise UnknownSelector for the first selector that names no rule."""
    rules = list(rules)
    for selector in selectors:
        if not is_known(selector, rules):
            raise UnknownSelector(selector, closest(selector, rules), where)


def codes_named(selector: str, rules) -> list:
    """The codes a selector names (a configuration table keyed by rule name or code)."""
    return [rule.code for rule in rules if matches(rule, selector)]
