"""The command line: `launch` (the console entry point, click-free for a plain `check`),
`commands` (the click group), `checkrun` (`check` from options to an exit code), `plan_report`,
`rule_docs`, `progress` and `guard` (the exit statuses a hook can trust).

Empty on purpose: importing `auditor.cli.launch` must not import click.
"""
