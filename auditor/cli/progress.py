"""A progress bar for long runs, shown only to a person watching a terminal.

It goes to stderr, and only when stderr is a TTY, NO_COLOR/CI/TERM=dumb do not say
otherwise, there are enough files for a wait to be noticeable, and no machine format is
written to stdout (a bar interleaved with SARIF or JSON would corrupt it, and a CI log would
fill with redraws). rich is imported only when the bar is actually shown.

Imports inside functions (`rich.console`, `rich.progress`) are deferred for start-up time: a run
that never takes that path never pays for them.
"""

from __future__ import annotations

import os
import sys

MIN_FILES = 200
HUMAN_FORMATS = ("full", "concise")


def wanted(n_files: int, stdout_formats, disabled: bool = False, stream=None) -> bool:
    stream = stream if stream is not None else sys.stderr
    if disabled or n_files < MIN_FILES:
        return False
    if any(fmt not in HUMAN_FORMATS for fmt in stdout_formats):
        return False
    if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Bar:
    """Context manager whose `track(files)` yields the files and advances the bar."""

    def __init__(self, total: int, stream=None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.total = total
        self.progress = Progress(TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                 console=Console(file=stream or sys.stderr), transient=True)

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task("audit", total=self.total)
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def track(self, files):
        for path in files:
            yield path
            self.progress.advance(self.task)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def track(self, files):
        return iter(files)


def bar(n_files: int, stdout_formats, disabled: bool = False):
    return Bar(n_files) if wanted(n_files, stdout_formats, disabled) else _NoBar()
