"""Issue #25, code rules: each false class the wild evaluation found on unseen repositories
(docs/wild-evaluation.md, bench/wild_verdicts.tsv) has a regression test written from its small
reproduction, beside a twin that must still fire, so a fix cannot be a blanket mute."""

from __future__ import annotations

import textwrap

import pytest

from tests.conftest import audit, write_files

MODULE = """\
import torch
import torch.nn as nn
import torch.nn.functional as F
"""


def _found(tmp_path, text, code, name="m.py"):
    """(line, severity, message) of the findings of one rule on one file."""
    write_files(tmp_path, [(name, MODULE + textwrap.dedent(text))])
    return [(f.span.line - 3, f.severity, f.message) for f in audit([str(tmp_path)], select=(code,))]


def _loud(found):
    return [(line, severity) for line, severity, _ in found if severity in ("warning", "error")]


# --- DRP600: gated-by-enclosing-if (sd-scripts LoRA modules, FairseqDropout) -----------------

LORA = """
class LoRAModule(nn.Module):
    def __init__(self, dim, dropout=None):
        super().__init__()
        self.down = nn.Linear(dim, 4)
        self.dropout = dropout

    def forward(self, x):
        lx = self.down(x)
        if self.dropout is not None{gate}:
            lx = torch.nn.functional.dropout(lx, p=self.dropout)
        return lx
"""


def test_f_dropout_under_an_if_that_needs_training_is_silent(tmp_path):
    assert _found(tmp_path, LORA.format(gate=" and self.training"), "DRP600") == []


def test_twin_f_dropout_under_an_if_without_training_fires(tmp_path):
    assert _loud(_found(tmp_path, LORA.format(gate=""), "DRP600")) == [(11, "warning")]


@pytest.mark.parametrize("body, line", [
    ("return F.dropout(x, self.p) if self.training else x", None),
    ("return x if not self.training else F.dropout(x, self.p)", None),
    ("if not self.training or self.p == 0:\n            return x\n        return F.dropout(x, self.p)", None),
    ("if self.training is False:\n            return x\n        return F.dropout(x, self.p)", None),
    # twins: the flag read the wrong way round, or not at all
    ("return F.dropout(x, self.p) if not self.training else x", 4),
    ("if self.training:\n            return x\n        return F.dropout(x, self.p)", 6),
    ("return F.dropout(x, self.p) if self.p > 0 else x", 4),
])
def test_training_only_forms(tmp_path, body, line):
    text = f"""
class Drop(nn.Module):
    def forward(self, x):
        {body}
"""
    assert _loud(_found(tmp_path, text, "DRP600")) == ([] if line is None else [(line, "warning")])


FAIRSEQ = """
class FairseqDropout(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p
        self.apply_during_inference = False

    def forward(self, x):
        if {test}:
            return F.dropout(x, p=self.p, training=True)
        return x
"""


def test_fairseq_dropout_with_its_inference_switch_is_silent(tmp_path):
    test = "self.p > 0 and (self.training or self.apply_during_inference)"
    assert _found(tmp_path, FAIRSEQ.format(test=test), "DRP600") == []


@pytest.mark.parametrize("test", ["self.p > 0", "self.p > 0 and (self.training or self.p > 0.5)"])
def test_twin_training_true_without_a_training_gate_fires(tmp_path, test):
    assert _loud(_found(tmp_path, FAIRSEQ.format(test=test), "DRP600")) == [(10, "warning")]


# --- DRP600: sampler-noise-dropout (latent/stable diffusion DDIM, PLMS, p_sample) ----------------

SAMPLER = """
class Base{base}:
    pass


class DDIMSampler(Base):
    def __init__(self, model):
        self.model = model

    {decorator}
    def p_sample(self, x, noise_dropout=0.0):
        noise = torch.randn_like(x)
        if noise_dropout > 0.:
            noise = torch.nn.functional.dropout(noise, p=noise_dropout)
        return x + noise
"""


@pytest.mark.parametrize("base, decorator", [("(object)", ""), ("", "@torch.no_grad()"),
                                             ("(nn.Module)", "@torch.no_grad()"),
                                             ("(nn.Module)", "@torch.inference_mode()")])
def test_sampler_without_a_mode_or_under_no_grad_is_silent(tmp_path, base, decorator):
    assert _found(tmp_path, SAMPLER.format(base=base, decorator=decorator), "DRP600") == []


