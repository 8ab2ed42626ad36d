"""`probe --nproc N`: the probe's fine-tune under torchrun, N data-parallel ranks (gloo on the CPU,
NCCL on CUDA), checking what only a distributed run shows.

The parent process starts `python -m torch.distributed.run --standalone --nproc_per_node N -m
auditor.probe.distributed REQUEST OUT` and reports what rank 0 wrote to OUT through the usual
reporters. Each rank:

1. builds the subject as the single-device probe does (same seed on every rank, as DDP's
   broadcast of rank 0's weights would leave them);
2. seeds its generators the way the user's run would: a --factory is the user's code and seeds
   (or not) as it likes after the probe's common `--seed`; a recipe's `seed` (or its framework's
   default) is applied under the per-rank rule of its framework and trainer read in the pinned
   source (knowledge/data/rank_seeding.json: the Trainer and TRL's SFT/DPO/KTO/reward trainers
   give every rank the same seed, TRL's GRPO/RLOO add the rank through accelerate's
   set_seed(device_specific=True)); a bare config or an unlisted framework has no verified rule,
   so every rank gets --seed and the rank finding speaks at info;
3. compares one dropout mask per rank across ranks (`ranks.gather_digests`, DRP812);
4. runs `--steps` AdamW steps of the model wrapped in DistributedDataParallel under the probe's
   Instrument, then one eval forward, and merges every rank's site counts (`ranks.gather_sites`)
   for the probe's site checks (DRP800-802) and loss checks (DRP806/807).

The key map, the expected-magnitude check and the overhead timing stay with the single-device
probe. Tensor parallelism is not covered: it would need the TP group layout (which ranks must
share masks, which must not: awslabs/slapo#21) and the model sharded the way the user's framework
shards it, which a config alone does not say.

Imports inside functions (`auditor.sources`, `auditor.run.cache`, `auditor.probe.session`, `yaml`,
...) are deferred for start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
import sys
import tempfile

import torch
import torch.distributed as dist

from auditor.knowledge import rank_seeding
from auditor.probe import checks
from auditor.probe.instrument import Instrument, scale_tolerance
from auditor.probe.ranks import gather_digests, gather_sites, rank_finding, shared_groups

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass
class Seeding:
    """How each rank is seeded: `base` plus the rank when `rank_term`, nothing more when
    `by_factory` (the factory's own code decides); `verified` is False for an assumed rule."""

    how: str
    base: int
    rank_term: bool = False
    by_factory: bool = False
    verified: bool = True
    rule: str = ""
    place: tuple = ()     # (recipe path, span of its `seed` key) when the recipe writes one

    def seed_for(self, rank: int) -> int:
        return self.base + rank if self.rank_term else self.base


def _seed_span(text: str):
    """The span of a recipe's top-level `seed` key (YAML `seed:` or JSON `"seed":`)."""
    from auditor.core.model import Span

    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith(("seed:", '"seed"')) and (line == stripped or stripped.startswith('"')):
            col = len(line) - len(stripped) + 1
            return Span(number, col, number, col + len(stripped.split(":")[0]))
    return None


def _recipe(path: str) -> tuple:
    """(dialect, trainer, seed or None, seed span or None) of a recipe file; empty for anything else."""
    from auditor.sources import SkipFile, readers, suffix_of

    if not path or not os.path.isfile(path) or suffix_of(path) not in (".yaml", ".yml", ".json"):
        return "", None, None, None
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        source = readers()[suffix_of(path)](path, text)
    except SkipFile:
        return "", None, None, None
    if source is None or source.dialect in ("hf-config", "peft-adapter"):
        return "", None, None, None
    trainer = source.fields.get("trainer")
    seed = None
    try:
        import yaml

        data = yaml.safe_load(text)
        if isinstance(data, dict) and isinstance(data.get("seed"), int) and not isinstance(data.get("seed"), bool):
            seed = data["seed"]
    except yaml.YAMLError:
        pass
    return source.dialect or "", (trainer.value if trainer is not None else None), seed, \
        (_seed_span(text) if seed is not None else None)


def seeding_of(path: str | None, factory: str | None, seed: int) -> Seeding:
    if factory:
        return Seeding(f"every rank ran the factory {factory} (your code) after the probe seeded each rank with "
                       f"--seed {seed}, so its own seeding decides", seed, by_factory=True)
    dialect, trainer, written, span = _recipe(path or "")
    name, rule = rank_seeding.rule_for(dialect, trainer)
    if rule is not None:
        base = written if written is not None else rule["default_seed"]
        origin = "the recipe's seed" if written is not None else "its default seed"
        term = " + the rank" if rule["rank_term"] is True else " on every rank"
        return Seeding(f"{name} seeds with {origin} {base}{term} ({rule['source']})", base,
                       rank_term=rule["rank_term"] is True, rule=name, place=(path, span) if span else ())
    what = f"the {dialect} recipe" + (f" (trainer {trainer})" if trainer else "") if dialect else "a bare model config"
    return Seeding(f"no per-rank seeding rule is verified for {what}: every rank was seeded with --seed {seed}, as "
                   "a constant torch.manual_seed (or the Trainer) would", seed, verified=False, rule="assumed")


# -- the parent -----------------------------------------------------------------------------

def launch(req, timeout_s: int = 600) -> int:
    """Run the ranks under torchrun and report rank 0's result; the exit code as `probe`'s."""
    import click

    from auditor.probe.session import write_findings
    from auditor.run.cache import decode
    from auditor.run.engine import exit_code

    with tempfile.TemporaryDirectory(prefix="dropout-audit-nproc-") as tmp:
        request, out = os.path.join(tmp, "request.json"), os.path.join(tmp, "result.json")
        with open(request, "w", encoding="utf-8") as fh:
            json.dump(dataclasses.asdict(req), fh)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
               "PYTHONPATH": os.pathsep.join(p for p in (PACKAGE_PARENT, os.environ.get("PYTHONPATH", "")) if p)}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
               f"--nproc_per_node={req.nproc}", "-m", "auditor.probe.distributed", request, out]
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            click.echo(f"dropout-audit probe: error: the {req.nproc} ranks did not finish in {timeout_s} s", err=True)
            return 2
        result = None
        if os.path.isfile(out):
            with open(out, encoding="utf-8") as fh:
                result = json.load(fh)
        if result is None or done.returncode != 0 and "error" not in result:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            click.echo(f"dropout-audit probe: error: torchrun exited {done.returncode}\n{tail}", err=True)
            return 2
        if "error" in result:
            click.echo(f"dropout-audit probe: error: {result['error']}", err=True)
            return 2
        findings = decode(result["findings"])
        if req.fmt == "full":
            click.echo(summary(result))
        write_findings(req, findings)
        if req.measurements:
            with open(req.measurements, "w", encoding="utf-8") as fh:
                json.dump({k: v for k, v in result.items() if k != "findings"} |
                          {"findings": [f.to_dict() for f in findings]}, fh, indent=1, default=str)
        return exit_code(findings, req.fail_on, req.exit_zero)


