"""Tiny, randomly initialised models and data for the run-time guard tests (nothing downloaded),
and the worker the 2-process DDP test spawns."""

import json
import os

import torch
import torch.nn.functional as F
from torch import nn

torch.set_num_threads(1)


class Tokens(torch.utils.data.Dataset):
    """Random token rows as causal-LM examples."""

    def __init__(self, n: int, seed: int, vocab: int = 97, length: int = 16):
        self.ids = torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(seed))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def tiny_gpt2(vocab: int = 97):
    """GPT-2 has every kind of site: nn.Dropout modules, and SDPA reading attn_dropout's p."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=32, n_embd=32, n_layer=2, n_head=2))


def word_tokenizer(words):
    """A word-level tokenizer built in memory (no download) for TRL's trainers."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "<pad>", "<eos>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>")


class GatedMLP(nn.Module):
    """A plain model whose functional dropout is gated (clean) or not (the classic bug)."""

    def __init__(self, gated: bool = True, unused: bool = False, p: float = 0.2):
        super().__init__()
        self.fc1 = nn.Linear(16, 64)
        self.drop = nn.Dropout(p)
        self.fc2 = nn.Linear(64, 4)
        self.gated = gated
        self.p = p
        if unused:
            self.forgotten = nn.Dropout(0.3)   # configured, never called in forward

    def forward(self, x):
        h = self.drop(torch.relu(self.fc1(x)))
        h = F.dropout(h, self.p, training=self.training) if self.gated else F.dropout(h, self.p)
        return self.fc2(h)


def ddp_guard_worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank of the DDP test: a guarded training loop seeded the same on every rank, then
    seeded with the rank added; rank 0 writes both verdicts and the merged counts."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from auditor.runtime import dropout_guard

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    results = {}
    try:
        for name, seed in (("same", 7), ("offset", 7 + rank)):
            torch.manual_seed(seed)
            model = DDP(GatedMLP())
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
            x = torch.randn(32, 16, generator=torch.Generator().manual_seed(rank))
            with dropout_guard(model, mode="train", warmup=2, sample_every=0) as guard:
                for _ in range(4):
                    opt.zero_grad()
                    model(x).pow(2).mean().backward()
                    opt.step()
            report = guard.report()
            results[name] = {"codes": sorted(f.code for f in guard.finish()), "ranks": report["ranks"],
                             "sites": report["sites"], "sampled": guard.sampled}
            del model, opt, guard  # DDP's reducer holds the group: it must go before the group does
    finally:
        import gc

        gc.collect()
        dist.barrier()  # both ranks done before the group goes (else a SIGABRT at exit, now and then)
        dist.destroy_process_group()
    if rank == 0:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(results, fh)


# -- factories for `probe --factory tests/runtime_helpers.py:NAME --nproc 2` -----------------

def seeded_same_on_every_rank():
    """Planted: a constant seed, as `torch.manual_seed(1337)` in a DDP script (DRP701's case)."""
    torch.manual_seed(1337)
    return GatedMLP(), torch.randn(32, 16, generator=torch.Generator().manual_seed(0))


def seeded_with_the_rank():
    """The fix: the rank added to the seed (nanoGPT's seed_offset)."""
    torch.manual_seed(1337 + int(os.environ.get("RANK", "0")))
    return GatedMLP(), torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
