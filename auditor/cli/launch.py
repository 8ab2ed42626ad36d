"""The `dropout-audit` entry point: `check` with its everyday options runs without click.

A pre-commit hook runs `dropout-audit check FILE...` on every commit, and CI runs it with a
format and a selection; importing click (with inspect, typing, uuid and platform behind it)
costs about as much as auditing one file (about 30 ms). So `check` followed only by paths and
the options that such lines use (`--format`, `--select`, `--fix`, `--output-file`/`-o`) is parsed
here by hand into checkrun.Request, exactly as click would parse it (tests/test_perf_launch.py
asserts both build the same Request). Anything else (another option, `--help`, `--`, `-`, a
malformed option), and any usage or configuration problem (raised before anything is written),
goes through click, which words it with the usage text.

Imports inside functions (`cli.checkrun`, `cli.commands`) are deferred for start-up time: a run
that never takes that path never pays for them.
"""

from __future__ import annotations

import sys

from auditor.cli.guard import guarded

# option -> (Request field, takes a value, repeatable): the subset of click's `check` options
# parsed here; click's declarations in commands.py are the reference.
_FAST = {
    "--format": ("formats", True, True),
    "--select": ("select", True, True),
    "--output-file": ("output_file", True, False),
    "-o": ("output_file", True, False),
    "--fix": ("fix", False, False),
}


def fast_request(args: list):
    """The keyword arguments of checkrun.Request for `check ARGS`, or None when ARGS hold
    anything this parser does not take (then click parses them)."""
    paths, fields = [], {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            paths.append(arg)
            i += 1
            continue
        name, eq, inline = arg.partition("=")
        spec = _FAST.get(name)
        if spec is None or (eq and (not spec[1] or name == "-o")):
            return None  # an option click must parse, a flag given a value, `-`, `--`
        field, takes_value, repeatable = spec
        if not takes_value:
            fields[field] = True
            i += 1
            continue
        if eq:
            value = inline
            i += 1
        else:
            if i + 1 >= len(args):
                return None  # a missing value: click says so
            value = args[i + 1]
            i += 2
        if repeatable:
            fields[field] = fields.get(field, ()) + (value,)
        else:
            fields[field] = value
    return dict(paths=tuple(paths), **fields)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    fields = fast_request(args[1:]) if args[:1] == ["check"] else None
    if fields is not None:
        from auditor.cli import checkrun

        try:
            return guarded(lambda: checkrun.run(checkrun.Request(**fields)),
                           passthrough=(checkrun.UsageProblem, checkrun.ConfigProblem))
        except (checkrun.UsageProblem, checkrun.ConfigProblem):
            pass
    from auditor.cli import commands as cli

    return cli.main(args)
