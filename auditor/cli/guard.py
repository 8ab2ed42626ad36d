"""The exit statuses of every command, apart from the entry point (launch.py) and the click
group (commands.py), which both use it: neither imports the other's module to get it.

Imports inside functions (`os`, `traceback`) are deferred for start-up time: a run that never
takes that path never pays for them.
"""

from __future__ import annotations

import sys


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
