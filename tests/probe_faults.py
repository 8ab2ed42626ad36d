"""Small PyTorch models for the probe tests, loaded through `--factory tests/probe_faults.py:NAME`.

The clean ones use dropout correctly; the faulty ones plant one real-world bug each
(pitfalls.md C): F.dropout without the training flag (pytorch/pytorch#26338), the textbook
"multiply by (1-p) at inference" on top of nn.Dropout, and SDPA with an ungated dropout_p
(pytorch/pytorch#124464, karpathy/nanoGPT#240); plus a dropout that masks without rescaling
and one that passes training=False while training.

The hand-written ones (issue #32) are plain nn.Modules that draw their own mask, never
nn.Dropout subclasses, so only the module survey can see them: a correct inverted dropout, one
that never rescales, one that scales twice (1/(1-p) in training and (1-p) again at eval), and
one that drops at twice its stored p.
"""

import torch
import torch.nn.functional as F
from torch import nn

P = 0.1
WIDTH = 48


class _MaskOnlyDropout(nn.Dropout):
    """Planted: masks without the 1/(1-p) rescale (not inverted dropout)."""

    def forward(self, x):
        if not self.training:
            return x
        return x * (torch.rand_like(x) >= self.p)


class HandDropout(nn.Module):
    """Hand-written inverted dropout, done right."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        keep = (torch.rand_like(x) >= self.p).to(x.dtype)
        return x * keep / (1 - self.p)


class HandDropoutUnscaled(nn.Module):
    """Planted: masks, never rescales."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        return x * (torch.rand_like(x) >= self.p).to(x.dtype)


class HandDropoutDoubleScaled(nn.Module):
    """Planted: inverted in training, and the textbook (1-p) again at eval."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x * (1 - self.p)
        keep = (torch.rand_like(x) >= self.p).to(x.dtype)
        return x * keep / (1 - self.p)


class HandDropoutWrongRate(nn.Module):
    """Planted: stores p, drops (and rescales for) twice that rate."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        rate = 2 * self.p
        keep = (torch.rand_like(x) >= rate).to(x.dtype)
        return x * keep / (1 - rate)


class _HandMLP(nn.Module):
    def __init__(self, drop: nn.Module):
        super().__init__()
        self.fc1 = nn.Linear(16, WIDTH)
        self.drop = drop
        self.fc2 = nn.Linear(WIDTH, 8)

    def forward(self, x):
        return self.fc2(self.drop(torch.relu(self.fc1(x))))


class HandDropPath(nn.Module):
    """Hand-written stochastic depth, done right: one draw per sample, rescaled."""

    def __init__(self, drop_prob: float):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if not self.training:
            return x
        keep = (torch.rand(x.shape[0], *([1] * (x.dim() - 1))) >= self.drop_prob).to(x.dtype)
        return x * keep / (1 - self.drop_prob)


class _Residual(nn.Module):
    def __init__(self, width: int = WIDTH):
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.path = HandDropPath(0.25)

    def forward(self, x):
        return x + self.path(torch.relu(self.fc(x)))


