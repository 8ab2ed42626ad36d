"""The everyday forms of the eval-mode bugs (issue #26): a model the script builds and uses for
inference without eval() (DRP605), code inside functions (main() under `if __name__ ==
"__main__"`, train and evaluate in separate functions), and model classes in a sibling module,
each from a small reproduction."""

from __future__ import annotations

import json
import os
import textwrap

from auditor.checks.code import siblings
from tests.conftest import audit, write_files

MODEL_PY = '''
import torch
from torch import nn

class GPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tok = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.drop = nn.Dropout(cfg["drop_rate"])
        self.head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"])

    def forward(self, idx):
        return self.head(self.drop(self.tok(idx)))

def generate(model, idx, max_new_tokens):
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx)
        idx = torch.cat([idx, logits[:, -1:].argmax(-1)], dim=1)
    return idx
'''

CHAT_PY = '''
import torch
from model import GPTModel, generate

CONFIG = {"vocab_size": 50257, "emb_dim": 768, "drop_rate": 0.1}

def main():
    model = GPTModel(CONFIG)
    model.load_state_dict(torch.load("model.pth", weights_only=True))
    model.to("cuda")
    while True:
        prompt = input("> ")
        out = generate(model, encode(prompt), max_new_tokens=50)
        print(decode(out))

if __name__ == "__main__":
    main()
'''


def _run(tmp_path, files, select=("DRP605",)):
    write_files(tmp_path, [(name, textwrap.dedent(text)) for name, text in files])
    return sorted((os.path.basename(f.path), f.code, f.span.line, f.severity)
                  for f in audit([str(tmp_path)], select=tuple(select)) if f.code in select)


# --- DRP605: a built model used for inference without eval() -----------------------------------

def test_605_chat_app_with_the_model_class_and_generate_in_a_sibling_module(tmp_path):
    """The from-scratch book's chat app: GPTModel (drop_rate 0.1 in the script's config) and
    generate() live in model.py; the app never calls eval()."""
    assert _run(tmp_path, [("model.py", MODEL_PY), ("chat.py", CHAT_PY)]) == [("chat.py", "DRP605", 13, "warning")]


def test_605_eval_before_generating_is_silent(tmp_path):
    fixed = CHAT_PY.replace('    model.to("cuda")\n', '    model.to("cuda")\n    model.eval()\n')
    assert _run(tmp_path, [("model.py", MODEL_PY), ("chat.py", fixed)]) == []


def test_605_a_sibling_helper_that_switches_to_eval_itself_is_silent(tmp_path):
    helper = MODEL_PY.replace("def generate(model, idx, max_new_tokens):\n",
                              "def generate(model, idx, max_new_tokens):\n    model.eval()\n")
    assert _run(tmp_path, [("model.py", helper), ("chat.py", CHAT_PY)]) == []


def test_605_zero_rate_in_the_config_is_silent_and_an_unresolved_one_is_info(tmp_path):
    zero = CHAT_PY.replace('"drop_rate": 0.1', '"drop_rate": 0.0')
    assert _run(tmp_path / "z", [("model.py", MODEL_PY), ("chat.py", zero)]) == []
    loaded = CHAT_PY.replace('CONFIG = {"vocab_size": 50257, "emb_dim": 768, "drop_rate": 0.1}',
                             'CONFIG = json.load(open("config.json"))')
    assert _run(tmp_path / "u", [("model.py", MODEL_PY), ("chat.py", loaded)]) == [("chat.py", "DRP605", 13, "info")]


def test_605_helper_from_elsewhere_is_info(tmp_path):
    """generate() from an installed package may call eval() itself: said at info."""
    other = CHAT_PY.replace("from model import GPTModel, generate", "from model import GPTModel\nfrom llmlib import generate")
    assert _run(tmp_path, [("model.py", MODEL_PY), ("chat.py", other)]) == [("chat.py", "DRP605", 14, "info")]


def test_605_from_pretrained_is_in_eval_mode_until_train(tmp_path):
    script = '''
        import torch
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("gpt2")
        with torch.no_grad():
            out = model.generate(ids)
            logits = model(ids).logits
    '''
    assert _run(tmp_path, [("gen.py", script)], ("DRP605", "DRP602", "DRP604")) == []


