"""Issue #31.1: training configs written in Python (OpenMMLab dict configs, detectron2
LazyConfig) are read statically: their dropout keys are settings with exact spans and the keys
that load pretrained weights say whether they fine-tune."""

from __future__ import annotations

import json

from tests.conftest import audit, write_files

MM_FT = """_base_ = ['../_base_/models/vit-base-p16.py']
model = dict(
    backbone=dict(
        type='VisionTransformer',
        drop_path_rate=0.1,
        drop_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint='https://x/vit.pth', prefix='backbone')),
    head=dict(type='VisionTransformerClsHead', num_classes=100, dropout=0.45))
train_cfg = dict(by_epoch=True, max_epochs=100)
"""

MM_BASE = """model = dict(
    type='ImageClassifier',
    backbone=dict(type='VisionTransformer', arch='b', drop_rate=0.1, drop_path_rate=1.5),
    neck=None)
"""

D2 = """from .mask_rcnn_vitdet_b_100ep import dataloader, model, train, optimizer

train.init_checkpoint = "detectron2://ImageNetPretrained/MAE/mae_pretrain_vit_huge_p14to16.pth"
model.backbone.net.depth = 32
model.backbone.net.drop_path_rate = 0.5
model.roi_heads.box_head.dropout = 0.9
"""


def test_openmmlab_values_are_judged_where_written(tmp_path):
    write_files(tmp_path, [("configs/vit/vit_ft.py", MM_FT), ("configs/_base_/models/vit-base-p16.py", MM_BASE)])
    found = sorted((f.path.rsplit("/", 1)[-1], f.code, f.span.line, f.span.column) for f in audit([str(tmp_path)]))
    # init_cfg type=Pretrained states a fine-tune: the 0.6 is judged by the fine-tuning limits;
    # the head's 0.45 is a classifier's (limit 0.5); the base file's 1.5 is out of range
    assert found == [("vit-base-p16.py", "DRP100", 3, 85), ("vit_ft.py", "DRP200", 6, 19)]


def test_without_pretrained_weights_the_limits_only_note(tmp_path):
    write_files(tmp_path, [("vit_scratch.py", MM_FT.replace("init_cfg=dict(type='Pretrained', "
                                                             "checkpoint='https://x/vit.pth', prefix='backbone')",
                                                             "init_cfg=None"))])
    assert [(f.code, f.severity) for f in audit([str(tmp_path)])] == [("DRP202", "info")]


def test_detectron2_overrides_are_settings(tmp_path, run_cli):
    write_files(tmp_path, [("ViTDet/mask_rcnn_vitdet_h_75ep.py", D2)])
    found = [(f.code, f.span.line) for f in audit([str(tmp_path)])]
    assert found == [("DRP200", 6)]  # a box head's 0.9 dropout in a fine-tune; drop path 0.5 is within
    code, out = run_cli("plan", "--format", "json", str(tmp_path))
    (plan,) = json.loads(out)
    assert plan["dialect"] == "detectron2 LazyConfig"
    assert plan["starts_from"].startswith("train.init_checkpoint")
    assert [(e["site"], e["role"]) for e in plan["entries"]] == [
        ("model.backbone.net.drop_path_rate", "stochastic-depth"), ("model.roi_heads.box_head.dropout", "classifier")]


def test_lazycall_keywords_are_settings(tmp_path):
    write_files(tmp_path, [("lazy.py", "from detectron2.config import LazyCall as L\nfrom x import ViT\n\n"
                            "model = L(ViT)(img_size=1024, drop_path_rate=1.2)\n")])
    assert [(f.code, f.span.line, f.span.column) for f in audit([str(tmp_path)])] == [("DRP100", 4, 46)]


def test_ordinary_code_building_a_dict_is_no_config(tmp_path):
    write_files(tmp_path, [("train.py", "import torch.nn as nn\n\nopts = dict(dropout=1.5)\n"
                            "model = nn.Sequential(nn.Dropout(0.1))\n")])
    assert audit([str(tmp_path)]) == []


def test_a_probe_forward_in_eval_restored_is_no_freeze(tmp_path):
    """mmpretrain's HybridEmbed puts its backbone in eval for one probe forward and back."""
    write_files(tmp_path, [("embed.py", "import torch.nn as nn\n\n\nclass HybridEmbed(nn.Module):\n"
                            "    def __init__(self, backbone, drop=0.1):\n        super().__init__()\n"
                            "        training = backbone.training\n        backbone.eval()\n"
                            "        backbone.train(training)\n        self.drop = nn.Dropout(drop)\n")])
    assert [f.code for f in audit([str(tmp_path)])] == []