def summary(result: dict) -> str:
    r = result["ranks"]
    groups = r["identical_groups"]
    masks = "identical on " + "; ".join("ranks " + ",".join(map(str, g)) for g in groups) if groups \
        else "different on every rank"
    seeds = "seeded by the factory" if r["seeds"] and r["seeds"][0] is None else f"seeds {r['seeds']}"
    return (f"distributed probe: {r['world_size']} ranks ({r['backend']}, {r['device']}), {seeds}; "
            f"dropout masks {masks}\nseeding: {r['seeding']}")


def _factory_place(spec: str) -> tuple:
    """(file, span of `def FUNCTION`) of a --factory, so the rank finding points at the user's seeding."""
    from auditor.core.model import Span

    path, _, name = spec.rpartition(":")
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.lstrip().startswith(f"def {name}("):
                    col = len(line) - len(line.lstrip()) + 1
                    return path, Span(number, col, number, col + 4 + len(name))
    except OSError:
        pass
    return path, None


# -- one rank -------------------------------------------------------------------------------

def run_rank(req: dict, rank: int, world: int, device: torch.device) -> dict:
    from auditor.probe.finetune import trainable
    from auditor.probe.runner import Options, prepare
    from auditor.probe.targets import resolve_target

    seeding = seeding_of(req["path"], req["factory"], req["seed"])
    opts = Options(steps=req["steps"], seed=req["seed"], device=str(device), full_size=req["full_size"],
                   trust_remote_code=req["trust_remote_code"])
    target = resolve_target(req["path"], req["adapter"]) if req["path"] else None
    subject, _, _ = prepare(target, req["factory"], opts)
    if not seeding.by_factory:
        torch.manual_seed(seeding.seed_for(rank))
        if device.type == "cuda":
            torch.cuda.manual_seed_all(seeding.seed_for(rank))
    where, span = (target.config_path, None) if target else _factory_place(req["factory"])
    seeds = [None] * world
    dist.all_gather_object(seeds, None if seeding.by_factory else seeding.seed_for(rank))
    digests = gather_digests(device)
    groups = shared_groups(digests)

    model = subject.model
    model.train()
    ddp = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
    params = trainable(model)
    losses = []
    with Instrument(model, mode="record", phase="train") as ins:
        opt = torch.optim.AdamW(params, lr=opts.lr, weight_decay=0.0) if params else None
        for _ in range(opts.steps):
            out = ddp(*subject.args, **subject.kwargs)
            if opt is not None:
                loss = subject.loss_fn(out)
                losses.append(float(loss.detach().float()))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.eval()
        ins.phase = "eval"
        with torch.no_grad():
            ddp(*subject.args, **subject.kwargs)
    sites = gather_sites(ins.sites)
    all_losses = [None] * world
    dist.all_gather_object(all_losses, losses)
    if rank != 0:
        return {}
    ctx = checks.Context(where, list(target.keys) if target else [], origin=subject.origin)
    rows, findings, _ = checks.site_rows(sites, ctx, scale_tolerance(subject.dtype))
    # the global batch's loss: the mean over ranks per step (each rank saw its own masks)
    global_loss = [sum(step) / len(step) for step in zip(*all_losses)] if all(all_losses) else []
    findings += checks.loss_checks(global_loss, where)
    how = seeding.how if seeding.by_factory else f"{seeding.how}; seeds per rank: {seeds}"
    if seeding.place:
        where, span = seeding.place
    live = any(s.train.p > 0 for s in sites.values())   # shared masks matter only where something drops
    f = rank_finding(groups, world, where, how, span, severity="" if seeding.verified else "info") if live else None
    if f is not None:
        findings.append(f)
    findings.sort(key=lambda f: f.sort_key())
    from auditor.run.cache import encode

    return {
        "ranks": {"world_size": world, "backend": str(dist.get_backend()), "device": device.type,
                  "seeding": seeding.how, "rule": seeding.rule, "seeds": seeds, "digests": digests,
                  "identical_groups": groups},
        "meta": {"model": subject.description, "steps": opts.steps, "seed": opts.seed},
        "sites": [r.to_dict() for r in rows],
        "losses": all_losses,
        "findings": encode(findings),
    }