@pytest.mark.parametrize("base", ["(nn.Module)", "(SomethingImported)"])
def test_twin_the_same_method_of_a_module_fires(tmp_path, base):
    assert _loud(_found(tmp_path, SAMPLER.format(base=base, decorator=""), "DRP600")) == [(14, "warning")]


# --- DRP600: intended-inference-dropout (Tacotron 2 prenet) --------------------------------------

PRENET = '''
class Taco2Prenet(nn.Module):
    """Prenet module for the Tacotron 2 decoder.

    {note}
    """

    def __init__(self, idim, n_units=256, dropout_rate=0.5):
        super().__init__()
        self.dropout_rate = dropout_rate
        self.linear = nn.Linear(idim, n_units)

    def forward(self, x):
        return F.dropout(torch.relu(self.linear(x)), self.dropout_rate)
'''


def test_documented_inference_dropout_is_info_with_the_reason(tmp_path):
    found = _found(tmp_path, PRENET.format(note="This module alway applies dropout even in evaluation."), "DRP600")
    assert [(line, severity) for line, severity, _ in found] == [(14, "info")]
    assert "docstring of Taco2Prenet" in found[0][2]


def test_twin_undocumented_prenet_dropout_is_a_warning(tmp_path):
    found = _found(tmp_path, PRENET.format(note="Two linear layers with dropout."), "DRP600")
    assert _loud(found) == [(14, "warning")]


def test_a_prenet_that_spells_training_true_is_info(tmp_path):
    """SpeechBrain's Tacotron 2 Prenet (ported from NVIDIA's) writes
    `F.dropout(..., training=True)` with no docstring about it: a prenet class and the flag spelled
    out together are the design. The same flag in a class of another name (SimpleNet's bug,
    pitfalls #27) stays a warning."""
    spelled = PRENET.format(note="Two linear layers with dropout.").replace(
        "self.dropout_rate)\n", "self.dropout_rate, training=True)\n")
    found = _found(tmp_path / "prenet", spelled, "DRP600")
    assert [(line, severity) for line, severity, _ in found] == [(14, "info")]
    assert "Tacotron-style prenet" in found[0][2]
    other = _found(tmp_path / "other", spelled.replace("Taco2Prenet", "Block"), "DRP600")
    assert _loud(other) == [(14, "warning")]


def test_a_comment_above_the_call_documents_it_too(tmp_path):
    text = """
class Head(nn.Module):
    def forward(self, x):
        # Monte-Carlo dropout: keep dropout on at inference too
        return F.dropout(x, 0.2)
"""
    assert [(line, severity) for line, severity, _ in _found(tmp_path, text, "DRP600")] == [(5, "info")]


# --- DRP601: aliased-varlen-signature (mPLUG-Owl) -------------------------------------------------

ALIASED = """
try:
    from flash_attn.flash_attn_interface import flash_attn_unpadded_func

    flash_attn_func = flash_attn_unpadded_func
except ImportError:
    flash_attn_func = None


class VisionAttention(nn.Module):
    def __init__(self, attention_dropout=0.1):
        super().__init__()
        self.dropout = attention_dropout

    def forward(self, q, k, v, bsz, seq_len):
        cu_seqlens = torch.arange(0, (bsz + 1) * seq_len, step=seq_len, dtype=torch.int32)
        {guard}
        return flash_attn_func(q, k, v, cu_seqlens, cu_seqlens, seq_len, seq_len,
                               {rate}, causal=False)
"""


def test_aliased_varlen_kernel_reads_its_own_dropout_argument(tmp_path):
    text = ALIASED.format(guard="", rate="self.dropout if self.training else 0.0")
    assert _found(tmp_path, text, "DRP601") == []


def test_twin_aliased_varlen_kernel_with_an_ungated_rate_fires(tmp_path):
    found = _found(tmp_path, ALIASED.format(guard="", rate="self.dropout"), "DRP601")
    assert [(line, severity) for line, severity, _ in found] == [(19, "warning")]
    assert "dropout_p=self.dropout" in found[0][2]