def test_605_from_config_starts_in_train_mode(tmp_path):
    """transformers' from_config does not call eval(): the model is in train mode."""
    script = '''
        import torch
        from transformers import AutoModelForCausalLM, GPT2Config
        model = AutoModelForCausalLM.from_config(GPT2Config())
        model.load_state_dict(torch.load("sd.pt"))
        with torch.no_grad():
            out = model.generate(ids)
    '''
    assert _run(tmp_path, [("gen.py", script)]) == [("gen.py", "DRP605", 7, "info")]


def test_605_unpickled_model_is_info(tmp_path):
    script = '''
        import torch
        model = torch.load("model.pt", weights_only=False)
        with torch.no_grad():
            print(model(x))
    '''
    assert _run(tmp_path, [("infer.py", script)]) == [("infer.py", "DRP605", 5, "info")]


def test_605_a_model_without_dropout_is_silent(tmp_path):
    script = '''
        import torch
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
            def forward(self, x):
                return self.fc(x)
        net = Net()
        with torch.no_grad():
            print(net(x))
    '''
    assert _run(tmp_path, [("infer.py", script)]) == []


def test_605_the_model_handed_to_a_trainer_is_forgotten(tmp_path):
    """Trainer.training_step calls model.train() and evaluate() calls eval(): after the model
    is handed over, its mode is whatever that code left, not known here."""
    script = '''
        import torch
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop = nn.Dropout(0.2)
            def forward(self, x):
                return self.drop(x)
        net = Net()
        trainer = Trainer(model=net, args=args)
        trainer.train()
        with torch.no_grad():
            print(net(x))
    '''
    assert _run(tmp_path, [("t.py", script)]) == []


def test_605_handler_called_by_an_app_after_the_module_ran(tmp_path):
    """A web handler runs after the module body: it sees the model the module built."""
    script = '''
        import torch
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop = nn.Dropout(0.2)
            def forward(self, x):
                return self.drop(x)
        net = Net()
        net.load_state_dict(torch.load("w.pt"))

        @app.post("/predict")
        def predict(x):
            with torch.no_grad():
                return net(x)
    '''
    assert _run(tmp_path, [("serve.py", script)]) == [("serve.py", "DRP605", 16, "warning")]
    assert _run(tmp_path / "e", [("serve.py", script.replace('torch.load("w.pt"))', 'torch.load("w.pt"))\n        net.eval()'))]) == []


def test_605_in_a_notebook(tmp_path):
    cells = [textwrap.dedent(c) for c in ('''
        import torch
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop = nn.Dropout(0.3)
            def forward(self, x):
                return self.drop(x)
    ''', '''
        net = Net()
        net.load_state_dict(torch.load("w.pt"))
    ''', '''
        with torch.no_grad():
            print(net(x))
    ''')]
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": c.splitlines(True)} for c in cells],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    write_files(tmp_path, [("nb.ipynb", json.dumps(nb))])
    found = [(f.code, f.cell[0] if f.cell else None, f.severity) for f in audit([str(tmp_path)], select=("DRP605",))]
    assert found == [("DRP605", 3, "warning")]  # cells count from 1, as Jupyter does


def test_605_generate_after_training_a_built_model(tmp_path):
    """A script trains its own model (train mode from construction, no train() call) and
    then samples: DRP604 does not look at generate(), DRP602 needs a train() call."""
    script = '''
        import torch
        from torch import nn
        class GPT(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop = nn.Dropout(0.1)
            def forward(self, x):
                return self.drop(x)
            def generate(self, idx, n):
                return self(idx)
        model = GPT()
        opt = torch.optim.AdamW(model.parameters())
        for x in loader:
            model(x).sum().backward()
            opt.step()
        print(model.generate(idx, 10))
    '''
    assert _run(tmp_path, [("train.py", script)], ("DRP605", "DRP602", "DRP604")) == [
        ("train.py", "DRP605", 17, "warning")]


# --- interprocedural reach ----------------------------------------------------------------------

NET = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.drop = nn.Dropout(0.1)
    def forward(self, x):
        return self.drop(self.fc(x))
'''


def test_604_training_loop_in_main_and_a_no_grad_evaluate_function(tmp_path):
    script = NET + '''
@torch.no_grad()
def evaluate(net, data):
    return [net(x) for x in data]

def main():
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in loader:
        model(x).sum().backward()
        opt.step()
    evaluate(model, val)

if __name__ == "__main__":
    main()