def _teardown(dist) -> None:
    """Every rank reaches the same point before the group goes: a rank that destroys its gloo
    group while its peer still talks to it can die at exit with "terminate called without an
    active exception" (SIGABRT), one run in three on a busy 2-core machine."""
    try:
        dist.barrier()
    except Exception:  # noqa: BLE001  a peer already gone: tear down what is left
        pass
    dist.destroy_process_group()


def rank_main(request_path: str, out_path: str) -> int:
    with open(request_path, encoding="utf-8") as fh:
        req = json.load(fh)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    from auditor.probe.runner import pick_device

    device = pick_device(req["device"])
    if device.type == "cuda":
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        torch.set_num_threads(1)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
    except ImportError:
        pass
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(seconds=300))
    result: dict = {}
    try:
        result = run_rank(req, rank, world, device)
    except Exception as exc:  # noqa: BLE001  one line for the parent, never a traceback per rank
        from auditor.probe.session import one_line

        result = {"error": f"rank {rank}: {one_line(exc)}"}
    if result and (rank == 0 or "error" in result):  # written before the group goes (see below)
        tmp = f"{out_path}.{rank}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(result, fh, default=str)
        os.replace(tmp, out_path)
    _teardown(dist)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    # The result is on disk before the gloo group is torn down, and the rank leaves with
    # os._exit: a gloo thread still joinable at interpreter exit aborts the process ("terminate
    # called without an active exception", SIGABRT) now and then on a busy machine even after
    # the barrier, and torchrun then killed the other rank before it had written its result.
    code = rank_main(sys.argv[1], sys.argv[2])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
