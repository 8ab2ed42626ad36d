"""The module survey (issue #32): hand-written dropout measured module by module, and model-level
differences located at the module that fired.

The planted faults themselves (missing scaling, double scaling, wrong rate) and the clean
hand-written modules run over 20 seeds in tests/test_probe_faults.py; here: where findings point,
what a unit is, what is never taken for dropout.
"""

import inspect

import pytest

torch = pytest.importorskip("torch")

from auditor.probe.survey import mask_units, stored_rates
from tests import probe_faults
from tests.probe_helpers import codes, probe_factory


def class_line(cls) -> int:
    return inspect.getsourcelines(cls)[1]


@pytest.mark.parametrize("factory,cls,code", [
    ("fault_hand_unscaled", probe_faults.HandDropoutUnscaled, "DRP802"),
    ("fault_hand_double_scaled", probe_faults.HandDropoutDoubleScaled, "DRP803"),
    ("fault_hand_wrong_rate", probe_faults.HandDropoutWrongRate, "DRP801"),
])
def test_hand_written_faults_point_at_the_class_that_draws_the_mask(factory, cls, code):
    res = probe_factory(factory)
    [found] = [f for f in res.findings if f.code == code]
    assert found.path.endswith("probe_faults.py") and found.span.line == class_line(cls)
    assert cls.__name__ in found.message and found.key == "drop"
    assert codes(res) == {code}  # one finding: the model-level magnitude does not repeat it
    [row] = [r for r in res.rows if r.kind.startswith("hand-written")]
    assert row.train_verdict != "ok" and row.unit == "element" and row.source.endswith(f":{class_line(cls)}")


def test_double_scaling_names_both_scales_and_the_wrong_rate_its_test():
    double = next(f for f in probe_factory("fault_hand_double_scaled").findings if f.code == "DRP803")
    assert "multiplies its input by 0.9" in double.message and "1.11111" in double.message
    rate = next(f for f in probe_factory("fault_hand_wrong_rate").findings if f.code == "DRP801")
    assert "stored p=0.1" in rate.message and "binomial test" in rate.message


def test_correct_hand_written_dropout_is_measured_not_skipped():
    """Clean over 20 seeds is tested with the faults; here: it was judged, at its rate."""
    res = probe_factory("clean_hand_written")
    [row] = [r for r in res.rows if r.kind == "hand-written (HandDropout)"]
    assert row.train_verdict == "ok" and abs(row.rate - probe_faults.P) < 0.03
    assert abs(row.scale - 1 / (1 - probe_faults.P)) < 1e-5 and abs(row.mean_ratio - 1) < 0.05
    assert res.survey["ran"] and res.survey["module_calls"] >= 4


def test_a_per_sample_drop_path_is_counted_in_samples():
    res = probe_factory("clean_hand_drop_path")
    [row] = [r for r in res.rows if r.kind == "hand-written (HandDropPath)"]
    assert row.unit == "sample" and row.n == 64 * 4 and row.train_verdict == "ok"
    x = torch.ones(4, 3, 5)
    drop = torch.zeros(4, 3, 5, dtype=torch.bool)
    drop[1] = True
    assert mask_units(drop, ~drop) == (4, 1, "sample")
    drop = torch.rand(4, 3, 50) < 0.3
    assert mask_units(drop, ~drop)[2] == "element"
    feature = (torch.rand(4, 6, 1) < 0.5).expand(4, 6, 9)  # a whole channel at once
    assert mask_units(feature, ~feature)[:1] == (24,) and "dims 2" in mask_units(feature, ~feature)[2]
    del x


def test_modules_that_differ_between_modes_without_a_mask_are_not_dropout():
    """A hand-written batch norm with ReLU (new zeros at eval vs train, no common kept ratio) is
    never judged; a jitter module storing a rate-named number is judged by its mean ratio only,
    which noise with mean 1 keeps at 1."""
    res = probe_factory("clean_train_specific")
    assert not res.findings
    kinds = {r.kind for r in res.rows}
    assert "stores a rate (Jitter)" in kinds and not any("HandBatchNorm" in k for k in kinds)


def test_stored_rates_are_plain_numbers_under_a_rate_name_never_layer_drop():
    m = torch.nn.Module()
    m.p, m.attention_dropout, m.layerdrop, m.drop_prob, m.dropout_rate = 0.1, 0.2, 0.3, 0.4, 0
    m.hidden_size, m.resid_pdrop, m.momentum = 64, 0.05, 0.1
    assert stored_rates(m) == {"p": 0.1, "attention_dropout": 0.2, "drop_prob": 0.4, "resid_pdrop": 0.05}