def test_a_plain_object_has_no_train_to_undo_the_freeze(tmp_path):
    write_files(tmp_path, [("detector.py", "import torch\n\n\nclass HEDdetector:\n    def __init__(self):\n"
                            "        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 1), torch.nn.Dropout(0.1)).eval()\n")])
    assert audit([str(tmp_path)]) == []


def test_a_replaced_train_keeps_the_freeze(tmp_path):
    """CompVis latent diffusion: `self.first_stage_model.train = disabled_train`."""
    write_files(tmp_path, [("ddpm.py", "import torch.nn as nn\n\n\ndef disabled_train(self, mode=True):\n    return self\n\n\n"
                            "class LatentDiffusion(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                            "        self.instantiate_first_stage()\n\n    def instantiate_first_stage(self):\n"
                            "        model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))\n"
                            "        self.first_stage_model = model.eval()\n"
                            "        self.first_stage_model.train = disabled_train\n")])
    assert audit([str(tmp_path)]) == []


MM_CHILD = """_base_ = ['../_base_/models/vit-base-p16.py', '../_base_/default_runtime.py']
model = dict(backbone=dict(drop_rate=0.6))
"""
MM_RUNTIME = "default_scope = 'mmpretrain'\nload_from = 'https://download.openmmlab.com/vit-b.pth'\n"


def test_a_base_that_loads_pretrained_weights_makes_its_children_fine_tunes(tmp_path, run_cli):
    write_files(tmp_path, [("configs/vit/vit_ft.py", MM_CHILD), ("configs/_base_/default_runtime.py", MM_RUNTIME),
                           ("configs/_base_/models/vit-base-p16.py", MM_BASE)])
    found = sorted((f.path.rsplit("/", 1)[-1], f.code, f.span.line) for f in audit([str(tmp_path)]))
    # the child's 0.6 is a fine-tune's (load_from, two files up the chain); the base's 1.5 stays in the base
    assert found == [("vit-base-p16.py", "DRP100", 3), ("vit_ft.py", "DRP200", 2)]
    code, out = run_cli("plan", "--format", "json", str(tmp_path / "configs/vit/vit_ft.py"))
    (plan,) = json.loads(out)
    assert "inherited from ../_base_/default_runtime.py" in plan["starts_from"]


def test_a_child_that_clears_load_from_trains_from_scratch(tmp_path):
    write_files(tmp_path, [("configs/vit/vit.py", MM_CHILD + "load_from = None\n"),
                           ("configs/_base_/default_runtime.py", MM_RUNTIME),
                           ("configs/_base_/models/vit-base-p16.py", MM_BASE)])
    found = sorted((f.path.rsplit("/", 1)[-1], f.code, f.severity) for f in audit([str(tmp_path)]))
    assert ("vit.py", "DRP202", "info") in found and not any(c == "DRP200" for _, c, _ in found)


def test_read_base_and_detectron2_imports_are_bases(tmp_path):
    new_style = ("from mmengine.config import read_base\n\nwith read_base():\n"
                 "    from .._base_.default_runtime import *\n\nmodel = dict(type='ImageClassifier', "
                 "backbone=dict(type='ViT', drop_rate=0.6))\n")
    derived = D2.replace('train.init_checkpoint = "detectron2://ImageNetPretrained/MAE/mae_pretrain_vit_huge_p14to16.pth"\n', "")
    base = "from detectron2.config import LazyCall as L\ntrain = dict(init_checkpoint='detectron2://x.pth')\n"
    write_files(tmp_path, [("configs/vit/vit_new.py", new_style), ("configs/_base_/default_runtime.py", MM_RUNTIME),
                           ("ViTDet/mask_rcnn_vitdet_h_75ep.py", derived), ("ViTDet/mask_rcnn_vitdet_b_100ep.py", base)])
    found = sorted((f.path.rsplit("/", 1)[-1], f.code, f.severity) for f in audit([str(tmp_path)]))
    assert found == [("mask_rcnn_vitdet_h_75ep.py", "DRP200", "warning"), ("vit_new.py", "DRP200", "warning")]


