"""One probe invocation: quiet the libraries, run, write the reports, choose the exit code.

Exit codes are the same as `check`: 0 nothing at or above --fail-on, 1 findings, 2 usage or a
model that cannot be built.
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass

import click


@dataclass
class ProbeRequest:
    path: str | None = None
    adapter: str | None = None
    factory: str | None = None
    device: str = "auto"
    steps: int = 20
    seed: int = 0
    full_size: bool = False
    trust_remote_code: bool = False
    fmt: str = "full"
    output_file: str | None = None
    html_file: str | None = None
    measurements: str | None = None
    fail_on: str = "warning"
    exit_zero: bool = False


def probe_rules() -> list:
    try:
        from auditor import catalogue

        return [r for r in catalogue.load() if r.check == "probe"]
    except Exception:  # noqa: BLE001  SARIF can do without rule metadata; the probe must not fail on it
        return []


def execute(req: ProbeRequest):
    """Run the probe and return its ProbeResult (also the entry point for tests and benches)."""
    import torch

    from auditor.probe.runner import Options, pick_device, prepare, run_probe
    from auditor.probe.targets import resolve_target

    opts = Options(steps=req.steps, seed=req.seed, device=req.device, full_size=req.full_size,
                   trust_remote_code=req.trust_remote_code)
    if opts.full_size:
        opts.magnitude_forwards = 32
    target = resolve_target(req.path, req.adapter) if req.path else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import transformers

            transformers.logging.set_verbosity_error()
        except ImportError:
            pass
        if pick_device(req.device).type == "cpu" and not opts.full_size:
            # Tiny models gain nothing from threads, and OpenMP workers spinning on a busy
            # 2-core box made a 15 ms step take 1.5 s in our measurements.
            torch.set_num_threads(1)
        subject, build, _ = prepare(target, req.factory, opts)
        where = target.config_path if target else req.factory.rpartition(":")[0]
        return run_probe(subject, build, target, opts, where)


def run(req: ProbeRequest) -> int:
    from auditor.engine import exit_code
    from auditor.probe.build import BuildError
    from auditor.probe.targets import TargetError
    from auditor.report import write_report

    try:
        result = execute(req)
    except (TargetError, BuildError, RuntimeError, OSError) as exc:
        click.echo(f"dropout-audit probe: error: {exc}", err=True)
        return 2
    findings = result.findings
    stream = open(req.output_file, "w", encoding="utf-8") if req.output_file else sys.stdout  # noqa: SIM115
    try:
        if req.fmt == "full":
            from auditor.probe.report_table import write_table

            write_table(result, stream, color=False if req.output_file else None)
        write_report(findings, req.fmt, stream, root=".", files_checked=1, rules=probe_rules(),
                     color=False if req.output_file else None)
    finally:
        if req.output_file:
            stream.close()
    if req.html_file:
        from auditor.probe.html import render

        title = f"dropout-audit probe: {req.path or req.factory}"
        with open(req.html_file, "w", encoding="utf-8") as fh:
            fh.write(render(result, title))
    if req.measurements:
        with open(req.measurements, "w", encoding="utf-8") as fh:
            json.dump(result.to_dict(), fh, indent=1, default=str)
    return exit_code(findings, req.fail_on, req.exit_zero)
