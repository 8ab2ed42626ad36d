"""Regressions from judging the code-rule findings on the #18 frameworks
(docs/framework-evaluation.md, "Code rules"). Each reproduction is written small, not copied."""

from __future__ import annotations

from tests.conftest import audit, write_files

_AUTOGRAD = """\
import torch
from flash_attn import flash_attn_func


class AttnWithExtra(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, dropout_p=0.0):
        ctx.dropout_p = dropout_p
        ctx.save_for_backward(q, k, v)
        return flash_attn_func(q, k, v, dropout_p=dropout_p)

    @staticmethod
    def backward(ctx, grad):
        q, k, v = ctx.saved_tensors
        extra = flash_attn_func(q, k, k, dropout_p=ctx.dropout_p)
        return grad * extra, None, None, None
"""

_MODULE = """\
import torch
from flash_attn import flash_attn_func


class Attn(torch.nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, q, k, v):
        return flash_attn_func(q, k, v, dropout_p=self.p)
"""


def _drp601(findings):
    return [f.span.line for f in findings if f.code == "DRP601"]


def test_autograd_function_rate_is_the_callers_to_gate(tmp_path):
    """InternVL's flash_attn_with_sink.py:140 was reported: `dropout_p=ctx.dropout_p` in the
    backward of a torch.autograd.Function, which has no module mode and never runs in eval."""
    write_files(tmp_path, [("sink_attn.py", _AUTOGRAD)])
    assert _drp601(audit([str(tmp_path)])) == []


def test_module_method_with_ungated_rate_is_still_reported(tmp_path):
    write_files(tmp_path, [("attn.py", _MODULE)])
    assert _drp601(audit([str(tmp_path)])) == [11]


def test_522_a_fake_kernel_takes_the_ops_whole_signature(tmp_path):
    """Regression (xtuner): a torch.library fake (meta) kernel must accept every argument of the
    op, dropout_p included, and only computes shapes; an ordinary builder is still reported."""
    fake = ('import torch\n\n@torch.library.register_fake("ns::attn")\n'
            "def _(q, k, v, dropout_p: float = 0.0):\n    return torch.empty_like(q)\n")
    builder = "def make_block(width, dropout_p: float = 0.1):\n    return Block(width)\n"
    write_files(tmp_path, [("fake.py", fake), ("builder.py", builder)])
    found = [(f.path.rsplit("/", 1)[-1], f.code) for f in audit([str(tmp_path)]) if f.code == "DRP522"]
    assert found == [("builder.py", "DRP522")]