def test_a_plain_base_in_a_sibling_module_has_no_train(tmp_path):
    """BasicSR's SRModel(BaseModel): base_model.py's `class BaseModel():` holds networks and is no
    nn.Module, so nothing calls train() on SRModel; a base that is an nn.Module there still counts."""
    sr = ("from .base_model import BaseModel\n\n\nclass SRModel(BaseModel):\n    def __init__(self, opt):\n"
          "        super().__init__(opt)\n        self.init_training_settings()\n\n"
          "    def init_training_settings(self):\n        self.net_g_ema.eval()\n")
    write_files(tmp_path, [("models/__init__.py", ""), ("models/sr_model.py", sr),
                           ("models/base_model.py", "import torch\n\n\nclass BaseModel():\n    def __init__(self, opt):\n"
                                                    "        self.opt = opt\n")])
    assert audit([str(tmp_path)]) == []
    write_files(tmp_path, [("models/base_model.py", "import torch.nn as nn\n\n\nclass BaseModel(nn.Module):\n"
                                                    "    pass\n")])
    assert [(f.code, f.severity) for f in audit([str(tmp_path)])] == [("DRP607", "info")]


def test_a_model_named_base_from_an_installed_package_needs_a_forward(tmp_path):
    """GFPGAN's `GFPGANModel(BaseModel)`, BaseModel from an installed basicsr (not in the tree):
    the name alone says "model", but a class without forward that holds networks is BasicSR's
    model object, which no train() reaches. With a forward it runs as a module: still reported."""
    gfpgan = ("from basicsr.models.base_model import BaseModel\n\n\nclass GFPGANModel(BaseModel):\n"
              "    def __init__(self, opt):\n        super().__init__(opt)\n        self.net_g_ema.eval()\n")
    write_files(tmp_path / "a", [("gfpgan_model.py", gfpgan)])
    assert audit([str(tmp_path / "a")]) == []
    forward = gfpgan + "\n    def forward(self, x):\n        return self.net_g(x)\n"
    write_files(tmp_path / "b", [("gfpgan_model.py", forward)])
    assert [(f.code, f.severity) for f in audit([str(tmp_path / "b")])] == [("DRP607", "info")]
    # the forward may sit below the base read by name: Transformers' BltModel(BltPreTrainedModel)
    blt = ("from transformers import PreTrainedModel\n\n\nclass BltPreTrainedModel(PreTrainedModel):\n    pass\n\n\n"
           "class BltModel(BltPreTrainedModel):\n    def __init__(self, config):\n        super().__init__(config)\n"
           "        self.patcher.eval()\n\n    def forward(self, x):\n        return self.patcher(x)\n")
    write_files(tmp_path / "c", [("modeling_blt.py", blt)])
    assert [(f.code, f.severity) for f in audit([str(tmp_path / "c")])] == [("DRP607", "info")]


def test_a_module_put_in_eval_again_before_each_use_stays_frozen(tmp_path):
    """mmagic's LightCNNFeatureLoss puts its feature network in eval in __init__ and again at the
    top of forward: whatever train() switched in between, the network runs frozen. Without the
    second eval() the freeze is undone by the first train()."""
    loss = ("import torch.nn as nn\n\n\nclass FeatureLoss(nn.Module):\n    def __init__(self):\n"
            "        super().__init__()\n        self.model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))\n"
            "        self.model.eval()\n\n    def forward(self, pred, gt):\n        self.model.eval()\n"
            "        return (self.model(pred) - self.model(gt)).abs().mean()\n")
    write_files(tmp_path / "a", [("feature_loss.py", loss)])
    assert audit([str(tmp_path / "a")], select=("DRP607",)) == []
    write_files(tmp_path / "b", [("feature_loss.py", loss.replace("        self.model.eval()\n        return", "        return"))])
    assert [f.code for f in audit([str(tmp_path / "b")], select=("DRP607",))] == ["DRP607"]


