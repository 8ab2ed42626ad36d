"""Problems found while reading a file (parse errors, duplicate keys) surface as findings of
the rule whose code the reader attached, so they can be selected, ignored and documented
like any other rule."""

from auditor.checks.base import Hit, check


@check("source-problem")
def source_problem(ctx, rule):
    for code, span, message in ctx.source.problems:
        if code == rule.code:
            yield Hit(ctx.source.path, span, message)
