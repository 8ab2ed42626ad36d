"""The code rules on whole scripts: the fixture scenarios and the correct idioms that must
stay silent, beyond the one-line examples in the rule files."""

from __future__ import annotations

import os
import textwrap

import pytest

from tests.conftest import REPO, audit, write_files

FIXTURES = os.path.join(REPO, "fixtures")


def _codes(tmp_path, text, name="train.py", select=None):
    write_files(tmp_path, [(name, textwrap.dedent(text))])
    opts = {"select": tuple(select)} if select else {}
    return sorted((f.code, f.span.line) for f in audit([str(tmp_path)], **opts))


def test_fixture_with_bugs_reports_each_one():
    findings = audit([os.path.join(FIXTURES, "script-eval-bugs")])
    assert sorted((f.code, f.span.line) for f in findings) == [
        ("DRP110", 46), ("DRP520", 13), ("DRP521", 14), ("DRP522", 10), ("DRP523", 45),
        ("DRP600", 23), ("DRP601", 22), ("DRP603", 42), ("DRP700", 23),
    ]


def test_clean_fixture_is_silent():
    assert audit([os.path.join(FIXTURES, "script-clean")]) == []


def test_shell_flag_is_compared_with_the_saved_adapter():
    findings = audit([os.path.join(FIXTURES, "launch-flags")])
    # DRP005 (info, setup graph): the fixture is a snippet; the qlora.py it launches is not there.
    assert [(f.code, os.path.basename(f.path), f.span.line, f.span.column) for f in findings] == [
        ("DRP005", "finetune.sh", 3, 8), ("DRP400", "finetune.sh", 6, 20)]


def test_functional_dropout_variants(tmp_path):
    got = _codes(tmp_path, '''
        import torch.nn as nn
        import torch.nn.functional as F
        from torch.nn.functional import dropout as drop
        class M(nn.Module):
            def forward(self, x, frozen):
                a = F.dropout(x, 0.1, training=self.training and not frozen)
                b = F.alpha_dropout(x, 0.1)
                c = drop(x, 0.2)
                d = F.dropout(x, p=0.0)
                e = F.dropout(x, 0.1, False)
                return torch.nn.functional.dropout3d(x, 0.1)
        def augment(x):
            return F.dropout(x, 0.5, training=True)
        def helper(x):
            return F.dropout(x, 0.5)
    ''', select=["DRP600"])
    assert got == [("DRP600", 8), ("DRP600", 9), ("DRP600", 12), ("DRP600", 14)]


def test_alpha_dropout_message_says_it_never_drops(tmp_path):
    write_files(tmp_path, [("m.py", "import torch\nimport torch.nn.functional as F\nclass M(torch.nn.Module):\n    def forward(self, x):\n"
                                    "        return F.alpha_dropout(x, 0.1)\n")])
    [f] = audit([str(tmp_path)])
    assert "never drops" in f.message


def test_attention_kernels(tmp_path):
    got = _codes(tmp_path, '''
        import torch.nn as nn
        import torch.nn.functional as F
        from flash_attn import flash_attn_func
        class A(nn.Module):
            def forward(self, q, k, v):
                x = flash_attn_func(q, k, v, self.drop_p)
                y = flash_attn_func(q, k, v, dropout_p=self.drop_p if self.training else 0.0)
                if self.training:
                    z = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p)
                p = self.p
                if not self.training:
                    p = 0.0
                w = F.scaled_dot_product_attention(q, k, v, None, p)
                return F.scaled_dot_product_attention(q, k, v, None, 0.1)
        def attend(q, k, v, dropout_p):
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    ''', select=["DRP601"])
    assert got == [("DRP601", 7), ("DRP601", 15)]


def test_generate_after_train_with_eval_in_another_branch_is_tracked_per_model(tmp_path):
    got = _codes(tmp_path, '''
        import torch
        teacher_model.eval()
        student_model.train()
        with torch.no_grad():
            t = teacher_model(x)
        out = student_model.generate(x)
    ''', select=["DRP602"])
    assert got == [("DRP602", 7)]


def test_unsloth_for_inference_counts_as_eval(tmp_path):
    assert _codes(tmp_path, '''
        import torch
        from unsloth import FastLanguageModel
        model.train()
        FastLanguageModel.for_inference(model)
        with torch.inference_mode():
            out = model.generate(**inputs)
    ''', select=["DRP6"]) == []