def test_model_level_differences_point_at_the_module_that_fired():
    """DRP803/808/809 pointed at line 1:1 and named no module."""
    rescale = next(f for f in probe_factory("fault_eval_rescale").findings if f.code == "DRP803")
    assert rescale.span.line == class_line(probe_faults._MLP) and "_MLP" in rescale.message
    found = {f.code: f for f in probe_factory("fault_sdpa_ungated").findings}
    assert found["DRP808"].span.line == class_line(probe_faults._Attention)
    # a kernel site in user code points at the call itself (#27), inside the class that fired
    assert found["DRP800"].span.line > class_line(probe_faults._Attention)
    assert "scaled_dot_product_attention" in open(probe_faults.__file__).read().splitlines()[found["DRP800"].span.line - 1]
    assert found["DRP808"].message.startswith("Fired in attn (_Attention")
    assert "DRP809" not in found  # a random eval output cannot be compared with identity: DRP808 says it
    zeroed = {f.code: f for f in probe_factory("fault_eval_zeroed").findings}
    assert zeroed["DRP809"].span.line == class_line(probe_faults._EvalZeroed)
    assert zeroed["DRP809"].message.startswith("Fired in 0 (_EvalZeroed") and "DRP808" not in zeroed


class _NumpyNoise(torch.nn.Module):
    """Draws from numpy in training, as SpeechT5's SpecAugment does; reads no key."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        import numpy as np

        if self.training:
            x = x * torch.from_numpy(np.random.rand(*x.shape).astype("float32"))
        return self.fc(x)


def test_a_key_the_model_never_reads_is_a_no_op_even_when_it_draws_from_numpy():
    """SpeechT5's SpecAugment draws from numpy, which the key map did not seed: every key came out
    "live", the decoder keys of a class without a decoder included."""
    pytest.importorskip("numpy")
    from auditor.core.model import Span
    from auditor.probe import rng
    from auditor.probe.keymap import measure_keys
    from auditor.probe.targets import ConfigKey

    def build(overrides):
        rng.seed_all(0)
        return _NumpyNoise()

    key = ConfigKey("config.json", ("speech_decoder_prenet_dropout",), 0.5, Span.file_start())
    x = torch.ones(2, 4)
    _, [effect] = measure_keys([(key, "config")], build, lambda m: m(x), seed=0, max_forwards=4)
    assert effect.verdict == "no-op"
    model = _NumpyNoise().train()
    before = rng.state()
    model(x)
    assert rng.drawn(before, rng.state()) == ["numpy"]


def test_a_key_belongs_to_the_innermost_part_whose_sub_config_holds_it():
    from auditor.probe.parts import Part, measure, part_of_key

    main = Part("main", ())
    thinker = Part("thinker", ("thinker_config",), "thinker", ids={1, 2})
    audio = Part("audio", ("thinker_config", "audio_config"), "thinker.audio", ids={3})
    parts = [main, thinker, audio]
    assert part_of_key(parts, ("dropout",)) is main
    assert part_of_key(parts, ("thinker_config", "dropout")) is thinker
    assert part_of_key(parts, ("thinker_config", "audio_config", "dropout")) is audio
    assert part_of_key(parts, ("thinker_config",)) is main  # the sub-config itself is no key of it
    measure(parts, {1: 2, 2: 1}, [(2, 5), (3, 0)], {"audio": "no audio token"})
    assert thinker.ran and thinker.calls == 3 and thinker.fired == 5 and not audio.ran
    assert "left the audio out: no audio token" in audio.describe() and "did not run" in audio.describe()


def test_a_no_op_sub_config_key_at_its_class_default_is_listed_not_reported():
    """A saved default holds every sub-config key; Wav2Vec2's `final_dropout` (read only by its CTC
    head) inside a speech encoder-decoder is a stock value nobody chose, as top-level ones were."""
    from auditor.core.model import Span
    from auditor.probe.checks import Context, key_checks
    from auditor.probe.keymap import KeyEffect
    from auditor.probe.runner import _flat
    from auditor.probe.targets import ConfigKey

    defaults = {("c.json", p): v for p, v in _flat({"dropout": 0.1, "encoder": {"final_dropout": 0.1}})}
    assert defaults[("c.json", ("encoder", "final_dropout"))] == 0.1
    stock = KeyEffect(ConfigKey("c.json", ("encoder", "final_dropout"), 0.1, Span.file_start()), "config", "no-op")
    chosen = KeyEffect(ConfigKey("c.json", ("encoder", "final_dropout"), 0.2, Span.file_start()), "config", "no-op")
    assert key_checks([stock], {}, Context("c.json"), defaults) == []
    assert "architecture's default" in stock.note
    assert [f.code for f in key_checks([chosen], {}, Context("c.json"), defaults)] == ["DRP804"]
