"""Ranks of a data-parallel run on the CPU (gloo, 2 processes): identical dropout masks are
flagged, rank-offset seeds pass, and counts are merged across ranks; both for the run-time guard
(torch.multiprocessing) and for `probe --nproc 2` (torchrun)."""

import json
import os
import socket
import time

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")

from auditor.probe.session import ProbeRequest
from tests.runtime_helpers import ddp_guard_worker

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runtime_helpers.py")
LIMIT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_guard_under_ddp_flags_same_seed_ranks_and_merges_counts(tmp_path):
    import torch.multiprocessing as mp

    out = tmp_path / "ranks.json"
    ctx = mp.start_processes(ddp_guard_worker, args=(2, _free_port(), str(out)), nprocs=2, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + LIMIT_S
    while not ctx.join(timeout=2):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"the 2 ranks did not finish in {LIMIT_S} s")
    result = json.loads(out.read_text())
    same, offset = result["same"], result["offset"]
    assert same["codes"] == ["DRP812"] and same["ranks"]["identical_groups"] == [[0, 1]]
    assert offset["codes"] == [] and offset["ranks"]["identical_groups"] == []
    assert offset["ranks"]["backend"] == "gloo" and len(set(offset["ranks"]["digests"])) == 2
    # counts of both ranks merged: 2 sampled steps per rank, one call of each site per step
    drop = next(s for s in offset["sites"] if s["kind"] == "Dropout")
    assert offset["sampled"] == 2 and drop["train_calls"] == 4


def _nproc(tmp_path, factory: str) -> tuple:
    from auditor.probe.distributed import launch

    report = tmp_path / f"{factory}.json"
    measurements = tmp_path / f"{factory}.measurements.json"
    req = ProbeRequest(factory=f"{HELPERS}:{factory}", steps=8, fmt="json", output_file=str(report),
                       measurements=str(measurements), nproc=2)
    code = launch(req, timeout_s=LIMIT_S)
    return code, json.loads(report.read_text()), json.loads(measurements.read_text())


def test_probe_nproc_2_flags_ranks_seeded_alike(tmp_path):
    code, report, measured = _nproc(tmp_path, "seeded_same_on_every_rank")
    assert code == 1
    [finding] = report["findings"]
    assert finding["code"] == "DRP812" and finding["severity"] == "warning"
    assert os.path.abspath(finding["path"]) == HELPERS and finding["line"] > 1   # the factory's def line
    assert measured["ranks"]["identical_groups"] == [[0, 1]] and measured["ranks"]["backend"] == "gloo"
    # both ranks' counts are in the table: 8 steps x 2 ranks through the Dropout module
    drop = next(s for s in measured["sites"] if s["kind"] == "Dropout")
    assert drop["calls_train"] == 16 and drop["train_verdict"] == "ok"


def test_probe_nproc_2_passes_ranks_seeded_with_their_rank(tmp_path):
    code, report, measured = _nproc(tmp_path, "seeded_with_the_rank")
    assert code == 0 and report["findings"] == []
    assert measured["ranks"]["identical_groups"] == [] and len(set(measured["ranks"]["digests"])) == 2