def test_no_grad_without_eval_anywhere(tmp_path):
    bad = _codes(tmp_path, '''
        import torch
        for x in loader:
            model(x).backward()
            opt.step()
        with torch.inference_mode():
            preds = model(test)
    ''', select=["DRP604"])
    assert bad == [("DRP604", 7)]  # at the forward pass, not at the with/decorator line (issue #16)


def test_eval_helper_in_a_method_switches_back(tmp_path):
    assert _codes(tmp_path, '''
        class Loop:
            def validate(self):
                self.model.eval()
                self.model.train()
            def fit(self):
                for batch in self.loader:
                    self.model(batch).backward()
                    self.optimizer.step()
                    self.validate()
    ''', select=["DRP603"]) == []


def test_parameter_rules(tmp_path):
    got = _codes(tmp_path, '''
        import abc
        def build(dropout=0.1, **kw):
            return Layer(**locals())
        class Base(abc.ABC):
            @abc.abstractmethod
            def make(self, dropout):
                ...
        def stub(lora_dropout):
            raise NotImplementedError
        def shadow(attn_dropout):
            attn_dropout = 0.0
            return Attention(dropout=attn_dropout)
    ''', select=["DRP522"])
    assert got == [("DRP522", 12)]


def test_rnn_with_star_kwargs_or_variable_layers_is_silent(tmp_path):
    assert _codes(tmp_path, '''
        import torch.nn as nn
        a = nn.LSTM(8, 8, **cfg)
        b = nn.GRU(8, 8, num_layers=n, dropout=0.2)
        c = nn.LSTM(8, 8, 1, True, True, 0.0)
    ''', select=["DRP520"]) == []


def test_config_after_build_via_setattr_and_self(tmp_path):
    got = _codes(tmp_path, '''
        model = AutoModel.from_pretrained("bert-base-uncased")
        setattr(model.config, "hidden_dropout_prob", 0.0)
        class Wrapper:
            def __init__(self, config):
                self.config = config
                self.config.hidden_dropout = 0.1
    ''', select=["DRP523"])
    assert got == [("DRP523", 3)]


def test_config_after_build_every_assignment_form(tmp_path):
    """DRP523 finds its assignments from the stored `.config.<rate>` attributes (issue 17):
    plain, augmented, annotated and chained targets, an owner behind a subscript, and writes
    in functions and loops all still count; a tuple target never did."""
    got = _codes(tmp_path, '''
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("gpt2")
        model.config.attn_pdrop = 0.0
        model.config.resid_pdrop += 0.1
        model.config.embd_pdrop: float = 0.2
        a = model.config.summary_first_dropout = 0.3
        (model.config.attn_pdrop, b) = (0.1, 2)
        holder.models[0].model.config.hidden_dropout = 0.1
        setattr(model.config, "attention_dropout", 0.1)
        def f(net):
            net.config.dropout = 0.5
            for x in y:
                encoder.config.dropout_rate = 0.1
    ''', select=["DRP523"])
    assert got == [("DRP523", n) for n in (4, 5, 6, 7, 9, 10, 12, 14)]


def test_dropout_parameter_reads_in_every_position(tmp_path):
    """DRP522 finds a parameter's first reading statement from the module's loads of that
    name (issue 17): reads in nested functions, decorators of nested functions and lambdas
    count, an overwrite before the first read is reported, `locals()` silences the function."""
    got = _codes(tmp_path, '''
        import torch.nn as nn
        class A(nn.Module):
            def __init__(self, dropout=0.1, attn_drop=0.0, drop_path=0.1, proj_drop=0.2, p_drop=0.3):
                super().__init__()
                def inner():
                    return dropout
                @deco(attn_drop)
                def g():
                    pass
                drop_path = 0.0
                self.x = drop_path
                proj_drop = proj_drop * 2
                self.y = lambda: p_drop
            def forward(self, x):
                return x
        def build(hidden_dropout=0.1, attention_dropout=0.1, resid_dropout=0.0):
            attention_dropout = 0.0
            if resid_dropout:
                pass
            return Block(hidden_dropout=0.5)
        def other(dropout_rate=0.1):
            x = 1
            y = 2
            dropout_rate = 0.5
            return dropout_rate
        def viaself(self, embd_dropout=0.1):
            return locals()
    ''', name="model.py", select=["DRP522"])
    assert got == [("DRP522", 11), ("DRP522", 17), ("DRP522", 17), ("DRP522", 25)]


