"""The ranks of a data-parallel run: do they draw the same dropout masks, and their counts as one.

Dropout draws its masks from the default generator of the tensor's device. Ranks whose
generators are in the same state draw the same masks for the same shapes, which is what seeding
every rank with one constant does (transformers#31412; DRP701 guesses it statically). The check
draws one mask of fixed size on each rank from that generator, puts the generator's state back
(so the run's own masks are unchanged), and compares digests of the masks over `all_gather`: on
gloo a CPU tensor, on NCCL a tensor on the rank's current CUDA device. Every rank must call it.

Site tallies of several ranks are merged by site, so a guard or the distributed probe reports
one table for the whole run (`gather_sites`, an `all_gather_object`).
"""

from __future__ import annotations

import dataclasses
import hashlib

import torch
import torch.distributed as dist

from auditor.core.model import Span
from auditor.probe.codes import probe_finding
from auditor.probe.instrument import Site, Tally

MASK_SIZE = 4096


def distributed() -> bool:
    """Whether a process group with more than one rank is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def collective_device() -> torch.device:
    """Where tensors for a collective must live: the current CUDA device under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mask_digest(device) -> int:
    """A digest of the dropout mask the device's default generator draws next (then restored)."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    state = torch.cuda.get_rng_state(device) if cuda else torch.get_rng_state()
    try:
        mask = torch.empty(MASK_SIZE, device=device).bernoulli_(0.5)
    finally:
        if cuda:
            torch.cuda.set_rng_state(state, device)
        else:
            torch.set_rng_state(state)
    data = mask.to(torch.uint8).cpu().numpy().tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=7).digest(), "big")


def gather_digests(device) -> list:
    """Every rank's mask digest, in rank order (a collective)."""
    mine = torch.tensor([mask_digest(device)], dtype=torch.int64, device=collective_device())
    out = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(out, mine)
    return [int(t.item()) for t in out]


def shared_groups(digests: list) -> list:
    """Groups of ranks (two or more) whose masks were identical."""
    by_digest: dict = {}
    for rank, d in enumerate(digests):
        by_digest.setdefault(d, []).append(rank)
    return [ranks for ranks in by_digest.values() if len(ranks) > 1]


def rank_finding(groups: list, world: int, path: str, how: str, span: Span | None = None, severity: str = ""):
    """DRP812 when some ranks share masks; `how` says how the ranks were seeded."""
    if not groups:
        return None
    names = "; ".join("ranks " + ", ".join(str(r) for r in g) for g in groups)
    every = len(groups) == 1 and len(groups[0]) == world
    what = f"all {world} ranks" if every else names
    f = probe_finding("DRP812", path,
                      f"{what} draw identical dropout masks ({MASK_SIZE}-unit mask from each rank's default "
                      f"generator compared across ranks): {how}. Every data-parallel replica then drops the same "
                      "units, so the noise dropout adds is not independent across the global batch. Add the rank "
                      "to the seed (accelerate: set_seed(seed, device_specific=True)).", span, key="<ranks>")
    if severity:
        f.severity = severity
    return f


# -- one table for every rank -----------------------------------------------------------

def _tally_dict(t: Tally) -> dict:
    d = {f.name: getattr(t, f.name) for f in dataclasses.fields(Tally)}
    d["ps"] = sorted(d["ps"])
    return d


def site_summaries(sites: dict) -> list:
    return [{"path": s.path, "kind": s.kind, "family": s.family, "caller_class": s.caller_class,
             "source": list(s.source), "train": _tally_dict(s.train), "eval": _tally_dict(s.eval)}
            for s in sites.values()]


def _add(into: Tally, d: dict) -> None:
    for f in dataclasses.fields(Tally):
        value = d[f.name]
        if f.name == "ps":
            into.ps.update(value)
        elif f.name == "flag_examples":
            if not into.flag_examples:
                into.flag_examples.extend(tuple(x) for x in value)
        elif f.name == "scale_devs":
            into.scale_devs.extend(value)
        else:
            setattr(into, f.name, getattr(into, f.name) + value)


def merge_summaries(per_rank: list) -> dict:
    """(path, kind) -> Site with every rank's counts added."""
    out: dict = {}
    for summaries in per_rank:
        for s in summaries:
            ident = (s["path"], s["kind"])
            site = out.get(ident)
            if site is None:
                site = out[ident] = Site(s["path"], s["kind"], s["family"], s["caller_class"], tuple(s["source"]))
            _add(site.train, s["train"])
            _add(site.eval, s["eval"])
    return out


def gather_sites(sites: dict) -> dict:
    """The sites of every rank merged (a collective when distributed; else the sites as they are)."""
    if not distributed():
        return sites
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, site_summaries(sites))
    return merge_summaries(out)