def test_a_call_under_if_false_is_dead_code(tmp_path):
    text = ALIASED.format(guard="if False:\n            return None", rate="self.dropout").replace(
        "        return flash_attn_func", "        if False:\n            return flash_attn_func").replace(
        "                               self.dropout", "                                   self.dropout")
    assert "if False:\n            return flash_attn_func" in text
    assert _found(tmp_path, text, "DRP601") == []


@pytest.mark.parametrize("imported, loud", [
    ("from flash_attn import flash_attn_varlen_func as fa", [(6, "warning")]),
    ("from .kernels import flash_attn_varlen_func as fa", []),  # a wrapper: signature unknown
])
def test_import_as_is_resolved_and_an_unknown_signature_is_read_by_keyword_only(tmp_path, imported, loud):
    text = f"""
{imported}

class Attn(nn.Module):
    def forward(self, q, k, v, cu, n):
        return fa(q, k, v, cu, cu, n, n, self.dropout)
"""
    assert _loud(_found(tmp_path, text, "DRP601")) == loud


def test_unknown_signature_still_reads_the_keyword(tmp_path):
    text = """
from .kernels import flash_attn_func

class Attn(nn.Module):
    def forward(self, q, k, v, cu):
        a = flash_attn_func(q, k, v, cu)
        return flash_attn_func(q, k, v, dropout_p=self.p)
"""
    assert _loud(_found(tmp_path, text, "DRP601")) == [(7, "warning")]


# --- DRP601: flash-path-only-when-dropout-zero (Bark's fine model) -------------------------------

BARK = """
class NonCausalSelfAttention(nn.Module):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.dropout = dropout
        self.attn_dropout = nn.Dropout(dropout)
        self.flash = hasattr(torch.nn.functional, "scaled_dot_product_attention"){zero}

    def forward(self, q, k, v):
        if self.flash:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout, is_causal=False)
        att = self.attn_dropout((q @ k.transpose(-2, -1)).softmax(dim=-1))
        return att @ v
"""


def test_flash_path_taken_only_at_rate_zero_is_silent(tmp_path):
    assert _found(tmp_path, BARK.format(zero=" and self.dropout == 0.0"), "DRP601") == []


def test_direct_rate_zero_test_is_silent(tmp_path):
    text = BARK.format(zero="").replace("if self.flash:", "if self.flash and not self.dropout:")
    assert _found(tmp_path, text, "DRP601") == []


@pytest.mark.parametrize("zero", ["", " and self.other == 0.0"])
def test_twin_flash_path_without_the_zero_test_fires(tmp_path, zero):
    assert _loud(_found(tmp_path, BARK.format(zero=zero), "DRP601")) == [(11, "warning")]


# --- DRP522: interface parameters (wenet, icefall, FunASR) ---------------------------------------

SUBSAMPLING = """
class BaseSubsampling(nn.Module):
    def __init__(self):
        super().__init__()


class LinearNoSubsampling(BaseSubsampling):
    def __init__(self, idim: int, odim: int, dropout_rate: float, pos_enc_class{ann}):
        super().__init__()
        self.out = nn.Sequential(nn.Linear(idim, odim), nn.Dropout({used}))
        self.pos_enc = pos_enc_class


class Conv2dSubsampling4(BaseSubsampling):
    def __init__(self, idim: int, odim: int, dropout_rate: float, pos_enc_class{ann}):
        super().__init__()
        self.conv = nn.Conv2d(1, odim, 3, 2)
        self.pos_enc = pos_enc_class

    def forward(self, x):
        return self.pos_enc(self.conv(x))
"""


def test_parameter_of_a_signature_a_sibling_uses_is_info(tmp_path):
    found = _found(tmp_path, SUBSAMPLING.format(ann="", used="dropout_rate"), "DRP522")
    assert [(line, severity) for line, severity, _ in found] == [(15, "info")]
    assert "LinearNoSubsampling" in found[0][2] and "shared signature" in found[0][2]


def test_twin_no_sibling_uses_it_is_a_warning(tmp_path):
    found = _found(tmp_path, SUBSAMPLING.format(ann="", used="0.1"), "DRP522")
    assert _loud(found) == [(8, "warning"), (15, "warning")]


UNIFORMER = """
class SABlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, drop=0., attn_drop=0.{extra}):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=attn_drop)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio), bias=qkv_bias), nn.Dropout(drop))


class CBlock(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4., qkv_bias=False, drop=0., attn_drop=0.):
        super().__init__()
        self.attn = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio), bias=qkv_bias), nn.Dropout(drop))
"""