'''
    assert _run(tmp_path, [("train.py", script)], ("DRP604", "DRP605")) == [("train.py", "DRP604", 15, "warning")]


def test_602_train_in_one_function_evaluate_in_another(tmp_path):
    script = NET + '''
def train_epoch(model, opt):
    model.train()
    for x in loader:
        model(x).sum().backward()
        opt.step()

def sample(model):
    with torch.no_grad():
        return model(prompt)

def main():
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        train_epoch(model, opt)
        sample(model)
    model.eval()

if __name__ == "__main__":
    main()
'''
    assert _run(tmp_path, [("train.py", script)], ("DRP602", "DRP604", "DRP605")) == [("train.py", "DRP602", 21, "warning")]
    fixed = script.replace("def sample(model):\n", "def sample(model):\n    model.eval()\n")
    assert _run(tmp_path / "f", [("train.py", fixed)], ("DRP602", "DRP604", "DRP605")) == []


def test_model_class_in_a_sibling_module_has_dropout(tmp_path):
    """DRP604's severity follows the sibling model.py: a warning with nn.Dropout there, silent
    without dropout."""
    train = '''
import torch
from model import Net

model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in loader:
    model(x).sum().backward()
    opt.step()
with torch.no_grad():
    out = model(val)
'''
    assert _run(tmp_path / "a", [("model.py", NET), ("train.py", train)], ("DRP604",)) == [
        ("train.py", "DRP604", 11, "warning")]
    plain = NET.replace("        self.drop = nn.Dropout(0.1)\n", "").replace("self.drop(self.fc(x))", "self.fc(x)")
    assert _run(tmp_path / "b", [("model.py", plain), ("train.py", train)], ("DRP604",)) == []
    package = train.replace("from model import Net", "from .models.net import Net")
    assert _run(tmp_path / "c", [("models/net.py", NET), ("models/__init__.py", ""), ("train.py", package)],
                ("DRP604",)) == [("train.py", "DRP604", 11, "warning")]


def test_a_sibling_models_layers_are_followed_into_its_own_package(tmp_path):
    """StyleGAN2 (rosinality): convert_weight.py samples from `Generator()` of model.py under
    no_grad without eval(); model.py's layers come `from op import FusedLeakyReLU`, which
    op/__init__.py re-exports from op/fused_act.py. Read there, the generator has no dropout, so
    its mode changes nothing (the info was false); with a Dropout in that layer it stays said (at
    info: the rate is not traced through the package, so it is not a fact of the construction)."""
    model = '''
import torch
from torch import nn
from op import FusedLeakyReLU

class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.noises = nn.Module()
        self.act = FusedLeakyReLU(8)
    def forward(self, z):
        return self.act(z)
'''
    layer = '''
from torch import nn

class FusedLeakyReLU(nn.Module):
    def __init__(self, channel):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))
    def forward(self, x):
        return x + self.bias
'''
    script = '''
import torch
from model import Generator

g = Generator()
with torch.no_grad():
    img = g(torch.randn(4, 8))
'''
    files = [("model.py", model), ("op/__init__.py", "from .fused_act import FusedLeakyReLU\n"),
             ("op/fused_act.py", layer), ("convert_weight.py", script)]
    assert _run(tmp_path / "a", files) == []
    dropped = layer.replace("        self.bias = nn", "        self.drop = nn.Dropout(0.1)\n        self.bias = nn")
    assert _run(tmp_path / "b", files[:2] + [("op/fused_act.py", dropped), files[3]]) == [
        ("convert_weight.py", "DRP605", 7, "info")]
    unknown = [("model.py", model), ("convert_weight.py", script)]  # op/ not beside it: unknown
    assert _run(tmp_path / "c", unknown) == [("convert_weight.py", "DRP605", 7, "info")]


def test_instance_norm_needs_no_eval_for_inference(tmp_path):
    """StarGAN v2 and CycleGAN generators normalise with InstanceNorm2d, whose default keeps no
    running statistics: train and eval compute the same, so sampling in train mode changes
    nothing. With track_running_stats=True (StarGAN's generator) train mode still normalises each
    sample by its own statistics, as every training step did; only eval() would switch to running
    averages. Batch norm does need eval()."""
    script = '''
import torch
from torch import nn

class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.norm = nn.InstanceNorm2d(3, affine=True)
    def forward(self, x):
        return self.norm(self.conv(x))

