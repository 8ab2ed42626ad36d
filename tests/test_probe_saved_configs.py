"""Configs as Transformers saves them are read as Transformers reads them (issue #32).

Transformers 5.24 writes infinity and NaN as `{"__float__": "Infinity"}` (configuration_utils.py,
`_encode_special_floats`) and decodes them in `from_json_file`; the probe read config.json with
plain `json.loads`, so mamba2, bamba, falcon_h1, granitemoehybrid and nemotron_h were refused on
configs Transformers itself loads. Every type's default is saved and read back here (reading only,
about 15 s); a small sample is probed end to end.
"""

import json
import math
import os
import warnings

import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tests.probe_helpers  # noqa: F401  (one thread, quiet)
from auditor.probe.targets import decode_special_floats, resolve_target

SKIP = {"_name_or_path"}  # the directory it was loaded from; the probe never uses it


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        keys = set(a) - SKIP
        return keys == set(b) - SKIP and all(same(a[k], b[k]) for k in keys)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_special_floats_are_decoded_as_transformers_decodes_them():
    data = {"limit": [0.0, {"__float__": "Infinity"}], "low": {"__float__": "-Infinity"},
            "nan": {"__float__": "NaN"}, "unknown": {"__float__": "Huge"}, "two": {"__float__": "NaN", "x": 1},
            "nested": {"deeper": [{"__float__": "Infinity"}]}}
    out = decode_special_floats(data)
    assert out["limit"] == [0.0, math.inf] and out["low"] == -math.inf and math.isnan(out["nan"])
    assert out["unknown"] == {"__float__": "Huge"} and out["two"] == {"__float__": "NaN", "x": 1}
    assert out["nested"]["deeper"] == [math.inf]
    from transformers import PretrainedConfig

    reference = PretrainedConfig._decode_special_floats(json.loads(json.dumps(data)))
    assert same(out, reference)


def test_every_saved_default_config_is_read_as_transformers_reads_it(tmp_path):
    """For every config type: save_pretrained of its default, then the probe's target and config
    object equal what `AutoConfig.from_pretrained` gives (a default that Transformers cannot
    build or load itself is left out, and counted)."""
    from transformers import CONFIG_MAPPING, AutoConfig, PretrainedConfig

    from auditor.probe.build import config_object

    read, unloadable, wrong = 0, [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model_type, cls in sorted(CONFIG_MAPPING.items()):
            where = tmp_path / model_type
            try:
                cls().save_pretrained(where)
                reference = AutoConfig.from_pretrained(where)
            except Exception:  # noqa: BLE001  Transformers cannot load its own default: nothing to compare
                unloadable.append(model_type)
                continue
            target = resolve_target(str(where))
            if not same(target.config, PretrainedConfig._dict_from_json_file(where / "config.json")):
                wrong.append((model_type, "dict"))
                continue
            obj, _ = config_object(target.config, False, str(where))
            if not same(obj.to_dict(), reference.to_dict()):
                wrong.append((model_type, "config object"))
            read += 1
    assert not wrong, wrong
    assert read > 800 and len(unloadable) < 5, unloadable


@pytest.mark.parametrize("model_type", ["mamba2", "nemotron_h"])
def test_a_saved_config_with_an_infinite_limit_is_probed(tmp_path, model_type):
    """Their `time_step_limit` holds infinity: refused before ("Field 'time_step_limit' with value
    [0.0, {'__float__': 'Infinity'}] doesn't match any type")."""
    from transformers import CONFIG_MAPPING

    from auditor.probe.session import ProbeRequest, execute

    CONFIG_MAPPING[model_type]().save_pretrained(tmp_path)
    assert '"__float__"' in (tmp_path / "config.json").read_text()
    result = execute(ProbeRequest(path=os.fspath(tmp_path / "config.json"), steps=1, device="cpu", light=True))
    assert "DRP811" not in {f.code for f in result.findings}
    assert result.losses or result.meta["model"]