class HandBatchNormReLU(nn.Module):
    """Not dropout: batch statistics in training, running ones at eval, then ReLU (new zeros at
    a rate, but the kept values are not one common multiple of the eval ones)."""

    def __init__(self, width: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("var", torch.ones(width))

    def forward(self, x):
        if self.training:
            mean, var = x.mean(0), x.var(0)
        else:
            mean, var = self.mean, self.var
        return torch.relu((x - mean) / (var + 1e-5).sqrt())


class Jitter(nn.Module):
    """Not dropout: multiplicative noise with mean 1 in training, storing a rate-named number."""

    def __init__(self, dropout: float):
        super().__init__()
        self.dropout = dropout

    def forward(self, x):
        if not self.training:
            return x
        return x * (1 + self.dropout * (2 * torch.rand_like(x) - 1))


class _EvalZeroed(nn.Module):
    """Planted: at eval a branch goes through dropout with p=1 and training=True: deterministic
    (always zero), yet not the identity."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, WIDTH)
        self.side = nn.Linear(16, WIDTH)
        self.fc2 = nn.Linear(WIDTH, 8)

    def forward(self, x):
        side = self.side(x)
        side = F.dropout(side, P, training=self.training) if self.training else F.dropout(side, 1.0, training=True)
        return self.fc2(torch.relu(self.fc1(x)) + side)


class _TrainSpecific(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, WIDTH)
        self.norm = HandBatchNormReLU(WIDTH)
        self.jitter = Jitter(0.1)
        self.fc2 = nn.Linear(WIDTH, 8)

    def forward(self, x):
        return self.fc2(self.jitter(self.norm(self.fc1(x))))


class _MLP(nn.Module):
    def __init__(self, mode: str):
        super().__init__()
        self.fc1 = nn.Linear(16, WIDTH)
        self.drop = _MaskOnlyDropout(P) if mode == "mask-only" else nn.Dropout(P)
        self.fc2 = nn.Linear(WIDTH, 8)
        self.mode = mode

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        if self.mode == "functional-ungated":
            h = F.dropout(h, P)                       # planted: no training=self.training
        elif self.mode == "functional":
            h = F.dropout(h, P, training=self.training)
        elif self.mode == "never-in-train":
            h = F.dropout(h, P, training=False)       # planted: dropout configured but never applied
        else:
            h = self.drop(h)
            if self.mode == "eval-rescale" and not self.training:
                h = h * (1 - P)                       # planted: textbook rescale on top of inverted dropout
        return self.fc2(h)


class _Attention(nn.Module):
    def __init__(self, gated: bool, dim: int = 32, heads: int = 4):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.heads = heads
        self.gated = gated

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        p = (P if self.training else 0.0) if self.gated else P   # planted when not gated
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class _TinyLM(nn.Module):
    def __init__(self, gated: bool, vocab: int = 97, dim: int = 32):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.attn = _Attention(gated, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids):
        h = self.emb(ids)
        h = h + self.attn(self.norm(h))
        return self.head(h)


def _mlp_inputs():
    return torch.randn(64, 16)


def clean_mlp():
    return _MLP("module"), _mlp_inputs()


def clean_functional():
    return _MLP("functional"), (_mlp_inputs(),)


def clean_sdpa():
    return _TinyLM(gated=True)          # inputs guessed: token ids for the embedding


def fault_functional_no_flag():
    return _MLP("functional-ungated"), _mlp_inputs()


def fault_eval_rescale():
    return _MLP("eval-rescale"), _mlp_inputs()


def fault_sdpa_ungated():
    return _TinyLM(gated=False)


def fault_not_inverted():
    return _MLP("mask-only"), _mlp_inputs()


def fault_never_in_train():
    return _MLP("never-in-train"), _mlp_inputs()


def clean_hand_written():
    return _HandMLP(HandDropout(P)), _mlp_inputs()


def fault_hand_unscaled():
    return _HandMLP(HandDropoutUnscaled(P)), _mlp_inputs()


def fault_hand_double_scaled():
    return _HandMLP(HandDropoutDoubleScaled(P)), _mlp_inputs()


def fault_hand_wrong_rate():
    return _HandMLP(HandDropoutWrongRate(P)), _mlp_inputs()


def fault_eval_zeroed():
    return nn.Sequential(_EvalZeroed()), _mlp_inputs()


def clean_hand_drop_path():
    return nn.Sequential(nn.Linear(16, WIDTH), _Residual(), nn.Linear(WIDTH, 8)), torch.randn(64, 16)


def clean_train_specific():
    return _TrainSpecific(), _mlp_inputs()


CLEAN = ("clean_mlp", "clean_functional", "clean_sdpa", "clean_hand_written", "clean_hand_drop_path",
         "clean_train_specific")
FAULTS = {  # factory -> the codes that must fire
    "fault_functional_no_flag": {"DRP800"},
    "fault_eval_rescale": {"DRP803"},
    "fault_sdpa_ungated": {"DRP800"},
    "fault_not_inverted": {"DRP802"},
    "fault_never_in_train": {"DRP801"},
    "fault_hand_unscaled": {"DRP802"},
    "fault_hand_double_scaled": {"DRP803"},
    "fault_hand_wrong_rate": {"DRP801"},
    "fault_eval_zeroed": {"DRP800", "DRP809"},
}