g = Generator()
with torch.no_grad():
    img = g(torch.randn(1, 3, 8, 8))
'''
    assert _run(tmp_path / "a", [("sample.py", script)]) == []
    stats = script.replace("affine=True)", "affine=True, track_running_stats=True)")
    assert _run(tmp_path / "b", [("sample.py", stats)]) == []
    batch = script.replace("nn.InstanceNorm2d(3, affine=True)", "nn.BatchNorm2d(3)")
    assert _run(tmp_path / "c", [("sample.py", batch)]) == [("sample.py", "DRP605", 15, "warning")]


def test_sibling_reading_is_bounded(tmp_path, monkeypatch):
    """Only imported modules beside the file (or below it), never larger than the cap; a module
    one folder up through an absolute import is not read."""
    train = '''
import torch
from model import Net

model = Net()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in loader:
    model(x).sum().backward()
    opt.step()
with torch.no_grad():
    out = model(val)
'''
    monkeypatch.setattr(siblings, "MAX_BYTES", 100)
    assert _run(tmp_path / "big", [("model.py", NET), ("train.py", train)], ("DRP604",)) == [
        ("train.py", "DRP604", 11, "info")]
    monkeypatch.undo()
    assert _run(tmp_path / "up", [("model.py", NET), ("sub/train.py", train)], ("DRP604",)) == [
        ("train.py", "DRP604", 11, "info")]


def test_a_model_moved_as_it_is_built_is_judged_by_its_class(tmp_path):
    """`model = Net().to(device)` (or .cuda()) is the Net it returns: its class decides whether an
    eval() never undone matters, as it does for `model = Net()` (it was unknown, said at info)."""
    script = NET + '''
model = Net().to("cuda").train()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):
    for x in loader:
        model(x).sum().backward()
        opt.step()
    model.eval()
'''
    assert _run(tmp_path / "a", [("train.py", script)], ("DRP603",)) == [("train.py", "DRP603", 19, "warning")]
    plain = script.replace("        self.drop = nn.Dropout(0.1)\n", "").replace("self.drop(self.fc(x))", "self.fc(x)")
    assert _run(tmp_path / "b", [("train.py", plain)], ("DRP603",)) == []


_EXAMPLE = '''
import torch
from pkg.nn import TemporalNet

def train(loader, val, device):
    model = TemporalNet(8).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    for epoch in range(10):
        for x, y in loader:
            loss = (model(x) - y).pow(2).mean()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for x, y in val:
                print((model(x) - y).pow(2).mean())
'''

_LAYER = '''
import torch