def test_openmmlab_dropout_ratio_is_a_heads(tmp_path, run_cli):
    """mmaction2's C3D keeps dropout_ratio=0.5 on its fc6/fc7 (its backbone default) when fine-tuned
    from Sports-1M: OpenMMLab's dropout_ratio is the fully connected layers' dropout, a classifier's."""
    c3d = ("model = dict(type='Recognizer3D', backbone=dict(type='C3D', pretrained='https://x/c3d_sports1m.pth',\n"
           "    dropout_ratio=0.5), cls_head=dict(type='I3DHead', dropout_ratio=0.9))\n")
    write_files(tmp_path, [("c3d_sports1m_pretrained.py", c3d)])
    assert [(f.code, f.span.line) for f in audit([str(tmp_path)])] == [("DRP200", 2)]  # only the head's 0.9
    code, out = run_cli("plan", "--format", "json", str(tmp_path))
    assert {e["role"] for e in json.loads(out)[0]["entries"]} == {"classifier"}


def test_a_freeze_whose_module_mode_changes_nothing_is_passed_over(tmp_path):
    """Latte's FrozenCLIPEmbedder: CLIPTextModel has no dropout by default and no batch norm
    (generate/batch_norm_types.py), so undoing its eval() changes nothing; a ResNet (batch norm)
    or a T5 (dropout_rate 0.1) still counts."""
    clip = ("import torch.nn as nn\nfrom transformers import CLIPTextModel\n\n\nclass FrozenCLIPEmbedder(nn.Module):\n"
            "    def __init__(self, path):\n        super().__init__()\n"
            "        self.transformer = CLIPTextModel.from_pretrained(path)\n        self.freeze()\n\n"
            "    def freeze(self):\n        self.transformer = self.transformer.eval()\n")
    write_files(tmp_path, [("clip.py", clip)])
    assert audit([str(tmp_path)]) == []
    for cls in ("ResNetModel", "T5EncoderModel"):
        write_files(tmp_path, [("clip.py", clip.replace("CLIPTextModel", cls))])
        assert [(f.code, f.severity) for f in audit([str(tmp_path)])] == [("DRP607", "info")], cls


def _found(tmp_path, name: str, text: str) -> list:
    """(code, severity) of every finding on one file written afresh."""
    write_files(tmp_path, [(name, text)])
    return [(f.code, f.severity) for f in audit([str(tmp_path)])]


def test_a_frozen_library_model_without_dropout_is_passed_over(tmp_path):
    """PixArt's HEDdetector freezes diffusers' AutoencoderKL (dropout 0.0 in every block,
    GroupNorm; knowledge/data/library_models.json) or the VAE passed in its place: its mode
    changes nothing. The same class name from another package stays a finding."""
    hed = ("import torch.nn as nn\nfrom diffusers.models import AutoencoderKL\n\n\nclass HEDdetector(nn.Module):\n"
           "    def __init__(self, vae=None):\n        super().__init__()\n        if vae is None:\n"
           "            self.vae = AutoencoderKL.from_pretrained('sd-vae')\n        else:\n            self.vae = vae\n"
           "        self.vae.eval()\n        self.vae.requires_grad_(False)\n")
    assert _found(tmp_path, "hed.py", hed) == []
    assert _found(tmp_path, "hed.py", hed.replace("from diffusers.models import", "from mylib import")) == [
        ("DRP607", "info")]


def test_an_eval_after_loading_weights_that_go_on_training_is_no_freeze(tmp_path):
    """mmf's ALBEF ViT and its end-to-end Faster R-CNN: `self.vit.load_state_dict(...)` then
    `self.vit.eval()`, weights still trained. train() switching it back is what training wants;
    the advice to re-freeze it would be wrong. With its weights frozen too it is a freeze."""
    enc = ("import torch\nimport torch.nn as nn\n\n\nclass VitEncoder(nn.Module):\n    def __init__(self, path):\n"
           "        super().__init__()\n        self.vit = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1))\n"
           "        self.vit.load_state_dict(torch.load(path))\n        self.vit.eval()\n")
    assert _found(tmp_path, "enc.py", enc) == []
    for freeze in ("        self.vit.requires_grad_(False)\n",
                   "        for p in self.vit.parameters():\n            p.requires_grad = False\n",
                   "        requires_grad(self.vit, False)\n"):
        assert [code for code, _ in _found(tmp_path, "enc.py", enc + freeze)] == ["DRP607"], freeze


