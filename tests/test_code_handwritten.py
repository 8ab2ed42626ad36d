"""Hand-written dropout (DRP530-533, issue #26): the scaling judged in training and eval
together, a manual (1-p) on top of the built-in, the keep mask's shape and its probability.
Each case is a small reproduction; the silent ones come from correct public code (timm's
drop_path, x-transformers' layer dropout, open-instruct's test masks, the textbook form)."""

from __future__ import annotations

import textwrap

from tests.conftest import audit, write_files


def _run(tmp_path, text, select=("DRP530", "DRP531", "DRP532", "DRP533"), name="layers.py"):
    write_files(tmp_path, [(name, textwrap.dedent(text))])
    return sorted((f.code, f.span.line) for f in audit([str(tmp_path)], select=select) if f.code in select)


def test_530_double_scaling_as_a_conditional_expression(tmp_path):
    assert _run(tmp_path, '''
        import torch
        def dropout(x, p, training):
            mask = (torch.rand_like(x) > p).float()
            return x * mask / (1 - p) if training else x * (1 - p)
    ''') == [("DRP530", 5)]


def test_530_both_consistent_forms_are_silent(tmp_path):
    assert _run(tmp_path, '''
        import torch
        import torch.nn as nn

        class Inverted(nn.Module):
            def __init__(self, p):
                super().__init__()
                self.p = p
            def forward(self, x):
                if self.training:
                    keep = 1 - self.p
                    return x * torch.bernoulli(torch.full_like(x, keep)) / keep
                return x

        class Textbook(nn.Module):
            def __init__(self, p):
                super().__init__()
                self.p = p
            def forward(self, x):
                if not self.training:
                    return x * (1 - self.p)
                return x * (torch.rand_like(x) > self.p).float()
    ''') == []


def test_530_neither_scaled_nor_rescaled(tmp_path):
    assert _run(tmp_path, '''
        import torch
        import torch.nn as nn
        class MyDropout(nn.Module):
            def __init__(self, p):
                super().__init__()
                self.p = p
            def forward(self, x):
                if self.training:
                    return x * (torch.rand_like(x) > self.p).float()
                return x
    ''') == [("DRP530", 10)]


def test_a_hand_written_layer_without_the_word_drop_is_read(tmp_path):
    """`bernoulli` marks a file as worth parsing (sources.PYTHON_MARKERS) like `drop` does."""
    assert _run(tmp_path, '''
        import torch
        def noise(x, p, training):
            if training:
                return x * torch.bernoulli(torch.full_like(x, 1 - p)) / (1 - p)
            return x * (1 - p)
    ''') == [("DRP530", 6)]


def test_530_without_a_training_branch_the_caller_decides(tmp_path):
    """timm's drop_path: the caller checks `self.training`; no eval side to judge here."""
    assert _run(tmp_path, '''
        def drop_path(x, drop_prob: float = 0., training: bool = False, scale_by_keep: bool = True):
            if drop_prob == 0. or not training:
                return x
            keep_prob = 1 - drop_prob
            shape = (x.shape[0],) + (1,) * (x.ndim - 1)
            random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
            if keep_prob > 0.0 and scale_by_keep:
                random_tensor.div_(keep_prob)
            return x * random_tensor

        def mask_only(x, p):
            return x * (torch.rand_like(x) > p).float()
    ''') == []


def test_531_rescale_in_an_eval_method_of_the_same_class(tmp_path):
    assert _run(tmp_path, '''
        import torch.nn as nn
        class Net(nn.Module):
            def __init__(self, cfg):
                super().__init__()
                self.drop = nn.Dropout(cfg.dropout)
            def forward(self, x):
                return self.drop(x)
            def predict(self, x):
                return self.forward(x) * (1.0 - cfg.dropout)
    ''') == [("DRP531", 10)]


def test_531_other_factors_are_silent(tmp_path):
    assert _run(tmp_path, '''
        import torch.nn as nn
        import torch.nn.functional as F
        class Net(nn.Module):
            def __init__(self, p):
                super().__init__()
                self.drop = nn.Dropout(p)
            def forward(self, x, beta):
                return self.drop(x) * (1 - beta) + F.dropout(x, 0.1, self.training) * 0.9
    ''') == []


def test_532_shape_tuple_to_legacy_constructors(tmp_path):
    assert _run(tmp_path, '''
        import torch
        def drop_path(x, keep):
            noise = torch.FloatTensor((x.size(0), 1, 1, 1))
            noise.bernoulli_(keep)
            mask = torch.tensor([x.shape[0], 1]).bernoulli_(keep)
            ok = torch.FloatTensor(x.size(0), 1, 1, 1).bernoulli_(keep)
            return x / keep * noise * mask * ok
    ''') == [("DRP532", 4), ("DRP532", 6)]


