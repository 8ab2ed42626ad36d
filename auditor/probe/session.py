"""One probe invocation: quiet the libraries, run, write the reports, choose the exit code.

Exit codes are the same as `check`: 0 nothing at or above --fail-on, 1 findings, 2 usage or a
model that cannot be built.

Imports inside functions (`core.catalogue`, `probe.build`, `probe.codes`, `probe.errors`,
`probe.html`, `probe.report_table`, ...) are deferred for start-up time: a run that never takes
that path never pays for them.
"""

from __future__ import annotations

import json
import os
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
    light: bool = False   # fewer repeated forwards, no timing: for coverage sweeps, not verdicts
    nproc: int = 0        # > 0: the distributed probe under torchrun (probe/distributed.py)


def probe_rules() -> list:
    try:
        from auditor.core import catalogue

        return [r for r in catalogue.load() if r.check == "probe"]
    except Exception:  # noqa: BLE001  SARIF can do without rule metadata; the probe must not fail on it
        return []


class CannotProbe(Exception):
    """The model could not be built or run: reported as one DRP811 finding, exit 2."""

    def __init__(self, model_type: str, reason: str, path: str, span=None) -> None:
        super().__init__(f"cannot probe {model_type}: {reason}")
        self.model_type, self.reason, self.path, self.span = model_type, reason, path, span

    def finding(self):
        from auditor.probe.codes import probe_finding

        return probe_finding("DRP811", self.path, str(self), self.span, key="model_type")


def one_line(exc: BaseException, limit: int = 240) -> str:
    """An exception as one short line: Transformers' messages can run to 10,000 characters
    (every known model type) and span many lines, which no report should carry."""
    from auditor.probe.errors import BuildError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, BuildError):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def execute(req: ProbeRequest):
    """Run the probe and return its ProbeResult (also the entry point for tests and benches).
    Any failure to build or run a config's model is raised as CannotProbe, never a traceback:
    Transformers raises every kind of exception from deep inside a forward pass."""
    from auditor.probe.targets import resolve_target

    target = resolve_target(req.path, req.adapter) if req.path else None
    try:
        return _execute(req, target)
    except Exception as exc:  # noqa: BLE001  the probe's boundary: see the docstring
        if target is None:  # the user's own factory: name it, with its error in one line
            raise CannotProbe(f"factory {req.factory}", one_line(exc), req.factory.rpartition(":")[0]) from None
        from auditor.probe.build import full_size_refusal, refusal

        model_type = str(target.config.get("model_type"))
        reason = refusal(model_type, exc) or full_size_refusal(
            exc, target.config, req.trust_remote_code, os.path.dirname(os.path.abspath(target.config_path))) \
            or one_line(exc)
        raise CannotProbe(model_type, reason, target.config_path, target.model_type_span) from None


def _execute(req: ProbeRequest, target):
    import torch

    from auditor.probe.runner import Options, pick_device, prepare, run_probe

    opts = Options(steps=req.steps, seed=req.seed, device=req.device, full_size=req.full_size,
                   trust_remote_code=req.trust_remote_code)
    if opts.full_size:
        opts.magnitude_forwards = 32
    if req.light:
        opts.magnitude_forwards, opts.key_forwards, opts.overhead = 8, 4, False
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
    from auditor.probe.errors import BuildError
    from auditor.probe.targets import TargetError
    from auditor.run.engine import exit_code

    try:
        result = execute(req)
    except CannotProbe as exc:
        finding = exc.finding()
        write_findings(req, [finding])
        return write_files(req, None, [finding], refusal=exc) or 2
    except (TargetError, BuildError, RuntimeError, OSError) as exc:
        click.echo(f"dropout-audit probe: error: {exc}", err=True)
        return 2
    write_findings(req, result.findings, result)
    return write_files(req, result, result.findings) or exit_code(result.findings, req.fail_on, req.exit_zero)


def write_files(req: ProbeRequest, result, findings: list, refusal: CannotProbe | None = None) -> int:
    """--html and --measurements, also for a model the probe refused (then they hold the
    refusal, so a CI job that collects them never finds them missing or stale). 2 when one
    cannot be written (said in one line), else 0."""
    try:
        _write_files(req, result, findings, refusal)
    except OSError as exc:
        click.echo(f"dropout-audit probe: error: cannot write the report file: {exc}", err=True)
        return 2
    return 0


def _write_files(req: ProbeRequest, result, findings: list, refusal: CannotProbe | None) -> None:
    if not (req.html_file or req.measurements):
        return
    if result is not None:
        data = result.to_dict()
    else:
        data = {"meta": {"refused": True, "model_type": refusal.model_type, "reason": refusal.reason,
                         "config": refusal.path, "steps": req.steps, "seed": req.seed},
                "sites": [], "parts": [], "findings": [f.to_dict() for f in findings]}
    if req.html_file:
        from auditor.probe.html import render, render_refusal

        title = f"dropout-audit probe: {req.path or req.factory}"
        page = render(result, title) if result is not None else render_refusal(findings, title, data)
        with open(req.html_file, "w", encoding="utf-8") as fh:
            fh.write(page)
    if req.measurements:
        with open(req.measurements, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, default=str)


def write_findings(req: ProbeRequest, findings: list, result=None) -> None:
    """The findings through the shared reporters (and the site table when something ran)."""
    from auditor.report import write_report

    stream = open(req.output_file, "w", encoding="utf-8") if req.output_file else sys.stdout  # noqa: SIM115
    try:
        if req.fmt == "full" and result is not None:
            from auditor.probe.report_table import write_table

            write_table(result, stream, color=False if req.output_file else None)
        write_report(findings, req.fmt, stream, root=".", files_checked=1, rules=probe_rules(),
                     color=False if req.output_file else None)
    finally:
        if req.output_file:
            stream.close()