def test_an_attention_rate_of_a_block_whose_attn_is_a_convolution_is_info(tmp_path):
    """UniFormer's CBlock takes SABlock's parameters, attn_drop included, but its `self.attn` is a
    depthwise convolution: there are no attention weights to drop. A general `dropout` ignored by
    one of two blocks with the very same parameters stays a warning: CORL's GaussianPolicy builds
    an MLP that takes a dropout, and its config sets one (a lost setting, judged true)."""
    found = _found(tmp_path / "conv", UNIFORMER.format(extra=""), "DRP522")
    assert [(line, severity) for line, severity, _ in found] == [(10, "info")]
    assert "self.attn is built as nn.Conv2d (line 15)" in found[0][2]  # line 12 of UNIFORMER
    attention = UNIFORMER.replace("self.attn = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)",
                                  "self.attn = Attention(dim, num_heads)")
    assert (10, "warning") in _loud(_found(tmp_path / "attention", attention.format(extra=""), "DRP522"))
    policies = """
class DeterministicPolicy(nn.Module):
    def __init__(self, state_dim, act_dim, max_action, hidden_dim=256, n_hidden=2, dropout=None):
        super().__init__()
        self.net = MLP([state_dim, hidden_dim, act_dim], dropout=dropout)


class GaussianPolicy(nn.Module):
    def __init__(self, state_dim, act_dim, max_action, hidden_dim=256, n_hidden=2, dropout=None):
        super().__init__()
        self.net = MLP([state_dim, hidden_dim, act_dim])
"""
    assert _loud(_found(tmp_path / "policies", policies, "DRP522")) == [(9, "warning")]


def test_a_built_module_parameter_makes_it_info(tmp_path):
    """wenet's subsampling in another file than its siblings, icefall's Zipformer2Encoder: the
    caller built the component (pos_enc with the positional rate, the encoder layer with the same
    dropout) and passes it in."""
    found = _found(tmp_path, SUBSAMPLING.format(ann=": nn.Module", used="0.1"), "DRP522")
    assert [(line, severity) for line, severity, _ in found] == [(8, "info"), (15, "info")]
    assert "built module pos_enc_class" in found[0][2]


def test_del_of_the_parameter_is_info(tmp_path):
    text = """
class StackNFramesSubsampling(nn.Module):
    def __init__(self, idim, odim, dropout_rate, stride=2):
        super().__init__()
        del dropout_rate
        self.out = nn.Linear(idim * stride, odim)
"""
    found = _found(tmp_path, text, "DRP522")
    assert [(line, severity) for line, severity, _ in found] == [(3, "info")]
    assert found[0][2].count("del dropout_rate") == 1


ENCODER = """
class BaseEncoder(nn.Module):
    def __init__(self, size: int, dropout_rate: float = 0.1, attention_dropout_rate: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout_rate)


class TransformerEncoder(BaseEncoder):
    def __init__(self, size: int, dropout_rate: float = 0.1, attention_dropout_rate: float = 0.0):
        super().__init__(size, dropout_rate, attention_dropout_rate)
        self.attn = nn.MultiheadAttention(size, 4, dropout={rate})

    def forward(self, x):
        return self.dropout(self.attn(x, x, x)[0])
"""


def test_base_class_parameter_a_subclass_uses_and_passes_up_is_info(tmp_path):
    found = _found(tmp_path, ENCODER.format(rate="attention_dropout_rate"), "DRP522")
    assert [(line, severity) for line, severity, _ in found] == [(3, "info")]
    assert "subclass TransformerEncoder" in found[0][2]


def test_twin_subclass_only_passes_it_up_is_a_warning(tmp_path):
    found = _found(tmp_path, ENCODER.format(rate="0.0"), "DRP522")
    assert _loud(found) == [(3, "warning")]


SANM = """
class MultiHeadedAttentionSANM(nn.Module):
    def __init__(self, n_head, n_feat, dropout_rate, lora_list=None, lora_rank=8, lora_alpha=16,
                 lora_dropout=0.1):
        super().__init__()
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.dropout = nn.Dropout(p=dropout_rate){extra}

    def forward(self, x):
        return self.dropout(self.linear_out(x))
"""


