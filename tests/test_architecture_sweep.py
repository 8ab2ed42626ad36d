"""Every model type's own default config.json must lint clean: no error and no warning of any
category. A checkpoint saved by Transformers is, by construction, what the architecture expects,
and its defaults are what pretrained checkpoints ship with (issue #13: efficientnet's 0.5 and
mobilenet_v1's 0.999 once drew DRP200 warnings)."""

from __future__ import annotations

import json
import os

import pytest

from tests.conftest import audit

transformers = pytest.importorskip("transformers")


def _default_configs():
    from transformers import CONFIG_MAPPING

    for model_type in sorted(CONFIG_MAPPING.keys()):
        try:
            config = CONFIG_MAPPING[model_type]()
            yield model_type, config.to_dict()
        except Exception:  # a few configs need arguments; they have no default to sweep
            continue


def test_default_configs_of_every_model_type_lint_clean(tmp_path):
    written = 0
    for model_type, data in _default_configs():
        folder = tmp_path / model_type
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(data, default=str), encoding="utf-8")
        written += 1
    assert written > 700
    findings = audit([str(tmp_path)])
    bad = [f"{os.path.basename(os.path.dirname(f.path))}: {f.code} {f.message}" for f in findings
           if f.severity in ("error", "warning")]
    assert not bad, "\n".join(bad[:40])