def test_532_data_tensors_are_silent(tmp_path):
    """open-instruct's tests build masks from literal rows: data, not a shape."""
    assert _run(tmp_path, '''
        import torch
        mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        keep_mask = torch.tensor((0, 1, 1, 0))
        sizes = torch.tensor((b, t))
        mask_tensor = torch.tensor([mask_token, mask_token]).unsqueeze(0)
        drop_ids = torch.tensor([pad_id, bos_idx])
    ''') == []


def test_533_rand_lower_than_the_drop_rate_with_inverted_scaling(tmp_path):
    assert _run(tmp_path, '''
        import torch
        import torch.nn as nn
        class MyDropout(nn.Module):
            def __init__(self, p=0.1):
                super().__init__()
                self.p = p
            def forward(self, x):
                if not self.training:
                    return x
                mask = (torch.rand(x.shape) < self.p).float()
                return mask * x / (1.0 - self.p)
    ''') == [("DRP533", 11)]


def test_533_drop_decisions_and_consistent_keep_names_are_silent(tmp_path):
    """`if random() < layer_dropout: continue` drops with probability p (x-transformers);
    a keep probability used as divisor is consistent whatever its name."""
    assert _run(tmp_path, '''
        import torch
        from random import random
        def layers(x, blocks, layer_dropout, training):
            for block in blocks:
                if training and layer_dropout > 0. and random() < layer_dropout:
                    continue
                x = block(x)
            return x
        def keep_units(x, p):
            mask = torch.bernoulli(torch.full_like(x, p))
            return x * mask / p
    ''') == []


def test_drop_flags_and_coin_flips_are_no_keep_masks(tmp_path):
    """The wild sets' DRP533 false positives (#31): a comparison stored under a drop name, or a
    scalar coin flip that only decides a branch, marks what is dropped; one that multiplies is
    still a keep mask drawn with the drop rate (ai-toolkit's LoKr)."""
    from tests.conftest import audit, write_files

    flags = '''import random
import torch


class Strategy:
    def __init__(self, l_dropout_rate, caption_dropout_rate, inpaint_dropout):
        self.l_dropout_rate = l_dropout_rate
        self.caption_dropout_rate = caption_dropout_rate
        self.inpaint_dropout = inpaint_dropout

    def drop(self, lg_out, caption):
        for i in range(lg_out.shape[0]):
            drop_l = self.l_dropout_rate > 0.0 and random.random() < self.l_dropout_rate
            if drop_l:
                lg_out[i] = torch.zeros_like(lg_out[i])
        is_drop_out = self.caption_dropout_rate > 0 and random.random() < self.caption_dropout_rate
        if is_drop_out:
            caption = ""
        do_dropout = random.random() < self.inpaint_dropout if self.inpaint_dropout > 0.0 else False
        use_it = random.random() < self.inpaint_dropout
        return lg_out, caption, do_dropout, use_it
'''
    write_files(tmp_path, [("flags.py", flags)])
    assert [f.code for f in audit([str(tmp_path)], select=("DRP533",))] == []
    lokr = flags.replace("        return lg_out, caption, do_dropout, use_it\n",
                         "        drop = torch.rand(lg_out.size(0)) < self.l_dropout_rate\n"
                         "        lg_out *= drop.view(-1, 1)\n        return lg_out\n")
    write_files(tmp_path, [("flags.py", lokr)])
    assert [(f.code, f.span.line) for f in audit([str(tmp_path)], select=("DRP533",))] == [("DRP533", 21)]