def test_a_frozen_open_clip_vit_has_no_dropout_to_switch(tmp_path):
    """sgm's FrozenOpenCLIPEmbedder: `model, _, _ = open_clip.create_model_and_transforms(arch)`
    with arch defaulting to ViT-H-14, whose LayerNorm towers have no dropout (library_models.json
    "factories"), then frozen: undoing its eval() changes nothing. An architecture outside that
    list (RN50, with batch norm) stays a finding."""
    emb = ("import open_clip\nimport torch.nn as nn\n\n\nclass FrozenOpenCLIPEmbedder(nn.Module):\n"
           "    def __init__(self, arch='ViT-H-14', version='laion2b_s32b_b79k'):\n        super().__init__()\n"
           "        model, _, _ = open_clip.create_model_and_transforms(arch, pretrained=version)\n"
           "        self.model = model\n        self.freeze()\n\n    def freeze(self):\n"
           "        self.model = self.model.eval()\n        for param in self.parameters():\n"
           "            param.requires_grad = False\n")
    assert _found(tmp_path, "emb.py", emb) == []
    assert _found(tmp_path, "emb.py", emb.replace("arch='ViT-H-14'", "arch='RN50'")) == [("DRP607", "info")]


END2END = """import torch.nn as nn


class TRTNMS(nn.Module):
    def forward(self, x):
        return x[:, :4]


class ORTNMS(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Identity()

    def forward(self, x):
        return self.drop(x)


class End2End(nn.Module):
    def __init__(self, model, max_wh=None):
        super().__init__()
        self.model = model
        self.patch_model = TRTNMS if max_wh is None else ORTNMS
        self.end2end = self.patch_model()
        self.end2end.eval()

    def forward(self, x):
        return self.end2end(self.model(x))
"""


def test_a_freeze_of_a_class_picked_at_run_time_is_moot_when_every_pick_is(tmp_path):
    """yolov7's End2End: `self.patch_model = ONNX_TRT if max_wh is None else ONNX_ORT`, then
    `self.end2end = self.patch_model(...)` and `self.end2end.eval()`: both NMS post-processors
    have neither dropout nor batch norm, so whichever is built, its mode changes nothing. One
    alternative with dropout (or batch norm) makes the freeze matter again."""
    assert _found(tmp_path, "experimental.py", END2END) == []
    inline = END2END.replace("self.end2end = self.patch_model()", "self.end2end = (TRTNMS if max_wh is None else ORTNMS)()")
    assert _found(tmp_path, "experimental.py", inline) == []
    for layer in ("nn.Dropout(0.1)", "nn.BatchNorm1d(4)"):
        bad = END2END.replace("self.drop = nn.Identity()", f"self.drop = {layer}")
        assert [code for code, _ in _found(tmp_path, "experimental.py", bad)] == ["DRP607"], layer
        assert [code for code, _ in _found(tmp_path, "experimental.py", bad.replace(
            "self.end2end = self.patch_model()", "self.end2end = (TRTNMS if max_wh is None else ORTNMS)()"))] == [
            "DRP607"], layer


TRACED = """import torch
import torch.nn as nn


class TracedModel(nn.Module):
    def __init__(self, model, size=640):
        super().__init__()
        self.model = model
        self.model.eval()
        traced = torch.jit.trace(self.model, torch.rand(1, 3, size, size), strict=False)
        traced.save("traced_model.pt")
        self.model = traced

    def forward(self, x):
        return self.model(x)
"""


def test_an_eval_of_a_module_the_class_then_replaces_is_no_freeze(tmp_path):
    """yolov7's TracedModel: `self.model.eval()`, then `self.model = torch.jit.trace(self.model,
    ...)`: the attribute holds the traced copy, whose ops were fixed in eval mode when traced, so
    no train() of the class undoes that eval(). A new value that still holds the module (a
    wrapper around it, the module moved), a copy that keeps the mode as a flag train() switches
    (scripted, deep-copied), or a new value only in another branch leaves the eval() a freeze."""
    assert _found(tmp_path, "torch_utils.py", TRACED) == []
    direct = TRACED.replace("        self.model = traced\n", "        self.model = torch.jit.trace(self.model, x)\n")
    assert _found(tmp_path, "torch_utils.py", direct) == []
    for kept in ("        self.model = nn.Sequential(self.model, nn.Identity())\n",
                 "        self.model = torch.jit.script(self.model)\n", "        self.model = deepcopy(self.model)\n",
                 "        self.model = self.model.to('cuda')\n", ""):
        bad = TRACED.replace("        self.model = traced\n", kept)
        assert _found(tmp_path, "torch_utils.py", bad) == [("DRP607", "info")], kept
    # transformers' BltModel: frozen in the if, `self.patcher = None` only in the else
    blt = ("import torch.nn as nn\n\n\nclass Blt(nn.Module):\n    def __init__(self, patcher, patch_in_forward):\n"
           "        super().__init__()\n        if patch_in_forward:\n            self.patcher = patcher\n"
           "            self.patcher.eval()\n            for p in self.patcher.parameters():\n"
           "                p.requires_grad = False\n        else:\n            self.patcher = None\n")
    assert _found(tmp_path, "torch_utils.py", blt) == [("DRP607", "info")]


