"""Issue 27.8: the tests that need ../shared say why when it is absent, and what the project
needs to run its tests is in the repository (the SARIF schema is vendored)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO, SCHEMAS


def test_the_sarif_schema_is_vendored_with_its_notice():
    assert os.path.isfile(os.path.join(SCHEMAS, "sarif-schema-2.1.0.json"))
    assert SCHEMAS.startswith(os.path.join(REPO, "tests"))
    with open(os.path.join(SCHEMAS, "README.md"), encoding="utf-8") as fh:
        notice = fh.read()
    assert "OASIS" in notice and "Copyright" in notice


def test_without_the_shared_folder_the_corpus_tests_skip_saying_why(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO, "DROPOUT_AUDIT_SHARED": str(tmp_path / "nowhere")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "tests/test_core_corpus.py"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert "skipped" in proc.stdout and "needs the shared corpus of real configs" in proc.stdout
    assert "DROPOUT_AUDIT_SHARED" in proc.stdout
