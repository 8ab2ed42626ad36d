"""Issue 27.9: the bench measures what its rows say: the fresh-install mode never runs
bytecode, and peak memory is the command's own, not the harness's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, os.path.join(REPO, "bench"))
run = pytest.importorskip("run")


@pytest.mark.skipif(run.GNU_TIME is None, reason="GNU time (/usr/bin/time) is not installed")
def test_peak_memory_is_net_of_the_harness():
    # the harness holds far more than `true` needs: a forked child used to report the harness's peak
    ballast = b"\x01" * (64 * 2**20)  # resident: a plain fork would report at least this
    assert run.measure(["true"], REPO, ok=(0,)).rss < 8
    assert run.measure([sys.executable, "-c", "pass"], REPO, ok=(0,)).rss < 40
    del ballast


def test_fresh_install_is_bytecode_free_and_stays_so(tmp_path):
    site = run.install(str(tmp_path / "fresh"), compile_bytecode=False)
    assert os.path.isdir(os.path.join(site, "auditor")) and run._bytecode(site) == []
    (tmp_path / "one.yaml").write_text("base_model: m\nadapter: lora\nlora_dropout: 0.5\n")
    env = run.tool_env(site, no_bytecode=True)
    proc = subprocess.run([sys.executable, "-m", "auditor", "check", "--no-cache", "one.yaml"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "DRP201" in proc.stdout
    assert run._bytecode(site) == []
