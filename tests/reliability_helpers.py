"""Run the real CLI in a subprocess, as a pre-commit hook would, with the network blocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NONET = os.path.join(REPO, "tests", "_nonet")


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([NONET, REPO])
    env.pop("PYTHONSTARTUP", None)
    return env


def run_check(*args, cwd=None, timeout=120):
    """(exit code, findings as dicts, stderr) of `python -m auditor check --format json ARGS`."""
    proc = subprocess.run([sys.executable, "-m", "auditor", "check", "--format", "json", *args],
                          cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout)
    findings = []
    if proc.stdout.strip():
        findings = json.loads(proc.stdout)["findings"]
    return proc.returncode, findings, proc.stderr


def codes(findings) -> set:
    return {f["code"] for f in findings}