def test_rate_of_a_component_that_is_not_built_is_info(tmp_path):
    found = _found(tmp_path, SANM.format(extra=""), "DRP522")
    assert [(line, severity) for line, severity, _ in found] == [(4, "info")]
    assert "lora_list, lora_rank, lora_alpha" in found[0][2]


def test_twin_rate_of_a_component_that_exists_is_a_warning(tmp_path):
    """Megatron's DSAttention: `attention_type` unused beside `attention_dropout` in a class that
    is attention: the component exists, the rate is lost."""
    found = _found(tmp_path, SANM.format(extra="\n        self.lora_A = None  # lora is built later"), "DRP522")
    assert _loud(found) == [(4, "warning")]


# --- DRP521: per class, the rate read is not the module, the rate applied elsewhere --------------

def test_a_dead_module_is_judged_by_its_own_class(tmp_path):
    text = """
class CifPredictor(nn.Module):
    def __init__(self, idim, dropout=0.1):
        super().__init__()
        self.cif_output = nn.Linear(idim, 1)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, hidden):
        return self.cif_output(self.dropout(hidden))


class CifPredictorV2(nn.Module):
    def __init__(self, idim, dropout=0.1):
        super().__init__()
        self.cif_output = nn.Linear(idim, 1)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, hidden):
        return self.cif_output(hidden)


class Base(nn.Module):
    def forward(self, x):
        return self.drop(x)


class Child(Base):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return super().forward(x)


class Parent(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return x


class Kid(Parent):
    def forward(self, x):
        return self.drop(x)
"""
    assert _loud(_found(tmp_path, text, "DRP521")) == [(16, "warning")]


def test_a_config_field_of_the_same_name_is_not_a_use(tmp_path):
    text = """
class Data2VecAudioModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dropout_input = nn.Dropout(cfg.dropout_input)
        self.dropout_features = nn.Dropout(cfg.dropout_features)

    def forward(self, features):
        return self.dropout_input(features)


def other(model):
    return model.encoder.dropout_input(1)
"""
    assert _loud(_found(tmp_path, text, "DRP521")) == [(6, "warning")]


NNCF = """
class NNCF(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(8, 8), {other})
        self.dropout_layer = nn.Dropout(p=config["dropout"])

    def forward(self, x):
        return self.mlp(x)
"""


def test_dead_module_whose_rate_another_layer_applies_is_info(tmp_path):
    found = _found(tmp_path, NNCF.format(other='nn.Dropout(p=config["dropout"])'), "DRP521")
    assert [(line, severity) for line, severity, _ in found] == [(6, "info")]
    assert 'the same rate config["dropout"]' in found[0][2]


DDIT = """
class DDiTBlock(nn.Module):
    def __init__(self, dim, dropout=0.1):
        super().__init__()
        self.dropout = dropout
        self.dropout1 = nn.Dropout(dropout)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        return bias_dropout_add_scale(self.out(x), residual=x, {passed}, training=self.training)
"""


def test_dead_module_whose_rate_the_class_stores_and_passes_on_is_info(tmp_path):
    """flow_matching's DDiT block: `self.dropout1` is dead, but the same rate, stored as
    self.dropout, reaches F.dropout through a helper: the setting takes effect. Stored and
    never passed on, the dead module is the only site: a warning."""
    found = _found(tmp_path / "passed", DDIT.format(passed="prob=self.dropout"), "DRP521")
    assert [(line, severity) for line, severity, _ in found] == [(6, "info")]
    assert "stored as self.dropout and passed to bias_dropout_add_scale(...) at line 13" in found[0][2]  # line 10 of DDIT
    assert _loud(_found(tmp_path / "unpassed", DDIT.format(passed="prob=0.0"), "DRP521")) == [(6, "warning")]


@pytest.mark.parametrize("other", ["nn.Dropout(p=0.5)", 'nn.LSTM(8, 8, dropout=config["dropout"])',
                                   'nn.LSTM(8, 8, num_layers=1, dropout=config["dropout"])'])
def test_twin_rate_nowhere_else_or_only_in_a_single_layer_rnn_is_a_warning(tmp_path, other):
    """FunASR's EEND-EDA: decoder_dropout reaches only a one-layer LSTM, where it is a no-op."""
    assert _loud(_found(tmp_path, NNCF.format(other=other), "DRP521")) == [(6, "warning")]


