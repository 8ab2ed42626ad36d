"""Issue #31: validation through a pipeline built from models in train mode (DRP602), and the
mode of multi-network training (GAN phases, a teacher), judged per network."""

from __future__ import annotations

from tests.conftest import audit, write_files

_LORA = '''import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from peft import LoraConfig

unet = UNet2DConditionModel.from_pretrained(args.base, subfolder="unet")
unet.requires_grad_(False)
unet.add_adapter(LoraConfig(r=4, lora_alpha=4, lora_dropout=0.1, target_modules=["to_q", "to_v"]))
optimizer = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad])
for epoch in range(10):
    unet.train()
    for batch in loader:
        unet(batch).sample.mean().backward()
        optimizer.step()
    if epoch % 2 == 0:
        pipeline = StableDiffusionPipeline.from_pretrained(args.base, unet=accelerator.unwrap_model(unet))
        images = pipeline(args.validation_prompt).images
'''

_T5 = '''import torch
from diffusers import PixArtAlphaPipeline, Transformer2DModel
from transformers import T5EncoderModel

transformer = Transformer2DModel.from_pretrained(args.base, subfolder="transformer")
text_encoder = T5EncoderModel.from_pretrained(args.base, subfolder="text_encoder")
optimizer = torch.optim.AdamW(list(transformer.parameters()) + list(text_encoder.parameters()), lr=1e-5)
for epoch in range(10):
    transformer.train()
    text_encoder.train()
    for batch in loader:
        transformer(text_encoder(batch.ids)[0]).sample.mean().backward()
        optimizer.step()
    pipeline = PixArtAlphaPipeline.from_pretrained(args.base, transformer=transformer, text_encoder=text_encoder)
    images = pipeline(args.validation_prompt).images
'''


def _found(tmp_path, name, text):
    write_files(tmp_path, [(name, text)])
    return [(f.code, f.span.line, f.severity, f.message) for f in audit([str(tmp_path / name)])]


def test_a_pipeline_built_from_a_lora_unet_in_train_mode(tmp_path):
    (found,) = _found(tmp_path, "train_lora.py", _LORA)
    assert found[:3] == ("DRP602", 15, "warning")
    assert "unet.train() (line 10)" in found[3] and "unet=unet" in found[3]


def test_eval_before_the_pipeline_or_no_adapter_dropout_is_silent(tmp_path):
    assert _found(tmp_path, "a.py", _LORA.replace("    if epoch % 2 == 0:", "    unet.eval()\n    if epoch % 2 == 0:")) == []
    # a diffusers UNet has no dropout of its own: without the adapter's rate nothing is known to drop
    assert _found(tmp_path, "b.py", _LORA.replace("lora_dropout=0.1, ", "")) == []


def test_a_trained_text_encoder_by_its_class_is_an_info(tmp_path):
    """text_encoder is named like a frozen part, but its parameters reach the optimizer (through
    `list(a) + list(b)`), so it is trained; T5's default dropout_rate is 0.1, its checkpoint may differ."""
    (found,) = _found(tmp_path, "t5.py", _T5)
    assert found[:3] == ("DRP602", 14, "info") and "T5EncoderModel builds a t5" in found[3]
    frozen = _T5.replace(" + list(text_encoder.parameters())", "").replace("    text_encoder.train()\n", "")
    assert _found(tmp_path, "frozen.py", frozen) == []


_NETS = '''import torch
import torch.nn as nn


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.3), nn.Linear(16, 4))

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.3), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x)


G, D = Generator(), Discriminator()
opt_g = torch.optim.Adam(G.parameters())
opt_d = torch.optim.Adam(D.parameters())
'''


def test_gan_phases_are_deliberate(tmp_path):
    """The discriminator phase samples G under no_grad and the generator phase holds D as a fixed
    critic: each network's mode is switched for its own phase, none is a mistake."""
    phases = _NETS + '''for epoch in range(10):
    for real in loader:
        z = torch.randn(64, 8)
        G.eval()
        D.train()
        with torch.no_grad():
            fake = G(z)
        loss_d = D(fake).mean() - D(real).mean()
        loss_d.backward()
        opt_d.step()
        G.train()
        D.eval()
        loss_g = -D(G(z)).mean()
        loss_g.backward()
        opt_g.step()
'''
    assert _found(tmp_path, "gan.py", phases) == []
    same_mode = _NETS + '''G.train()
D.train()
for epoch in range(10):
    for real in loader:
        z = torch.randn(64, 8)
        with torch.no_grad():
            fake = G(z)
        (D(fake).mean() - D(real).mean()).backward()
        opt_d.step()
        (-D(G(z)).mean()).backward()
        opt_g.step()
'''
    assert _found(tmp_path, "gan2.py", same_mode) == []
    # samples drawn after training with G still in train mode are a real finding
    sampled = same_mode + "with torch.no_grad():\n    samples = G(torch.randn(16, 8))\n"
    assert [f[:3] for f in _found(tmp_path, "gan3.py", sampled)] == [("DRP602", 38, "warning")]


