"""The `dropout-audit` entry point: a plain `check PATHS` runs without importing click.

A pre-commit hook runs `dropout-audit check FILE...` on every commit, and importing click
(with inspect, typing, uuid and platform behind it) costs about as much as auditing one
file. When every argument after `check` is a path (nothing starts with `-`), there is
nothing to parse: the run gets checkrun.Request's defaults, which are click's defaults for
`check` (tests/test_perf_launch.py asserts both build the same Request). Anything else, and
any usage or configuration problem (raised before anything is written), goes through click,
which words it with the usage text.

Imports inside functions (`cli.checkrun`, `cli.commands`) are deferred for start-up time: a run
that never takes that path never pays for them.
"""

from __future__ import annotations

import sys

from auditor.cli.guard import guarded


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["check"] and not any(a.startswith("-") for a in args[1:]):
        from auditor.cli import checkrun

        try:
            return guarded(lambda: checkrun.run(checkrun.Request(paths=tuple(args[1:]))),
                           passthrough=(checkrun.UsageProblem, checkrun.ConfigProblem))
        except (checkrun.UsageProblem, checkrun.ConfigProblem):
            pass
    from auditor.cli import commands as cli

    return cli.main(args)
