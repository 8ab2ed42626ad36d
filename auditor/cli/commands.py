"""The `dropout-audit` command line.

Exit codes (ruff's convention): 0 nothing at or above --fail-on, 1 findings, 2 usage,
configuration or internal error. Subcommands that need heavy libraries (probe) are imported
only when invoked, so `check` in a pre-commit hook starts fast.

Imports inside functions (`cli.checkrun`, `cli.guard`, `cli.plan_report`, `cli.rule_docs`,
`run.config`, `run.config_file`, `server.lsp`, ...) are deferred for start-up time: a run that never takes
that path never pays for them.
"""

from __future__ import annotations

import sys

import click

from auditor import __version__

FORMAT_CHOICES = ["full", "concise", "json", "sarif", "github", "gitlab", "junit"]
SEVERITY_CHOICES = ["error", "warning", "info"]


class _LazyGroup(click.Group):
    """Registers `probe` without importing it: the probe imports torch and friends."""

    lazy = {"probe": ("auditor.probe.command", "probe", "Run a short fine-tune that measures dropout at run time.")}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy:
            module, attr, _ = self.lazy[name]
            try:
                mod = __import__(module, fromlist=[attr])
            except ImportError as exc:
                return _unavailable(name, exc)
            return getattr(mod, attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        rows = [(name, (self.commands[name].get_short_help_str(60) if name in self.commands else self.lazy[name][2]))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name, exc):
    @click.command(name=name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def stub():
        click.echo(f"dropout-audit {name} is not available: {exc}", err=True)
        sys.exit(2)
    return stub


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dropout-audit")
def cli():
    """Audit dropout in ML training setups: configs, adapters, recipes and training scripts."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "formats", multiple=True, metavar="FMT[:FILE]",
              help=f"Output format ({'|'.join(FORMAT_CHOICES)}; default full). Repeat with FMT:FILE to write "
                   "several formats in one run.")
@click.option("--output-file", "-o", type=click.Path(dir_okay=False), help="Write the report to this file.")
@click.option("--select", multiple=True, help="Rule codes, code prefixes or categories to enable (comma-separated).")
@click.option("--extend-select", multiple=True, help="Add to the selected rules (from the config or --select).")
@click.option("--ignore", multiple=True, help="Rule codes, code prefixes or categories to disable (comma-separated).")
@click.option("--fail-on", type=click.Choice(SEVERITY_CHOICES), default=None,
              help="Lowest severity that makes the exit code 1.  [default: warning]")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--statistics", is_flag=True, help="Show the number of findings per rule (JSON: a `statistics` list).")
@click.option("--rules", "rules_dirs", multiple=True, type=click.Path(), help="Extra directory of rule YAML files.")
@click.option("--max-file-size", type=int, default=None, help="Skip (and report) files larger than this many bytes.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Configuration file (default: nearest .dropout-audit.toml or pyproject.toml).")
@click.option("--fix", is_flag=True, help="Apply safe fixes in place.")
@click.option("--diff", is_flag=True, help="Show the fixes as a unified diff; write nothing.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply fixes that may change intent.")
@click.option("--baseline", type=click.Path(dir_okay=False), help="Hide the findings recorded in this baseline.")
@click.option("--write-baseline", type=click.Path(dir_okay=False), help="Record the current findings as a baseline.")
@click.option("--root", type=click.Path(file_okay=False), help="Directory report paths are relative to (default: .).")
@click.option("--no-progress", is_flag=True, help="Never show a progress bar.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes  [default: the number of CPUs].")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the findings cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="Where findings are cached, keyed by file content, rules and options  "
                   "[default: .dropout_audit_cache at the project root].")
@click.option("--exclude", multiple=True, metavar="PATTERN",
              help="Paths to leave out, gitignore-style, comma-separated; replaces the default exclusions "
                   "(virtualenvs, caches, build folders) and the configuration's `exclude`.")
@click.option("--extend-exclude", multiple=True, metavar="PATTERN",
              help="Paths to leave out in addition to the default and configured exclusions.")
@click.option("--force-exclude", is_flag=True,
              help="Apply the exclusions to paths named on the command line too (for pre-commit).")
@click.option("--quiet", "-q", is_flag=True, help="Print the findings and nothing else (no summary line).")
@click.option("--verbose", "-v", is_flag=True,
              help="Say on stderr which configuration, files, cache and jobs the run uses, and how long it took.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Colour in the full format; auto: on a terminal unless NO_COLOR is set.")
@click.option("--stdin-filename", metavar="PATH",
              help="With `-` as the path: check standard input as the file PATH (editors).")
@click.option("--show-files", is_flag=True, help="List the files that would be checked, and exit.")
@click.option("--show-settings", is_flag=True, help="Show the settings this run would use, and exit.")
def check(paths, formats, output_file, select, extend_select, ignore, fail_on, exit_zero, statistics, rules_dirs,
          max_file_size, config_path, fix, diff, unsafe_fixes, baseline, write_baseline, root, no_progress, jobs,
          no_cache, cache_dir, exclude, extend_exclude, force_exclude, quiet, verbose, color, stdin_filename,
          show_files, show_settings):
    """Lint dropout settings in PATHS (files or directories; default: the current directory)."""
    from auditor.cli.checkrun import ConfigProblem, Request, UsageProblem, run

    try:
        code = run(Request(paths=paths, formats=formats, output_file=output_file, select=select,
                         extend_select=extend_select, ignore=ignore, fail_on=fail_on, exit_zero=exit_zero,
                         statistics=statistics, rules_dirs=rules_dirs, max_file_size=max_file_size,
                         config=config_path, fix=fix, diff=diff, unsafe_fixes=unsafe_fixes, baseline=baseline,
                         write_baseline=write_baseline, root=root, no_progress=no_progress,
                         jobs=jobs, no_cache=no_cache, cache_dir=cache_dir, exclude=exclude,
                         extend_exclude=extend_exclude, force_exclude=force_exclude, quiet=quiet,
                         verbose=verbose, color=color, stdin_filename=stdin_filename, show_files=show_files,
                         show_settings=show_settings))
    except UsageProblem as exc:
        raise click.UsageError(str(exc)) from None
    except ConfigProblem as exc:
        raise _ExitTwo(str(exc)) from None
    sys.exit(code)


class _ExitTwo(click.ClickException):
    """A configuration, baseline or output problem: exit code 2, like a usage error."""

    exit_code = 2


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def plan(paths, fmt):
    """Print the resolved dropout plan of each training setup found in PATHS."""
    from auditor.cli import plan_report
    from auditor.run.discover import discover
    from auditor.run.engine import Engine, Options
    from auditor.setup.link import link_root

    engine = Engine(Options(models=_user_models(paths), root=link_root(None, list(paths) or ["."])))
    found = discover(list(paths) or ["."], engine.suffixes)
    for missing in found.missing:
        raise click.UsageError(f"path does not exist: {missing}")
    plan_report.write(engine, found.files, fmt, sys.stdout)


def _user_models(paths) -> dict:
    """The `models` mapping of the configuration that applies to PATHS (plan reads no other key)."""
    from auditor.run import config_file

    try:
        found = config_file.find(paths[0] if paths else ".")
        if found is None or not found[1].get("models"):
            return {}
        from auditor.run import config

        return config.load(*found).models()
    except Exception as exc:  # ConfigFileError, ConfigError: exit 2 with the located message
        if type(exc).__name__ in ("ConfigFileError", "ConfigError"):
            raise click.UsageError(str(exc)) from None
        raise


@cli.command()
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="Show every rule.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def rule(code, show_all, fmt):
    """Show a rule's rationale and examples, or list every rule.

    Example: `dropout-audit rule DRP200`.
    """
    from auditor.cli import rule_docs

    sys.exit(rule_docs.show(code, show_all, fmt, sys.stdout))


@cli.command()
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout (the only transport; accepted for clients that pass it).")
def server(stdio):
    """Run the language server (LSP over stdio) for editors; needs the [server] extra."""
    try:
        from auditor.server import lsp
    except ImportError as exc:
        click.echo(f"dropout-audit server needs the [server] extra: pip install 'dropout-auditor[server]' ({exc})",
                   err=True)
        sys.exit(2)
    lsp.serve()


def main(argv=None, standalone_mode: bool = True):
    """The click command line; the exit statuses are guard.guarded's."""
    if not standalone_mode:
        return cli.main(args=argv, prog_name="dropout-audit", standalone_mode=False)
    from auditor.cli.guard import guarded

    return guarded(lambda: cli.main(args=argv, prog_name="dropout-audit", standalone_mode=False))