def test_a_library_model_without_dropout_by_its_source_is_silent(tmp_path):
    """ogb's mag/metapath.py: PyG's MetaPath2Vec is one Embedding table (its source), so saving its
    embeddings under no_grad after model.train() changes nothing; an unknown class stays an info."""
    script = '''import torch
from torch_geometric.nn import MetaPath2Vec


@torch.no_grad()
def save_embedding(model):
    torch.save(model('paper').cpu(), 'embedding.pt')


def main():
    model = MetaPath2Vec(edge_index_dict, embedding_dim=128, metapath=metapath, walk_length=64,
                         context_size=7).to(device)
    optimizer = torch.optim.SparseAdam(list(model.parameters()), lr=0.01)
    model.train()
    for pos_rw, neg_rw in loader:
        loss = model.loss(pos_rw, neg_rw)
        loss.backward()
        optimizer.step()
    save_embedding(model)


if __name__ == "__main__":
    main()
'''
    assert _found(tmp_path, "metapath.py", script) == []
    other = script.replace("from torch_geometric.nn import MetaPath2Vec", "from mylib import MetaPath2Vec")
    assert [f[:3] for f in _found(tmp_path, "other.py", other)] == [("DRP602", 7, "info")]


def test_a_model_built_from_library_layers_without_dropout_is_silent(tmp_path):
    """pytorch_geometric_temporal's TGCN2 is PyG GCNConv layers and Linear: GCNConv's source
    (like SAGEConv's, GraphConv's and ChebConv's) has no dropout and no batch norm, so an
    eval() never undone changes nothing. A conv not read (GATConv drops attention weights) or
    one handed an aggregation module of the script's own leaves it unknown, said at info."""
    script = '''import torch
from torch_geometric.nn import GCNConv, SAGEConv, GATConv


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = GCNConv(8, 8, improved=False)
        self.sage = SAGEConv(8, 8, aggr="max")
        self.linear = torch.nn.Linear(8, 1)

    def forward(self, x, edge_index):
        return self.linear(self.sage(self.conv(x, edge_index), edge_index))


model = Net().cuda()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
for epoch in range(10):
    for x, y in loader:
        loss = (model(x, edges) - y).pow(2).mean()
        loss.backward()
        optimizer.step()
    model.eval()
'''
    assert _found(tmp_path, "tgcn.py", script) == []
    gat = script.replace("self.conv = GCNConv(8, 8, improved=False)", "self.conv = GATConv(8, 8)")
    assert [f[:3] for f in _found(tmp_path, "gat.py", gat)] == [("DRP603", 23, "info")]
    own = script.replace('aggr="max"', "aggr=MyAggregation()")
    assert [f[:3] for f in _found(tmp_path, "own.py", own)] == [("DRP603", 23, "info")]
    other = script.replace("from torch_geometric.nn import", "from mylib import")
    assert [f[:3] for f in _found(tmp_path, "other.py", other)] == [("DRP603", 23, "info")]
    dropped = script.replace("        self.linear = torch", "        self.drop = torch.nn.Dropout(0.5)\n        self.linear = torch"
                             ).replace("return self.linear(", "return self.drop(self.linear(").replace("edge_index))\n", "edge_index)))\n")
    assert [f[:3] for f in _found(tmp_path, "dropped.py", dropped)] == [("DRP603", 24, "warning")]


def test_diffusers_parts_are_no_transformers_model_to_identify(tmp_path):
    """PixArt's hed.py loads `AutoencoderKL.from_pretrained("output/pretrained_models/sd-vae-ft-ema")`:
    "AutoencoderKL" is no Auto class and diffusers' parts have no Transformers config, so DRP310
    ("model unknown, architecture rules skipped") has nothing to say; a Transformers load still does."""
    script = ('import torch\nfrom diffusers import AutoencoderKL, UNet2DConditionModel\n'
              'from transformers import AutoModel\n\n'
              'vae = AutoencoderKL.from_pretrained("output/pretrained_models/sd-vae-ft-ema")\n'
              'unet = UNet2DConditionModel.from_pretrained("output/pretrained_models/unet")\n'
              'opt = torch.optim.AdamW(unet.parameters())\nunet.config.dropout = 0.1\n')
    assert [f[0] for f in _found(tmp_path, "a.py", script)] == ["DRP523"]  # set after the build: no effect
    text = script.replace("unet.config.dropout", "encoder.config.attention_dropout") + \
        'encoder = AutoModel.from_pretrained("acme/atlas-3b")\n'
    assert "DRP310" in [f[0] for f in _found(tmp_path, "b.py", text)]


def test_stopping_one_networks_training_on_purpose_is_no_drp603(tmp_path):
    """sd-scripts' train_db.py: at --stop_text_encoder_training the text encoder goes to eval and
    its weights are frozen; the later steps train the UNet only. Without the freeze it is the
    bug DRP603 reports, and the message quotes train(False) as written."""
    staged = _NETS.replace("G, D = Generator(), Discriminator()", "unet, text_encoder = Generator(), Discriminator()") \
        .replace("opt_g = torch.optim.Adam(G.parameters())\nopt_d = torch.optim.Adam(D.parameters())\n",
                 "optimizer = torch.optim.AdamW(list(unet.parameters()) + list(text_encoder.parameters()))\n") + \
        '''unet.train()
text_encoder.train()
for step, batch in enumerate(loader):
    if step == stop_text_encoder_training:
        if not gradient_checkpointing:
            text_encoder.train(False)
        text_encoder.requires_grad_(False)
    loss = unet(text_encoder(batch)).mean()
    loss.backward()
    optimizer.step()
'''
    assert _found(tmp_path, "staged.py", staged) == []
    (found,) = _found(tmp_path, "unfrozen.py", staged.replace("        text_encoder.requires_grad_(False)\n", ""))
    assert found[:3] == ("DRP603", 30, "warning") and found[3].startswith("text_encoder.train(False) switches")
