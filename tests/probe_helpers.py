"""Shared, fast settings for the probe tests: tiny runs, one thread, no overhead timing."""

import json
import warnings

import torch

torch.set_num_threads(1)
try:
    import transformers

    transformers.logging.set_verbosity_error()
except ImportError:
    pass

import os

from auditor.probe.runner import Options, prepare, run_probe
from auditor.probe.targets import resolve_target

FAULTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe_faults.py")


def fast_options(seed: int = 0, steps: int = 8, **kw) -> Options:
    base = {"seed": seed, "steps": steps, "overhead": False, "magnitude_forwards": 32, "key_forwards": 16}
    base.update(kw)
    return Options(**base)


def probe_config(path, adapter=None, **kw):
    opts = fast_options(**kw)
    target = resolve_target(str(path), str(adapter) if adapter else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        subject, build, _ = prepare(target, None, opts)
        return run_probe(subject, build, target, opts, target.config_path)


def probe_factory(name, **kw):
    opts = fast_options(**kw)
    subject, build, _ = prepare(None, f"{FAULTS_FILE}:{name}", opts)
    return run_probe(subject, build, None, opts, FAULTS_FILE)


def write_config(tmp_path, name, data):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def codes(result) -> set:
    return {f.code for f in result.findings}