def test_local_training_arguments_class_is_not_checked(tmp_path):
    assert _codes(tmp_path, '''
        import transformers
        class TrainingArguments(transformers.TrainingArguments):
            lora_dropout: float = 0.0
        args = TrainingArguments(output_dir="o", lora_dropout=0.1)
    ''', select=["DRP110"]) == []


def test_custom_recompute_without_rng(tmp_path):
    got = _codes(tmp_path, '''
        import torch
        import torch.nn as nn
        class CheckpointFunction(torch.autograd.Function):
            @staticmethod
            def forward(ctx, run_function, *args):
                ctx.run_function = run_function
                with torch.no_grad():
                    return run_function(*args)
            @staticmethod
            def backward(ctx, *grads):
                out = ctx.run_function(*ctx.saved_tensors)
                return out
        drop = nn.Dropout(0.1)
    ''', select=["DRP700"])
    assert got == [("DRP700", 12)]


CHECKPOINTED = '''
    import torch.nn as nn
    from torch.utils.checkpoint import checkpoint

    class Conv2D(nn.Conv2d):
        def forward(self, x):
            return super().forward(x)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = nn.Sequential(nn.UpsamplingNearest2d(scale_factor=2), Conv2D(c, c, 3), nn.GroupNorm(1, c), {layer})

        def forward(self, x):
            return checkpoint(self.body, x, preserve_rng_state=False)

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.1)
'''


@pytest.mark.parametrize("layer, found", [("nn.SiLU()", []), ("nn.Dropout(0.1)", [("DRP700", 15)]),
                                          ("nn.RReLU()", [("DRP700", 15)])])
def test_checkpoint_without_rng_state_of_a_class_that_draws_nothing_is_silent(tmp_path, layer, found):
    """LSGM checkpoints GroupNorm-and-Swish blocks with preserve_rng_state=False while the file
    has dropout elsewhere: the recompute draws nothing, so the unsaved RNG state changes nothing.
    A subclass of a torch layer and torch.nn's other layers (upsampling) are read as such; a
    dropout, or RReLU (which draws its slope in training), in the checkpointed class is reported."""
    assert _codes(tmp_path, CHECKPOINTED.format(layer=layer), select=["DRP700"]) == found


def test_seed_rules(tmp_path):
    got = _codes(tmp_path, '''
        import torch
        from accelerate import Accelerator
        from accelerate.utils import set_seed
        accelerator = Accelerator()
        set_seed(42, device_specific=True)
        torch.manual_seed(args.seed + accelerator.process_index)
        torch.manual_seed(args.seed)
        drop = torch.nn.Dropout(0.1)
    ''', select=["DRP701"])
    assert got == [("DRP701", 8)]


def test_dpo_in_code_with_default_disable_dropout_is_silent(tmp_path):
    assert _codes(tmp_path, '''
        from peft import LoraConfig
        from trl import DPOConfig, DPOTrainer
        peft_config = LoraConfig(r=16, lora_dropout=0.05)
        trainer = DPOTrainer(model=model, args=DPOConfig(output_dir="o"), peft_config=peft_config)
    ''', select=["DRP702"]) == []


def test_functional_dropout_fixes_produce_valid_code(tmp_path):
    import ast

    text = ("import torch\nimport torch.nn.functional as F\nclass M(torch.nn.Module):\n    def forward(self, x):\n"
            "        x = F.dropout(x, 0.1)\n        return F.dropout(x, 0.1, training=True)\n")
    write_files(tmp_path, [("m.py", text)])
    findings = [f for f in audit([str(tmp_path)]) if f.code == "DRP600"]
    assert len(findings) == 2
    edits = sorted((e for f in findings for e in f.fix.edits), key=lambda e: -e.start)
    for e in edits:
        text = text[:e.start] + e.replacement + text[e.end:]
    assert "F.dropout(x, 0.1, training=self.training)" in text
    assert "F.dropout(x, 0.1, training=self.training)\n        return F.dropout(x, 0.1, training=self.training)" in text
    ast.parse(text)
    assert all(f.fix.applicability == "unsafe" for f in findings)
