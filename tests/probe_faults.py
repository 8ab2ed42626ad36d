"""Small PyTorch models for the probe tests, loaded through `--factory tests/probe_faults.py:NAME`.

The clean ones use dropout correctly; the faulty ones plant one real-world bug each
(pitfalls.md C): F.dropout without the training flag (pytorch/pytorch#26338), the textbook
"multiply by (1-p) at inference" on top of nn.Dropout, and SDPA with an ungated dropout_p
(pytorch/pytorch#124464, karpathy/nanoGPT#240); plus a dropout that masks without rescaling
and one that passes training=False while training.
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


CLEAN = ("clean_mlp", "clean_functional", "clean_sdpa")
FAULTS = {  # factory -> the codes that must fire
    "fault_functional_no_flag": {"DRP800"},
    "fault_eval_rescale": {"DRP803"},
    "fault_sdpa_ungated": {"DRP800"},
    "fault_not_inverted": {"DRP802"},
    "fault_never_in_train": {"DRP801"},
}