def test_531_needs_the_rescale_in_eval_only(tmp_path):
    """Wild false positives (#31): RecBole's RaCT multiplies in both modes (classic dropout's
    scale, consistent between train and eval), and fairseq's pos_conv init computes
    `sqrt(4 * (1 - dropout) / ...)` in __init__; NLLB-MoE's eval-only `*= 1 - p` stays reported."""
    both = _run(tmp_path, '''
        import torch.nn as nn
        import torch.nn.functional as F
        import math
        class Net(nn.Module):
            def __init__(self, dropout, dim):
                super().__init__()
                self.drop_out = dropout
                self.drop = nn.Dropout(dropout)
                std = math.sqrt((4 * (1.0 - dropout)) / dim)
                self.fc = nn.Linear(dim, dim)
                nn.init.normal_(self.fc.weight, mean=0, std=std)
            def forward(self, t):
                return F.dropout(t, self.drop_out, training=self.training) * (1 - self.drop_out)
    ''')
    assert both == []
    eval_only = _run(tmp_path, '''
        import torch.nn as nn
        class Moe(nn.Module):
            def __init__(self, moe_token_dropout):
                super().__init__()
                self.moe_token_dropout = moe_token_dropout
                self.token_dropout = nn.Dropout(moe_token_dropout)
            def forward(self, h):
                if self.training:
                    h = self.token_dropout(h)
                else:
                    h *= 1 - self.moe_token_dropout
                return h
    ''')
    assert eval_only == [("DRP531", 12)]


def test_530_a_mask_that_swaps_in_a_replacement_needs_no_scaling(tmp_path):
    """OneTrainer's OFT dropout keeps a rotation block or swaps in the identity: nothing is zeroed,
    so there is nothing to scale back; zeroing the same blocks without scaling stays DRP530."""
    oft = '''
        import torch
        import torch.nn as nn
        class MultiplicativeDropout(nn.Module):
            def __init__(self, p=0.0):
                super().__init__()
                self.p = p
            def forward(self, x):
                if self.training and self.p > 0:
                    D, H, _ = x.shape
                    stochastic_mask = torch.empty(D, 1, 1).bernoulli_(p=1.0 - self.p)
                    eye_matrix = torch.eye(H).repeat(D, 1, 1)
                    x = stochastic_mask * x + (1 - stochastic_mask) * eye_matrix
                return x
    '''
    assert _run(tmp_path, oft) == []
    zeroed = oft.replace("x = stochastic_mask * x + (1 - stochastic_mask) * eye_matrix", "x = stochastic_mask * x")
    assert [c for c, _ in _run(tmp_path, zeroed)] == ["DRP530"]


def test_a_drop_flag_built_as_a_tensor_of_coin_flips_is_a_drop_mask(tmp_path):
    """lerobot's GR00T processor: `drop_state = torch.tensor([random.random() < p ...]).view(b, 1, 1)`
    then `state.masked_fill(drop_state, 0)` drops with probability p, as it should."""

    src = ("import random\nimport torch\n\n\nclass Processor:\n    def __init__(self, state_dropout_prob=0.1):\n"
           "        self.state_dropout_prob = state_dropout_prob\n\n    def __call__(self, state, bsz):\n"
           "        drop_state = torch.tensor([random.random() < self.state_dropout_prob for _ in range(bsz)],\n"
           "                                  dtype=torch.bool).view(bsz, 1, 1)\n"
           "        return state.masked_fill(drop_state, 0)\n")
    assert _drp533(tmp_path, "processor.py", src) == []
    kept = src.replace("return state.masked_fill(drop_state, 0)", "return state * drop_state")
    assert _drp533(tmp_path, "processor.py", kept) == ["DRP533"]


def test_a_keep_mask_of_coin_flips_indexed_into_a_product_is_judged_as_a_keep_mask(tmp_path):
    """OneTrainer: `mask = torch.tensor([rand.random() > p for _ in range(b)]).float()` then
    `x * mask[:, None, None]` keeps with probability 1-p, as it should; the name containing
    "dropout" does not make it a drop mask, because it multiplies."""

    src = ("import random\nimport torch\n\n\ndef encode(x, text_encoder_dropout_probability, batch_size):\n"
           "    dropout_text_encoder_mask = (torch.tensor(\n"
           "        [random.random() > text_encoder_dropout_probability for _ in range(batch_size)])).float()\n"
           "    return x * dropout_text_encoder_mask[:, None, None]\n")
    assert _drp533(tmp_path, "model.py", src) == []
    wrong = src.replace("random.random() >", "random.random() <")
    assert _drp533(tmp_path, "model.py", wrong) == ["DRP533"]


_GEN = '''
        import torch
        import torch.nn as nn
        class Gen(nn.Module):
            def __init__(self, num_classes, cond_drop_rate=0.1):
                super().__init__()
                self.num_classes = num_classes
                self.cond_drop_rate = cond_drop_rate'''


