"""The `dropout-audit` entry point: a plain `check PATHS` runs without importing click.

A pre-commit hook runs `dropout-audit check FILE...` on every commit, and importing click
(with inspect, typing, uuid and platform behind it) costs about as much as auditing one
file. When every argument after `check` is a path (nothing starts with `-`), there is
nothing to parse: the run gets checkrun.Request's defaults, which are click's defaults for
`check` (tests/test_perf_launch.py asserts both build the same Request). Anything else, and
any usage or configuration problem (raised before anything is written), goes through click,
which words it with the usage text.
"""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["check"] and not any(a.startswith("-") for a in args[1:]):
        from auditor import checkrun

        try:
            return guarded(lambda: checkrun.run(checkrun.Request(paths=tuple(args[1:]))),
                           passthrough=(checkrun.UsageProblem, checkrun.ConfigProblem))
        except (checkrun.UsageProblem, checkrun.ConfigProblem):
            pass
    from auditor import cli

    return cli.main(args)


def guarded(call, passthrough=()) -> int:
    """Exit statuses a hook can trust: Ctrl-C is 130 (click's standalone mode makes it 1,
    which reads as "findings"), an uncaught bug is 2, and a reader that left (`| head`) is
    not an error worth a traceback."""
    try:
        rv = call()
        return rv if isinstance(rv, int) else 0
    except passthrough:
        raise
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `dropout-audit check | head`: the reader left, nothing to report
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - an internal error must not look like "findings" (exit 1)
        click = sys.modules.get("click")
        if click is not None and isinstance(exc, click.exceptions.Abort):
            print("interrupted", file=sys.stderr)
            return 130
        if click is not None and isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        import traceback

        traceback.print_exc()
        print("dropout-audit: internal error (exit 2); please report it with the traceback above", file=sys.stderr)
        return 2