AUTOSHAPE = """import torch
import torch.nn as nn


class autoShape(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model.eval()

    @torch.no_grad()
    def forward(self, imgs, size=640):
        return self.model(imgs)
"""

MODEL_EMA = """from copy import deepcopy

import torch


class ModelEma(torch.nn.Module):
    def __init__(self, model, decay=0.9997):
        super().__init__()
        self.module = deepcopy(model)
        self.module.eval()
        self.decay = decay

    def _update(self, model, update_fn):
        with torch.no_grad():
            for ema_v, model_v in zip(self.module.state_dict().values(), model.state_dict().values()):
                ema_v.copy_(update_fn(ema_v, model_v))

    def update(self, model):
        self._update(model, update_fn=lambda e, m: self.decay * e + (1.0 - self.decay) * m)
"""


def test_an_inference_only_wrapper_has_no_train_to_undo_its_eval(tmp_path):
    """yolov7's autoShape (`self.model = model.eval()`, forward under @torch.no_grad(): the
    torch.hub inference wrapper) and GroundingDINO's ModelEma (a deepcopy put in eval, no
    forward, state_dicts copied under no_grad): nothing of them runs with gradients, so no
    training loop's train() is there to undo the eval(). A forward with gradients, a method that
    runs the submodule with gradients, a framework base that may bring a forward, or weights
    frozen beside the eval (a teacher wrapper a parent trains around) keep the finding."""
    assert _found(tmp_path, "common.py", AUTOSHAPE) == []
    assert _found(tmp_path, "common.py", AUTOSHAPE.replace("@torch.no_grad()", "@torch.inference_mode()")) == []
    ema = tmp_path / "ema"  # beside common.py's findings below
    assert _found(ema, "utils.py", MODEL_EMA) == []
    for bad in (AUTOSHAPE.replace("    @torch.no_grad()\n", ""),
                AUTOSHAPE.replace("self.model = model.eval()\n",
                                  "self.model = model.eval()\n        self.model.requires_grad_(False)\n")):
        assert _found(tmp_path, "common.py", bad) == [("DRP607", "info")], bad
    for bad in (MODEL_EMA + "\n    def distill(self, x):\n        return self.module(x).sum()\n",
                MODEL_EMA.replace("torch.nn.Module", "BaseModule")):
        assert _found(ema, "utils.py", bad) == [("DRP607", "info")], bad


TRANSLATOR = """import torch
import torch.nn as nn


class Translator(nn.Module):
    def __init__(self, model, beam_size):
        super().__init__()
        self.model = model
        self.model.eval()
        self.beam_size = beam_size

    def _model_decode(self, trg_seq, enc_output):
        return self.model.decoder(trg_seq, enc_output)

    def translate_sentence(self, src_seq):
        with torch.no_grad():
            enc_output = self.model.encoder(src_seq)
            return self._model_decode(src_seq[:, :1], enc_output)
"""


def test_a_wrapper_whose_helpers_run_only_under_no_grad_is_inference_only(tmp_path):
    """attention-is-all-you-need's beam-search Translator: no forward, and its `_model_decode`
    runs `self.model.decoder` only when called from translate_sentence's `with torch.no_grad()`:
    nothing of it trains. The same helper also called from a method with gradients, or a
    public method that runs the model with gradients, keeps the finding."""
    assert _found(tmp_path, "Translator.py", TRANSLATOR) == []
    for extra in ("\n    def loss(self, src_seq):\n        return self._model_decode(src_seq, src_seq).sum()\n",
                  "\n    def score(self, src_seq):\n        return self.model.encoder(src_seq).sum()\n"):
        assert _found(tmp_path, "Translator.py", TRANSLATOR + extra) == [("DRP607", "info")], extra