COPIED = """
class RelativeAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(x)


class Layer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.rel_attn = RelativeAttention(config)
        self.{name} = nn.Dropout(config.{rate})

    def forward(self, x):
        return self.rel_attn(x)
"""


def test_dead_copy_of_a_live_module_with_the_same_config_field_is_info(tmp_path):
    """XLNetLayer's `self.dropout = nn.Dropout(config.dropout)`, pasted from XLNetRelativeAttention
    where it runs: the setting takes effect, only the copy is dead (transformers models/)."""
    found = _found(tmp_path, COPIED.format(name="dropout", rate="dropout"), "DRP521")
    assert [(line, severity) for line, severity, _ in found] == [(15, "info")]
    assert "config.dropout is given to Dropout(...) at line 8" in found[0][2]  # lines of the file


@pytest.mark.parametrize("name, rate", [("embed_dropout", "dropout"), ("dropout", "attention_dropout")])
def test_twin_a_dead_module_of_its_own_name_or_field_is_a_warning(tmp_path, name, rate):
    """Phi-4-multimodal's text `embed_dropout` beside the image embedding's live `drop` with the same
    embd_pdrop; MRA/Nystromformer/YOSO's attention dropout, whose field nothing else applies
    (measured: attention_probs_dropout_prob 0.9 leaves their train-mode outputs unchanged)."""
    assert _loud(_found(tmp_path, COPIED.format(name=name, rate=rate), "DRP521")) == [(15, "warning")]


def test_dead_module_whose_call_is_commented_out_is_info(tmp_path):
    text = """
class SANMEncoder(nn.Module):
    def __init__(self, size):
        super().__init__()
        self.dropout = nn.Dropout(0.1)
        self.out = nn.Linear(size, size)

    def forward(self, x):
        # x = self.dropout(x)
        return self.out(x)
"""
    found = _found(tmp_path, text, "DRP521")
    assert [(line, severity) for line, severity, _ in found] == [(5, "info")]
    assert "commented out at line 12" in found[0][2]  # lines of the file: MODULE's 3 imports first
    assert _loud(_found(tmp_path, text.replace("        # x = self.dropout(x)\n", ""), "DRP521")) == [(5, "warning")]


# --- DRP603: mode restored, train() in the loop, fit() on the model itself -----------------------

NET = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return self.fc(self.drop(x))


model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""


def test_evaluate_that_saves_and_restores_the_mode_is_silent(tmp_path):
    """s3prl's runner.evaluate: records each model's `training` and calls train() where it was."""
    text = NET + """
def evaluate(model, loader):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = sum(model(x).sum().item() for x in loader)
    if was_training:
        model.train()
    return out


for epoch in range(3):
    for x in []:
        loss = model(x).sum()
        loss.backward()
        opt.step()
    evaluate(model, [])
"""
    assert _found(tmp_path, text, "DRP603") == []
    twin = text.replace("    was_training = model.training\n", "    was_training = len(loader) > 0\n")
    assert _loud(_found(tmp_path, twin, "DRP603")) == [(30, "warning")]


def test_train_inside_the_loop_is_silent(tmp_path):
    text = NET + """
def evaluate(model, loader):
    model.eval()
    with torch.no_grad():
        return [model(x) for x in loader]


def train_epoch(model, loader):
    model.train()
    for x in loader:
        model(x).sum().backward()
        opt.step()


for epoch in range(3):
    train_epoch(model, [])
    for x in []:
        model.train()
        model(x).sum().backward()
        opt.step()
    evaluate(model, [])
"""
    assert _found(tmp_path, text, "DRP603") == []
    twin = text.replace("        model.train()\n        model(x)", "        model(x)").replace(
        "    train_epoch(model, [])\n", "")
    assert _loud(_found(tmp_path, twin, "DRP603")) == [(32, "warning")]


FIT = """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1){drop}

    def forward(self, x):
        return self.fc(x)

    def fit(self, loader, epochs, opt):
        model = self.train()
        for epoch in range(epochs):
            for x in loader:
                loss = model(x).sum()
                loss.backward()
                opt.step()
            self.evaluate(loader)

    def evaluate(self, loader):
        return self.predict(loader)

    def predict(self, loader):
        model = self.eval()
        with torch.no_grad():
            return [model(x) for x in loader]
"""