class TemporalNet(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.lin = torch.nn.Linear(n, n)
        self.drop = torch.nn.Dropout(0.1)
    def forward(self, x):
        return self.drop(self.lin(x))
'''


def _project(layer=_LAYER, top="setup.py"):
    """pytorch_geometric_temporal's shape: the package at the project's top, re-exported by
    pkg/nn/__init__.py, and examples/ importing it absolutely."""
    files = [("pkg/__init__.py", "from .nn import *\n"), ("pkg/nn/__init__.py", "from .recurrent import TemporalNet\n"),
             ("pkg/nn/recurrent.py", layer), ("examples/a3tgcn/train.py", _EXAMPLE)]
    return files + ([(top, "")] if top else [])


def test_the_projects_own_package_is_read_from_a_script_below_it(tmp_path):
    """pytorch_geometric_temporal's examples/indexBatching/A3TGCN/*.py import
    `from torch_geometric_temporal.nn.recurrent import A3TGCN2`, the package at the project's top,
    and leave the model in eval after validation. Read there, a model with dropout makes the
    missing train() a warning, and one without dropout (A3TGCN2 has none) makes it nothing."""
    assert _run(tmp_path / "a", _project(), ("DRP603",)) == [("train.py", "DRP603", 13, "warning")]
    plain = _LAYER.replace("        self.drop = torch.nn.Dropout(0.1)\n", "").replace("self.drop(self.lin(x))", "self.lin(x)")
    assert _run(tmp_path / "b", _project(plain), ("DRP603",)) == []
    # the src layout, and a project without any marker file, resolve the same way
    src = [("src/" + name if name.startswith("pkg/") else name, text) for name, text in _project(plain, top="")]
    assert _run(tmp_path / "c", src, ("DRP603",)) == []
    # without the package nothing is known: the finding stays, at info
    assert _run(tmp_path / "d", _project()[3:], ("DRP603",)) == [("train.py", "DRP603", 13, "info")]


def test_the_projects_own_package_is_looked_for_inside_the_project_only(tmp_path):
    """The search stops at the project's top (setup.py, pyproject.toml, .git): a package of the
    same name beside the project is someone else's, and a lone module file up the tree
    (`pkg.py`) is not known to be the one the script gets; both leave the dropout unknown. A
    folder beside the script wins over the top, as on Python's own path."""
    plain = _LAYER.replace("        self.drop = torch.nn.Dropout(0.1)\n", "").replace("self.drop(self.lin(x))", "self.lin(x)")
    outside = [(name if name.startswith("pkg/") else "proj/" + name, text) for name, text in _project(plain)]
    assert _run(tmp_path / "a", outside, ("DRP603",)) == [("train.py", "DRP603", 13, "info")]
    lone = [("pkg/nn.py", plain), ("examples/a3tgcn/train.py", _EXAMPLE)]
    assert _run(tmp_path / "b", lone, ("DRP603",)) == [("train.py", "DRP603", 13, "info")]
    beside = _project(plain) + [("examples/a3tgcn/pkg/__init__.py", ""), ("examples/a3tgcn/pkg/nn.py", _LAYER)]
    assert _run(tmp_path / "c", beside, ("DRP603",)) == [("train.py", "DRP603", 13, "warning")]


def test_the_projects_own_package_only_says_what_its_models_drop(tmp_path):
    """The package up the tree answers whether a model has dropout, not which calls build a
    module: the package's tests build its models and run them without eval() on purpose, and
    a vendored library's classes (transformers' from_pretrained returns eval mode) are no new
    modules in train mode. A module class beside the file still is one."""
    test = '''
import torch
from pkg.nn import TemporalNet

net = TemporalNet(8)
with torch.no_grad():
    out = net(torch.zeros(2, 8))
probe = torch.nn.Linear(8, 8).eval()
'''
    files = _project()[:3] + [("setup.py", ""), ("tests/test_net.py", test)]
    assert _run(tmp_path / "a", files, ("DRP605",)) == []
    beside = [("tests/pkg/__init__.py", "from .nn import TemporalNet\n"), ("tests/pkg/nn.py", _LAYER),
              ("tests/test_net.py", test)]
    assert _run(tmp_path / "b", beside, ("DRP605",)) == [("test_net.py", "DRP605", 7, "warning")]


def test_sibling_files_are_dependencies_of_the_result_cache(tmp_path):
    """Changing model.py must change the cached findings of train.py checked alone."""
    from auditor.run.cache import Cache, salt_for
    from auditor.run.discover import discover
    from auditor.run.engine import Engine, Options

    write_files(tmp_path, [("model.py", NET), ("train.py", textwrap.dedent('''
        import torch
        from model import Net
        model = Net()
        with torch.no_grad():
            out = model(val)
    '''))])
    train = str(tmp_path / "train.py")

    def run():
        engine = Engine(Options(select=("DRP605",)))
        cache = Cache(str(tmp_path / ".cache"), salt_for(engine))
        return [(f.code, f.severity) for f in engine.check_paths(discover([train], engine.suffixes).files, cache=cache)]

    assert run() == [("DRP605", "warning")]
    assert run() == [("DRP605", "warning")]  # from the cache
    with open(tmp_path / "model.py", "w", encoding="utf-8") as fh:
        fh.write(NET.replace("nn.Dropout(0.1)", "nn.Dropout(0.0)"))
    assert run() == []


def test_605_another_name_of_the_same_model_shares_its_switches(tmp_path):
    """ng-video-lecture's gpt.py shape: `m = model.to(device)`, estimate_loss() switches
    `model` to eval and back to train, and `m.generate` samples after training: in train mode."""
    script = NET + '''
@torch.no_grad()
def estimate_loss():
    model.eval()
    out = model(val)
    model.train()
    return out

model = Net()
m = model.to("cuda")
opt = torch.optim.AdamW(model.parameters())
for it in range(100):
    if it % 10 == 0:
        estimate_loss()
    model(x).sum().backward()
    opt.step()
print(m.generate(ctx, 100))
'''
    found = [(f.code, f.span.line, f.severity, f.message) for f in
             audit([str(write_files(tmp_path, [("gpt.py", script)])[0])], select=("DRP605", "DRP602"))]
    assert [f[:3] for f in found] == [("DRP605", 28, "warning")]
    assert "estimate_loss() (line 25) switches it to train again" in found[0][3]
    evaluated = script.replace('print(m.generate', 'model.eval()\nprint(m.generate')
    assert _run(tmp_path / "e", [("gpt.py", evaluated)], ("DRP605", "DRP602")) == []


def test_605_a_class_named_like_a_decoder_is_not_an_inference_helper(tmp_path):
    script = '''
        import torch
        from torch import nn
        class Attention(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop = nn.Dropout(0.1)
        def build():
            attn = Attention()
            return DecoderBlock(attn, 0.1)
    '''
    assert _run(tmp_path, [("model.py", script)]) == []


# --- DRP523: a rate written to model.config after the build -------------------------------------

def _523(tmp_path, script, name="train.py"):
    write_files(tmp_path, [(name, textwrap.dedent(script))])
    return [(f.code, f.span.line, f.message) for f in audit([str(tmp_path)], select=("DRP523", "DRP124"))]


def test_523_a_trainer_given_the_model_is_not_a_rebuild(tmp_path):
    found = _523(tmp_path, '''
        from transformers import AutoModelForSequenceClassification, Trainer
        model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
        model.config.hidden_dropout_prob = 0.2
        trainer = Trainer(model=model, args=args, train_dataset=ds)
        trainer.train()
    ''')
    assert [f[:2] for f in found] == [("DRP523", 4)]
    assert "pass hidden_dropout_prob=... to from_pretrained instead" in found[0][2]


def test_523_layerdrop_on_a_model_of_no_known_type_is_a_guess(tmp_path):
    """Transformers' own Wav2Vec2 tests set `model.config.layerdrop = 0.0` after the build, and it
    works: the encoder reads self.config.layerdrop at every forward (9 families do; 46 copy it at
    construction). For a model of no known type the claim is a guess: info, not a warning. A
    dropout rate, copied into nn.Dropout at construction by every model, stays a warning."""
    write_files(tmp_path / "a", [("test_w2v.py", textwrap.dedent('''
        model = model_class(config)
        model.to(torch_device)
        model.config.layerdrop = 0.0
        model.config.hidden_dropout = 0.0
    '''))])
    found = sorted((f.span.line, f.severity) for f in audit([str(tmp_path / "a")], select=("DRP523",)))
    assert found == [(4, "info"), (5, "warning")]


def test_523_a_wrapper_that_reads_the_config_still_counts_as_a_rebuild(tmp_path):
    assert _523(tmp_path, '''
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("gpt2")
        model.config.summary_dropout_prob = 0.1
        policy = AutoModelForCausalLMWithValueHead(model)
        trainer = PPOTrainer(model=policy)
    ''') == []


def test_523_in_a_notebook_with_a_trainer_cell(tmp_path):
    cells = ["from transformers import AutoModelForSequenceClassification, Trainer\n",
             "model = AutoModelForSequenceClassification.from_pretrained('bert-base-uncased')\n",
             "%%time\n", "model.config.hidden_dropout_prob = 0.2\n",
             "trainer = Trainer(model=model, args=args)\ntrainer.train()\n"]
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": [c]}
                    for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    write_files(tmp_path, [("train.ipynb", json.dumps(nb))])
    found = [(f.code, f.cell[:2]) for f in audit([str(tmp_path)], select=("DRP523",))]
    assert found == [("DRP523", (4, 1))]


def test_523_advice_names_a_key_the_type_declares_and_never_leads_to_drp124(tmp_path):
    """Llama declares attention_dropout only: the advice for attention_probs_dropout_prob is
    attention_dropout, and following it gives no DRP124; hidden_dropout_prob has no Llama
    counterpart, so the advice says it cannot be set (passing it would raise TypeError)."""
    found = _523(tmp_path / "a", '''
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-1B")
        model.config.attention_probs_dropout_prob = 0.1
        model.config.hidden_dropout_prob = 0.1
    ''')
    assert [f[:2] for f in found] == [("DRP523", 4), ("DRP523", 5)]
    assert "pass attention_dropout=... to from_pretrained instead" in found[0][2]
    assert "llama does not declare hidden_dropout_prob and reads no other key" in found[1][2]
    assert "from_pretrained" not in found[1][2].split(";")[-1]
    assert _523(tmp_path / "b", '''
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-1B", attention_dropout=0.1)
    ''') == []
    unknown = _523(tmp_path / "c", '''
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained(path)
        model.config.hidden_dropout_prob = 0.1
    ''')
    assert [f[:2] for f in unknown] == [("DRP523", 4)]
    assert "config=config" in unknown[0][2]


# --- DRP522: a rate stored and never read -------------------------------------------------------

def test_522_rate_stored_on_self_and_never_read(tmp_path):
    """The flex-attention shape: `self.dropout = dropout` and no path reads self.dropout."""
    script = '''
        import torch.nn as nn
        import torch.nn.functional as F

        class Attention(nn.Module):
            def __init__(self, dim, heads, dropout=0.1):
                super().__init__()
                self.dropout = dropout
                self.qkv = nn.Linear(dim, 3 * dim)

            def forward(self, x):
                return flex_attention(*self.qkv(x).chunk(3, -1))

        class Reads(nn.Module):
            def __init__(self, dim, dropout=0.1):
                super().__init__()
                self.dropout = dropout

            def forward(self, x):
                return F.dropout(x, self.dropout, self.training)
    '''
    write_files(tmp_path, [("attn.py", textwrap.dedent(script))])
    found = [(f.span.line, f.message) for f in audit([str(tmp_path)], select=("DRP522",))]
    assert [f[0] for f in found] == [6]
    assert "stored as self.dropout (line 8), which nothing reads" in found[0][1]


def test_522_stored_rate_read_elsewhere_is_a_use(tmp_path):
    """A subclass, another object (`block.attn.dropout`), a string (getattr(self, "dropout"))
    or dynamic access (vars(self), save_hyperparameters) may read it: silent."""
    base = '''
        import torch.nn as nn

        class Attention(nn.Module):
            def __init__(self, dim, dropout=0.1):
                super().__init__()
                self.dropout = dropout

            def forward(self, x):
                return x
    '''
    for i, extra in enumerate(('''
        class Flash(Attention):
            def forward(self, x):
                return sdpa(x, dropout_p=self.dropout if self.training else 0.0)
    ''', '''
        def rate(block):
            return block.attn.dropout
    ''', '''
        def rate(block):
            return getattr(block, "dropout")
    ''', '''
        def dump(block):
            return vars(block)
    ''')):
        write_files(tmp_path / str(i), [("attn.py", textwrap.dedent(base) + textwrap.dedent(extra))])
        assert [f.span.line for f in audit([str(tmp_path / str(i))], select=("DRP522",))] == [], extra


def test_605_a_trainer_built_but_not_run_leaves_the_mode_alone(tmp_path):
    """Building a Trainer switches nothing; its train()/evaluate() may (test above)."""
    script = '''
        import torch
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop = nn.Dropout(0.2)
            def forward(self, x):
                return self.drop(x)
        net = Net()
        trainer = Trainer(model=net, args=args)
        with torch.no_grad():
            print(net(x))
    '''
    assert _run(tmp_path, [("t.py", script)]) == [("t.py", "DRP605", 13, "warning")]


def test_a_model_moved_or_wrapped_keeps_what_is_known_of_it(tmp_path):
    """`net = accelerator.prepare(net)` is the same model: its class still decides (a class
    without dropout stays silent instead of 'unknown')."""
    script = '''
        import torch
        from torch import nn
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
                self.rnn = nn.LSTM(8, 8, 2, batch_first=True)
        net = Net()
        net = accelerator.prepare(net)
        net = net.to("cuda")
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for x in loader:
            net(x).sum().backward()
            opt.step()
        with torch.no_grad():
            score = net(val)
    '''
    assert _run(tmp_path, [("train.py", script)], ("DRP604",)) == []
    stacked = script.replace("nn.LSTM(8, 8, 2, batch_first=True)", "nn.LSTM(8, 8, 2, batch_first=True, dropout=0.1)")
    assert _run(tmp_path / "d", [("train.py", stacked)], ("DRP604",)) == [("train.py", "DRP604", 17, "warning")]


def test_604_evaluation_after_the_training_loop_of_the_same_function(tmp_path):
    """A no_grad forward in the loop that trains is a target pass; after the loop (main()
    holding the whole script) it is an evaluation."""
    script = NET + '''
def main():
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in loader:
        with torch.no_grad():
            target = model(x)
        (model(x) - target).sum().backward()
        opt.step()
    with torch.no_grad():
        score = model(val)

main()
'''
    assert _run(tmp_path, [("train.py", script)], ("DRP604",)) == [("train.py", "DRP604", 22, "warning")]


def test_605_helpers_that_only_look_at_the_model_are_not_inference(tmp_path):
    script = '''
        import torch
        from accelerate import infer_auto_device_map
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_config(config)
        device_map = infer_auto_device_map(model, max_memory=mem)
        model.load_state_dict(torch.load("sd.pt"))
    '''
    assert _run(tmp_path, [("load.py", script)]) == []


def test_605_a_forward_on_random_weights_is_a_smoke_test(tmp_path):
    """`if __name__ == "__main__": out = model(dummy)` checks shapes; with weights loaded (or in
    a predict function) the same forward is inference."""
    script = NET + '''
if __name__ == "__main__":
    net = Net()
    out = net(torch.randn(2, 8))
    print(out.shape)
'''
    assert _run(tmp_path / "a", [("model.py", script)]) == []
    loaded = script.replace("    net = Net()\n", "    net = Net()\n    net.load_state_dict(torch.load('w.pt'))\n")
    assert _run(tmp_path / "b", [("model.py", loaded)]) == [("model.py", "DRP605", 16, "warning")]
    predict = NET + '''
net = Net()

def predict(x):
    return net(x)

print(predict(torch.randn(2, 8)))
'''
    assert _run(tmp_path / "c", [("serve.py", predict)]) == [("serve.py", "DRP605", 16, "warning")]


def test_605_an_inference_method_that_switches_to_eval_itself(tmp_path):
    """DALLE-pytorch's generate_images is wrapped in @eval_decorator; a generate() that calls
    self.eval() is the same."""
    script = NET + '''
    @eval_decorator
    @torch.no_grad()
    def generate_images(self, text):
        return self(text)

    def generate(self, idx):
        self.eval()
        return self(idx)

    def sample(self, idx):
        return self(idx)

net = Net()
net.load_state_dict(torch.load("w.pt"))
a = net.generate_images(text)
b = net.generate(idx)
c = net.sample(idx)
'''
    assert _run(tmp_path, [("gen.py", script)]) == [("gen.py", "DRP605", 29, "warning")]  # sample() only


PAINTER_PY = '''
import torch
from torch import nn

def eval_decorator(fn):
    def inner(model, *args, **kwargs):
        was_training = model.training
        model.eval()
        out = fn(model, *args, **kwargs)
        model.train(was_training)
        return out
    return inner

class Painter(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(dim, dim)

    @eval_decorator
    def forward(self, x):
        return self.fc(self.drop(x))
'''

PAINT_CLI = '''
import torch
from model import Painter

painter = Painter(8)
painter.load_state_dict(torch.load("painter.pt"))
image = painter(text)
'''


def test_605_calling_a_model_whose_forward_switches_to_eval_itself(tmp_path):
    """Calling the model runs its forward: DALLE2-pytorch's DALLE2.forward carries
    @eval_decorator (its class in a sibling module), so the call runs in eval mode whatever mode
    the script left; a forward that calls self.eval() is the same. Without the switch, the loaded
    model still samples through its dropout."""
    files = [("model.py", PAINTER_PY), ("cli.py", PAINT_CLI)]
    assert _run(tmp_path / "a", files) == []
    plain = PAINTER_PY.replace("    @eval_decorator\n    def forward", "    def forward")
    assert _run(tmp_path / "b", [("model.py", plain), files[1]]) == [("cli.py", "DRP605", 7, "warning")]
    own = plain.replace("        return self.fc(self.drop(x))", "        self.eval()\n        return self.fc(self.drop(x))")
    assert _run(tmp_path / "c", [("model.py", own), files[1]]) == []
    # after a train(), a no_grad call of that model still runs in eval mode (DRP602)
    trained = PAINT_CLI.replace("image = painter(text)", "painter.train()\nwith torch.no_grad():\n    image = painter(text)")
    assert _run(tmp_path / "d", [files[0], ("cli.py", trained)], ("DRP602", "DRP605")) == []
    assert _run(tmp_path / "e", [("model.py", plain), ("cli.py", trained)],
                ("DRP602", "DRP605")) == [("cli.py", "DRP602", 9, "warning")]
