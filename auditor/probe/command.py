"""`dropout-audit probe`: the click command. torch, transformers and peft are imported inside the
command function only, so `dropout-audit --help` and the static path never pay for them.

Imports inside functions (`probe.session`, `probe.distributed`, `torch`, `transformers`) are deferred for start-up
time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import sys

import click

FORMATS = ["full", "concise", "json", "sarif", "github", "gitlab", "junit"]
MISSING = "dropout-audit probe needs torch and transformers (and peft for adapters): pip install 'dropout-auditor[probe]'"


@click.command(name="probe")
@click.argument("path", required=False, type=click.Path())
@click.option("--adapter", type=click.Path(dir_okay=False), help="A PEFT adapter_config.json to add to the model.")
@click.option("--factory", metavar="FILE.py:FUNCTION",
              help="Build the model with your own code instead of PATH. This IMPORTS AND RUNS FILE.py: the one "
                   "place the tool executes user code, only when asked. FUNCTION takes no arguments and returns "
                   "a model or (model, example_inputs).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--steps", type=click.IntRange(1, 10000), default=20, show_default=True,
              help="AdamW steps of the short fine-tune.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--full-size", is_flag=True,
              help="Build the config at full size with random bf16 weights (for a GPU); default: scaled down "
                   "to 2 layers and a small width with the same dropout keys and attention implementation.")
@click.option("--trust-remote-code", is_flag=True,
              help="Let Transformers run the model code shipped with the config (off by default).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="full", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--output-file", "-o", type=click.Path(dir_okay=False), help="Write the report to this file.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False),
              help="Also write a self-contained HTML report (per-site chart, tables, measurements).")
@click.option("--measurements", type=click.Path(dir_okay=False),
              help="Also write every measurement (sites, tests, loss, timings) as JSON.")
@click.option("--nproc", type=click.IntRange(1, 64), default=None,
              help="Run the fine-tune on N data-parallel ranks under torchrun (gloo on the CPU, NCCL on CUDA) and "
                   "check that ranks draw different dropout masks, seeded as the --factory or the recipe's "
                   "framework seeds them; site counts are merged over ranks.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default="warning", show_default=True)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
def probe(path, adapter, factory, device, steps, seed, full_size, trust_remote_code, fmt, as_json, output_file,
          html_file, measurements, nproc, fail_on, exit_zero):
    """Build the model from PATH (config.json, a model directory or a recipe naming one; weights are
    never downloaded) or from --factory, run a short instrumented fine-tune, and check every dropout
    site: rate and scaling in train, off in eval, nothing rescaled at inference, keys that do nothing."""
    if bool(path) == bool(factory):
        raise click.UsageError("give either PATH or --factory FILE.py:FUNCTION")
    if as_json:
        fmt = "json"
    try:
        import torch  # noqa: F401
        if path:
            import transformers  # noqa: F401
    except ImportError:
        click.echo(MISSING, err=True)
        sys.exit(2)
    from auditor.probe.session import ProbeRequest, run

    req = ProbeRequest(path=path, adapter=adapter, factory=factory, device=device, steps=steps, seed=seed,
                       full_size=full_size, trust_remote_code=trust_remote_code, fmt=fmt,
                       output_file=output_file, html_file=html_file, measurements=measurements,
                       fail_on=fail_on, exit_zero=exit_zero, nproc=nproc or 0)
    if nproc:
        if html_file:
            raise click.UsageError("--html is not available with --nproc (use --measurements)")
        from auditor.probe.distributed import launch

        sys.exit(launch(req))
    sys.exit(run(req))