def test_fit_on_the_model_itself_with_dropout_is_a_warning(tmp_path):
    """DeepCTR-Torch's BaseModel.fit: train() once before the epochs, evaluate() -> predict() ->
    self.eval() in each: epochs 2+ train in eval mode."""
    found = _found(tmp_path, FIT.format(drop="\n        self.dnn = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))"),
                   "DRP603")
    assert _loud(found) == [(18, "warning")]


def test_twin_fit_on_a_model_without_dropout_is_silent_and_unknown_is_info(tmp_path):
    assert _found(tmp_path, FIT.format(drop=""), "DRP603") == []
    found = _found(tmp_path, FIT.format(drop="\n        self.dnn = DNN(4, dropout_rate=0.5)"), "DRP603")
    assert [(line, severity) for line, severity, _ in found] == [(18, "info")]


# --- DRP602: features cached in train mode inside the training step (open_clip) ------------------

CACHE = NET + """
def train_one_epoch(model, loader, accum_freq):
    model.train()
    cached = []
    for i, x in enumerate(loader):
        with torch.no_grad():
            out = model(x)
            {use}
        loss = (model(x) - torch.stack(cached).mean()).sum()
        loss.backward()
        opt.step()
"""


def test_features_cached_under_no_grad_in_the_training_step_are_silent(tmp_path):
    assert _found(tmp_path, CACHE.format(use="cached.append(out)"), "DRP602") == []
    assert _found(tmp_path, CACHE.format(use="for key, val in out.items():\n                cached.append(val)"),
                  "DRP602") == []


def test_twin_a_no_grad_pass_that_is_not_cached_fires(tmp_path):
    found = _found(tmp_path, CACHE.format(use="print(out)"), "DRP602")
    assert _loud(found) == [(20, "warning")]


def test_a_heads_rate_in_a_headless_copy_of_the_signature_is_an_info(tmp_path):
    """timm's EfficientNetFeatures takes EfficientNet's `drop_rate` (the classifier's dropout) and
    builds no classifier; a TensorRT-LLM port keeps the PyTorch signature for an inference engine."""
    timm = ("import torch.nn as nn\nimport torch.nn.functional as F\n\n\nclass EfficientNet(nn.Module):\n"
            "    def __init__(self, num_classes=1000, drop_rate=0.):\n        super().__init__()\n"
            "        self.drop_rate = drop_rate\n        self.classifier = nn.Linear(8, num_classes)\n\n"
            "    def forward(self, x):\n        x = F.dropout(x, p=self.drop_rate, training=self.training)\n"
            "        return self.classifier(x)\n\n\nclass EfficientNetFeatures(nn.Module):\n"
            "    def __init__(self, drop_rate=0.):\n        super().__init__()\n        self.drop_rate = drop_rate\n"
            "        self.blocks = nn.Sequential(nn.Linear(8, 8))\n\n    def forward(self, x):\n"
            "        return self.blocks(x)\n")
    write_files(tmp_path, [("efficientnet.py", timm)])
    (found,) = audit([str(tmp_path)], select=("DRP522",))
    assert found.severity == "info" and "EfficientNet (line 5) takes the same drop_rate for its head" in found.message
    write_files(tmp_path, [("efficientnet.py", timm.replace("        self.blocks =", "        self.head = nn.Linear(8, 2)\n        self.blocks ="))])
    assert [f.severity for f in audit([str(tmp_path)], select=("DRP522",))] == ["warning"]  # it has a head of its own
    # a flag named like a head is no head: pytorchvideo's scriptable attention stores has_cls_embed
    flag = timm.replace("        self.classifier = nn.Linear(8, num_classes)\n", "        self.has_cls_embed = True\n"
                        ).replace("        return self.classifier(x)\n", "        return x\n")
    write_files(tmp_path, [("efficientnet.py", flag)])
    assert [f.severity for f in audit([str(tmp_path)], select=("DRP522",))] == ["warning"]
    trt = ("from tensorrt_llm.module import Module\n\n\nclass Attention(Module):\n"
           "    def __init__(self, dim, dropout=0.0):\n        super().__init__()\n        self.dim = dim\n")
    write_files(tmp_path, [("efficientnet.py", "x = 1\n"), ("trt/modules.py", trt)])
    assert audit([str(tmp_path)], select=("DRP522",)) == []