def test_a_where_condition_is_read_by_which_branch_holds_the_original(tmp_path):
    """VAR's classifier-free guidance: `label_B = torch.where(torch.rand(B) < p, num_classes,
    label_B)` takes the null class where the draw is under p, so it drops labels with
    probability p, right as written; so do `masked_fill(rand < p, v)` and a flag named `mask`
    whose use swaps in the replacement. With the original as the branch taken where the draw is
    under p, the same comparison keeps with probability p: still reported, also through `~`
    and under a name that says drop."""
    good = _GEN + '''
            def forward(self, label_B, emb):
                B = label_B.shape[0]
                label_B = torch.where(torch.rand(B, device=label_B.device) < self.cond_drop_rate, self.num_classes, label_B)
                kept = torch.where(torch.rand(B) < self.cond_drop_rate, self.num_classes, label_B)
                emb = emb.masked_fill((torch.rand(B) < self.cond_drop_rate)[:, None], 0.0)
                mask = torch.rand(B) < self.cond_drop_rate
                emb = torch.where(mask[:, None], torch.zeros_like(emb), emb)
                return label_B, kept, emb
    '''
    assert _run(tmp_path, good) == []
    bad = _GEN + '''
            def forward(self, labels, null, emb):
                B = labels.shape[0]
                labels = torch.where(torch.rand(B) < self.cond_drop_rate, labels, self.num_classes)
                either = torch.where(torch.rand(B) < self.cond_drop_rate, labels, null)
                flipped = torch.where(~(torch.rand(B) < self.cond_drop_rate), self.num_classes, labels)
                drop_ids = torch.rand(B) < self.cond_drop_rate
                emb = torch.where(drop_ids[:, None], emb, torch.zeros_like(emb))
                return labels, either, flipped, emb
    '''
    assert _run(tmp_path, bad) == [("DRP533", 11), ("DRP533", 12), ("DRP533", 13), ("DRP533", 14)]


def test_a_blend_is_read_like_a_selection(tmp_path):
    """MAR's label drop: `m = rand(B) < p` then `class_embedding = m * fake + (1 - m) *
    class_embedding` takes the fake latent where the draw is under p: labels dropped with
    probability p, right as written, although the flag multiplies. With the original on the flag's
    side it keeps with probability p: reported."""
    src = ("import torch\nimport torch.nn as nn\n\n\nclass MAR(nn.Module):\n"
           "    def forward(self, class_embedding, bsz):\n"
           "        if self.training:\n"
           "            drop_latent_mask = torch.rand(bsz) < self.label_drop_prob\n"
           "            drop_latent_mask = drop_latent_mask.unsqueeze(-1).to(class_embedding.dtype)\n"
           "            class_embedding = drop_latent_mask * self.fake_latent + (1 - drop_latent_mask) * class_embedding\n"
           "        return class_embedding\n")
    assert _drp533(tmp_path / "a", "model.py", src) == []
    swapped = src.replace("drop_latent_mask * self.fake_latent + (1 - drop_latent_mask) * class_embedding",
                          "(1 - drop_latent_mask) * self.fake_latent + drop_latent_mask * class_embedding")
    assert _drp533(tmp_path / "b", "model.py", swapped) == ["DRP533"]


def test_indices_of_the_marked_units_are_read_by_their_name(tmp_path):
    """LAVIS' point-cloud dropout: `drop_idx = np.where(np.random.random(n) <= dropout_ratio)[0]`,
    then those points are overwritten: the indices of what is dropped, with probability
    dropout_ratio, right as written. Named as the points kept, the same draw keeps with the
    drop rate: reported."""
    src = ("import numpy as np\n\n\ndef random_point_dropout(batch_pc, max_dropout_ratio=0.875):\n"
           "    for b in range(batch_pc.shape[0]):\n"
           "        dropout_ratio = np.random.random() * max_dropout_ratio\n"
           "        drop_idx = np.where(np.random.random((batch_pc.shape[1])) <= dropout_ratio)[0]\n"
           "        if len(drop_idx) > 0:\n"
           "            batch_pc[b, drop_idx, :] = batch_pc[b, 0, :]\n"
           "    return batch_pc\n")
    assert _drp533(tmp_path / "a", "ulip.py", src) == []
    kept = src.replace("drop_idx", "keep_idx").replace("batch_pc[b, keep_idx, :] = batch_pc[b, 0, :]",
                                                        "batch_pc[b] = batch_pc[b, keep_idx, :].mean(0)")
    assert _drp533(tmp_path / "b", "ulip.py", kept) == ["DRP533"]


def _drp533(tmp_path, name: str, text: str) -> list:
    """DRP533's codes on one file written afresh."""
    from tests.conftest import audit, write_files

    write_files(tmp_path, [(name, text)])
    return [f.code for f in audit([str(tmp_path)], select=("DRP533",))]
