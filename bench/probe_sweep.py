"""Probe coverage: probe the default config of every type in Transformers' causal-LM,
image-text-to-text, seq2seq, audio-classification, image-classification and masked-LM mappings,
and count completed / refused / crashed, and the types whose every part ran.

    nice python bench/probe_sweep.py                      # every type (long: run in the background)
    nice python bench/probe_sweep.py --family causal-lm --limit 20 --jobs 2 --timeout 120
    nice python bench/probe_sweep.py --types llama jamba whisper

Each type's default config is saved by Transformers itself (`save_pretrained` of the config
class's defaults, with the mapping's class as `architectures`, as a real checkpoint's config
says; a default Transformers cannot construct gets a config.json of its model_type and class
only), then probed with `--steps 2` in a forked child under a wall-clock limit. Every phase of
the probe runs (build, key map, fine-tune, eval passes, magnitude, module survey), with fewer
repeated forwards and no step timing (ProbeRequest.light), so that the sweep measures whether a
type can be probed, not how long 128 forwards take on a busy machine. "refused" is a DRP811
finding (one line, exit 2); "crashed" is anything else: an exception escaping the probe's
boundary, a dead child or a timeout. "all parts ran": completed, and every part of the model
built from a sub-config (vision, audio, protein, ...) ran in the fine-tune (probe/parts.py).
A refused type is also built by Transformers itself, at full size on the meta device: where
that fails too, the refusal is the default's fact (a key its own model reads left unset, widths
that contradict each other), and "completed % of the defaults Transformers builds" leaves it out
(not where the failure is a package missing on this machine: that stays the probe's refusal).
Every DRP804 is listed with its key, to be checked against the modeling source. Results go to
stdout as a table and, with --json, to a file (rewritten after every type, so a sweep stopped
half-way keeps what it measured).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAMILIES = {
    "causal-lm": ("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",),
    "image-text-to-text": ("MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES",),
    "seq2seq": ("MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES"),
    "audio-classification": ("MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES",),
    "image-classification": ("MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES",),
    "masked-lm": ("MODEL_FOR_MASKED_LM_MAPPING_NAMES",),
}


LIGHT = True   # every phase of the probe runs, with fewer repeated forwards and no step timing


def mapped_types(family: str) -> dict[str, str]:
    """model_type -> the class the mapping builds for it."""
    from transformers.models.auto import modeling_auto

    out: dict[str, str] = {}
    for name in FAMILIES[family]:
        for model_type, cls in getattr(modeling_auto, name).items():
            out.setdefault(model_type, cls if isinstance(cls, str) else cls[0])
    return dict(sorted(out.items()))


def save_default(model_type: str, arch: str, directory: str) -> str:
    """The type's default config as Transformers saves it; "minimal" when it cannot (a default
    that fails its own validation): then only model_type and the class are written."""
    from transformers import CONFIG_MAPPING

    try:
        config = CONFIG_MAPPING[model_type]()
        config.architectures = [arch]
        config.save_pretrained(directory)
        return "saved"
    except Exception:  # noqa: BLE001  what Transformers cannot save, the probe gets as a user would write it
        with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as fh:
            json.dump({"model_type": model_type, "architectures": [arch]}, fh)
        return "minimal"


def probe_one(model_type: str, arch: str, steps: int) -> dict:
    """Probe one default config in this (child) process; never raises."""
    from auditor.probe.session import CannotProbe, ProbeRequest, execute

    started = time.monotonic()
    extra: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "config.json")
        extra["config"] = save_default(model_type, arch, tmp)
        try:
            result = execute(ProbeRequest(path=path, steps=steps, device="cpu", light=LIGHT))
            status, detail = "completed", result.meta.get("model", "")
            parts = [p for p in result.parts if p["built"]]
            extra.update(
                parts={p["part"]: p["ran"] for p in parts},
                all_parts_ran=all(p["ran"] for p in parts),
                idle_parts=[p["line"] for p in parts if not p["ran"]],
                codes=sorted({f.code for f in result.findings}),
                drp804=[f.message for f in result.findings if f.code == "DRP804"],
                not_exercised=[k["key"] for k in result.keys if k["verdict"] == "not exercised"],
                no_op=[k["key"] for k in result.keys if k["verdict"] == "no-op"],
                survey={k: v for k, v in result.survey.items() if k != "judged"},
                judged=[(j["path"], j["kind"], j["train_verdict"]) for j in result.survey.get("judged", [])])
        except CannotProbe as exc:
            status, detail = "refused", exc.reason
            extra["transformers_builds"] = transformers_builds(arch, path)
        except BaseException as exc:  # noqa: BLE001  what the sweep exists to count
            status = "crashed"
            detail = f"{type(exc).__name__}: {exc}".splitlines()[0][:300] + " | " + \
                traceback.format_exc().strip().splitlines()[-1][:200]
            extra["traceback"] = traceback.format_exc()[-2000:]
    return {"type": model_type, "class": arch, "status": status, "detail": detail,
            "seconds": round(time.monotonic() - started, 1), **extra}


def transformers_builds(arch: str, path: str) -> str:
    """"yes", or why Transformers itself cannot build the class from this config.json at full
    size (on the meta device: no memory, no weights). A refusal of a default Transformers cannot
    build either is the default's fact, not the probe's gap; the summary counts those apart."""
    import torch
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(os.path.dirname(path))
        cls = getattr(transformers, arch, None) or transformers.AutoModel
        with torch.device("meta"):
            cls._from_config(config) if cls is not transformers.AutoModel else cls.from_config(config)
        return "yes"
    except BaseException as exc:  # noqa: BLE001  what Transformers says is the measurement
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def _child(queue, model_type, arch, steps):
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    queue.put(probe_one(model_type, arch, steps))


def sweep(items: list[tuple[str, str, str]], steps: int, timeout: float, jobs: int, out: str | None = None) -> list[dict]:
    """items: (family, model_type, class). Forked children, `jobs` at a time, each under `timeout`."""
    import torch  # noqa: F401  (imported once, before forking)
    import transformers  # noqa: F401

    ctx = mp.get_context("fork")
    pending = list(items)
    running: list = []
    results: list[dict] = []
    while pending or running:
        while pending and len(running) < jobs:
            family, model_type, arch = pending.pop(0)
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(queue, model_type, arch, steps), daemon=True)
            proc.start()
            running.append((proc, queue, family, model_type, arch, time.monotonic()))
        time.sleep(0.2)
        for entry in list(running):
            proc, queue, family, model_type, arch, started = entry
            res = None
            if not queue.empty():
                res = queue.get()
            elif not proc.is_alive():
                res = {"type": model_type, "class": arch, "status": "crashed",
                       "detail": f"child died (exit {proc.exitcode})", "seconds": 0}
            elif time.monotonic() - started > timeout:
                proc.kill()
                res = {"type": model_type, "class": arch, "status": "crashed",
                       "detail": f"timeout after {timeout:.0f}s", "seconds": round(timeout, 1)}
            if res is not None:
                proc.join(1)
                running.remove(entry)
                res["family"] = family
                results.append(res)
                idle = "" if res.get("all_parts_ran", True) else " [idle: " + ", ".join(
                    p for p, ran in res.get("parts", {}).items() if not ran) + "]"
                print(f"{res['status']:9} {family:18} {model_type:28} {res['seconds']:6.1f}s{idle}  "
                      f"{res['detail'][:150]}", flush=True)
                if out:
                    write_json(out, results)
    return results


def write_json(path: str, results: list[dict]) -> None:
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(sorted(results, key=lambda r: (r["family"], r["type"])), fh, indent=1)
    os.replace(path + ".tmp", path)


def summary(results: list[dict]) -> list[str]:
    lines = ["| family | types | completed | refused | crashed | completed % | all parts ran | all parts ran % "
             "| default cannot run a part | all parts ran % of the rest | Transformers cannot build the default "
             "| completed % of the defaults Transformers builds | DRP804 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for family in FAMILIES:
        rows = [r for r in results if r["family"] == family]
        if not rows:
            continue
        counts = {s: sum(r["status"] == s for r in rows) for s in ("completed", "refused", "crashed")}
        whole = sum(r["status"] == "completed" and r.get("all_parts_ran", False) for r in rows)
        drp804 = sum(len(r.get("drp804", [])) for r in rows)
        # a part whose own default config cannot run it at full size either (its vision tower's
        # output width differs from the text model's): no probe can run it, and the line says why
        own = sum(r["status"] == "completed" and not r.get("all_parts_ran", False)
                  and all("at full size either" in line for line in r.get("idle_parts", [])) for r in rows)
        rest = len(rows) - own
        # refused where Transformers itself cannot build its own default (measured per type); a
        # package missing here is this machine's gap, not the default's, and stays counted
        unbuildable = sum(r["status"] == "refused" and r.get("transformers_builds", "yes") != "yes"
                          and not r["transformers_builds"].startswith(("ImportError", "ModuleNotFoundError"))
                          for r in rows)
        buildable = len(rows) - unbuildable
        lines.append(f"| {family} | {len(rows)} | {counts['completed']} | {counts['refused']} | "
                     f"{counts['crashed']} | {100 * counts['completed'] / len(rows):.1f}% | {whole} | "
                     f"{100 * whole / len(rows):.1f}% | {own} | {100 * whole / max(rest, 1):.1f}% | {unbuildable} | "
                     f"{100 * counts['completed'] / max(buildable, 1):.1f}% | {drp804} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=sorted(FAMILIES), action="append")
    parser.add_argument("--types", nargs="*")
    parser.add_argument("--limit", type=int, default=0, help="first N types per family")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per type")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--json", help="write every result to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    items = []
    for family in args.family or list(FAMILIES):
        types = mapped_types(family)
        chosen = [t for t in types if not args.types or t in args.types]
        items += [(family, t, types[t]) for t in (chosen[: args.limit] if args.limit else chosen)]
    started = time.monotonic()
    results = sweep(items, args.steps, args.timeout, args.jobs, args.json)
    for line in summary(results):
        print(line)
    print(f"{len(results)} probes in {time.monotonic() - started:.0f}s")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
