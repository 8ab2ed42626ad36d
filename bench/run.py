"""Performance harness for dropout-audit (issue 7): one command, peers side by side.

    python bench/run.py                 # everything, about 6-9 minutes on 2 busy cores
    python bench/run.py --quick         # fewer repetitions, 1k/5k trees: a 2-minute smoke run
    python bench/run.py --only cold,corpus --reps 9

Every comparison runs the tool and its peers in the same process tree, on the same files,
interleaved (the order rotates each repetition) so that load from other users of the machine
hits all of them alike; the table reports medians and ratios, which survive noise far better
than absolute seconds. Peak memory is the largest resident set of any single process and,
for --jobs runs, the sampled sum over the process tree. It is taken by GNU time (`/usr/bin/time
-f %M`) around each command where it exists: a child forked by this harness starts with the
harness's own pages mapped, and the kernel keeps that as the child's peak even after exec
(about 19 MB of "floor" under every figure); time's child starts from time's 1-2 MB. Without
GNU time the floor is measured (a run of `true`) and reported beside the figures.

The tool runs from this checkout (`python -m auditor`, PYTHONPATH set) with bytecode writing
allowed, as after `pip install`, which precompiles modules: an environment that sets
PYTHONDONTWRITEBYTECODE would otherwise recompile the package on every start and time the
compiler rather than the tool.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_CORPUS = os.path.join(os.path.dirname(REPO), "shared", "corpus")
PY = sys.executable
BIN = os.path.dirname(PY)
PROBE_ARGS = ["fixtures/probe-llama-lora/config.json", "--adapter", "fixtures/probe-llama-lora/adapter_config.json"]

sys.path.insert(0, HERE)
import gen_tree  # noqa: E402

try:
    import psutil
except ImportError:  # the tree-wide memory column is then left empty
    psutil = None


def tool_env(site: str | None = None, no_bytecode: bool = False) -> dict:
    """The tool from this checkout, or from an installed copy at `site` (cold start modes)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    base = site or REPO
    env["PYTHONPATH"] = base + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["NO_COLOR"] = "1"
    return env


def audit(*args) -> list:
    return [PY, "-m", "auditor", "check", *args]


def peer(name: str) -> str | None:
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else shutil.which(name)


class Run:
    __slots__ = ("wall", "cpu", "rss", "tree_rss", "rc", "digest")

    def __init__(self, wall, cpu, rss, tree_rss, rc, digest):
        self.wall, self.cpu, self.rss, self.tree_rss, self.rc, self.digest = wall, cpu, rss, tree_rss, rc, digest


ENVS: dict = {}  # command name -> environment, for the cold start modes (default: tool_env())


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def measure(cmd, cwd, ok=(0, 1), env=None) -> Run:
    """Wall time, peak RSS (MB) of the largest process and of the whole tree, output digest.
    The peak is net of this harness (GNU time's report, see the module docstring)."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    peak_file = None
    if GNU_TIME:
        fd, peak_file = tempfile.mkstemp(prefix="dropout-bench-rss-")
        os.close(fd)
        cmd = [GNU_TIME, "-q", "-f", "%M", "-o", peak_file, *cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env or tool_env(), stdout=out, stderr=err)
    tree_peak = 0
    watch = psutil.Process(proc.pid) if psutil else None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if watch is not None:
            try:
                total = watch.memory_info().rss + sum(c.memory_info().rss for c in watch.children(recursive=True))
                tree_peak = max(tree_peak, total)
            except (psutil.Error, OSError):
                pass
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    digest = hashlib.sha256(out.read()).hexdigest()[:12]
    if proc.returncode not in ok:
        err.seek(0)
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{err.read().decode(errors='replace')[-2000:]}")
    rss = usage.ru_maxrss / 1024  # KiB on Linux
    if peak_file is not None:
        try:
            with open(peak_file, encoding="utf-8") as fh:
                rss = int(fh.read().split()[-1]) / 1024  # the command's own peak, KiB
        except (OSError, ValueError, IndexError):
            pass
        finally:
            os.unlink(peak_file)
    cpu = usage.ru_utime + usage.ru_stime  # includes the pool's workers, which it waited for
    return Run(wall, cpu, rss, tree_peak / 2**20 if tree_peak else None, proc.returncode, digest)


def interleaved(cmds: dict, reps: int, cwd: str, before=None) -> dict:
    """name -> [Run]; each repetition runs every command once, in a rotating order."""
    names = list(cmds)
    results = {n: [] for n in names}
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            if before is not None:
                before(name)
            results[name].append(measure(cmds[name], cwd, env=ENVS.get(name)))
    return results


def med(runs, attr="wall"):
    values = [getattr(r, attr) for r in runs if getattr(r, attr) is not None]
    return statistics.median(values) if values else None


# --- the table -----------------------------------------------------------------------------

ROWS: list = []      # (section, what, median wall, median cpu, n, memory, note)
BUDGETS: list = []   # (budget, measured, target, met)
NOTES: list = []


def row(section, what, runs, note=""):
    rss = max(r.rss for r in runs)
    tree = med(runs, "tree_rss")
    mem = f"{rss:.0f} MB" + (f" (tree {tree:.0f})" if tree and tree > rss * 1.2 else "")
    ROWS.append((section, what, f"{med(runs):.3f}", f"{med(runs, 'cpu'):.3f}", str(len(runs)), mem, note))
    print(f"  {what}: median {med(runs):.3f} s (cpu {med(runs, 'cpu'):.3f} s) over {len(runs)}, peak {mem} {note}",
          flush=True)


def budget(name, value, target, higher_is_better=False, fmt="{:.2f}"):
    met = value >= target if higher_is_better else value <= target
    BUDGETS.append((name, fmt.format(value), ("≥ " if higher_is_better else "≤ ") + fmt.format(target),
                    "met" if met else "**missed**"))
    print(f"  budget {name}: {fmt.format(value)} (target {'>=' if higher_is_better else '<='} {target}) "
          f"{'met' if met else 'MISSED'}", flush=True)


def markdown() -> str:
    lines = ["| section | command | median wall s | median CPU s | n | peak RSS | note |",
             "|---|---|---:|---:|---:|---:|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in ROWS]
    lines += ["", "| budget | measured | target | |", "|---|---:|---:|---|"]
    lines += ["| " + " | ".join(b) + " |" for b in BUDGETS]
    lines += [""] + [f"- {n}" for n in NOTES]
    return "\n".join(lines)


# --- sections --------------------------------------------------------------------------------

def small_recipe(corpus: str) -> str:
    preferred = os.path.join(corpus, "axolotl", "examples", "qwen3", "8b-lora-fused-attn.yaml")
    if os.path.exists(preferred):
        return preferred
    pool = [os.path.join(r, f) for r, _, fs in os.walk(corpus) for f in fs if f.endswith(".yaml")]
    return min(pool, key=os.path.getsize)


def install(work, compile_bytecode: bool = True) -> str:
    """This checkout built into a wheel by its own build step and unpacked into a site
    directory, with .pyc files compiled as pip compiles them on install (compile_bytecode), or
    none at all: the "fresh install, PYTHONDONTWRITEBYTECODE=1" mode starts from a package
    that has never been byte-compiled, as `pip install --no-compile` leaves it."""
    dist = os.path.join(work, "dist")
    subprocess.run([PY, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", dist,
                    REPO], check=True, stdout=subprocess.DEVNULL)
    import zipfile

    (wheel,) = [os.path.join(dist, f) for f in os.listdir(dist) if f.endswith(".whl")]
    site = os.path.join(work, "site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    if compile_bytecode:
        subprocess.run([PY, "-m", "compileall", "-q", site], check=True, stdout=subprocess.DEVNULL)
    elif _bytecode(site):
        raise SystemExit(f"{site}: the unpacked wheel holds bytecode: {_bytecode(site)[:3]}")
    return site


def _bytecode(site: str) -> list:
    """Every __pycache__ folder and .pyc file under the package(s) of an install."""
    found = []
    for root, dirs, files in os.walk(site):
        found += [os.path.join(root, d) for d in dirs if d == "__pycache__"]
        found += [os.path.join(root, f) for f in files if f.endswith(".pyc")]
    return found


def _read_only(path: str) -> None:
    for root, dirs, files in os.walk(path):
        for name in files:
            os.chmod(os.path.join(root, name), 0o444)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o555)


def cold_start(work, corpus, reps):
    """One recipe, `dropout-audit check one.yaml` as a pre-commit hook runs it, in the three
    install modes of issue 14: a fresh install under PYTHONDONTWRITEBYTECODE=1 (nothing can be
    cached at run time), a read-only install, and a warm writable one, each with no findings
    cache (the file is new or changed); yamllint and ruff (on a one-line Python file) beside
    them in the same interleaved run."""
    print("1. cold start on one recipe, three install modes", flush=True)
    d = os.path.join(work, "cold")
    os.makedirs(d)
    shutil.copy(small_recipe(corpus), os.path.join(d, "one.yaml"))
    with open(os.path.join(d, "one.py"), "w") as fh:
        fh.write("import torch\n")
    fresh = install(os.path.join(work, "fresh"), compile_bytecode=False)
    ro, warm = (install(os.path.join(work, m)) for m in ("ro", "warm"))
    _read_only(ro)
    modes = {"fresh install, PYTHONDONTWRITEBYTECODE=1": tool_env(fresh, no_bytecode=True),
             "read-only install": tool_env(ro), "warm install": tool_env(warm)}
    cmds = {}
    for mode, env in modes.items():
        name = f"dropout-audit check one.yaml ({mode})"
        cmds[name] = audit("one.yaml")
        ENVS[name] = env
    # CI's line (issue 27): options without click, on the warm install
    name = "dropout-audit check --format github --select DRP1 one.yaml (warm install)"
    cmds[name] = audit("--format", "github", "--select", "DRP1", "one.yaml")
    ENVS[name] = modes["warm install"]
    cmds["yamllint one.yaml"] = [peer("yamllint"), "one.yaml"]
    if peer("ruff"):
        cmds["ruff check --no-cache one.py (reference)"] = [peer("ruff"), "check", "--no-cache", "--isolated", "one.py"]
    for name in cmds:  # warm-up: the OS page cache; the warm install keeps what it may write
        if "fresh" not in name:
            measure(cmds[name], d, env=ENVS.get(name))

    def before(name):  # no mode finds a findings cache: a fresh CI job has none, a hook checks
        # a file because it changed, and a mode's own entry from the previous repetition would
        # make some of its runs hits, depending on the rotation (so its median meant nothing)
        if name.startswith("dropout-audit"):
            shutil.rmtree(os.path.join(d, ".dropout_audit_cache"), ignore_errors=True)

    res = interleaved(cmds, reps, d, before)
    if _bytecode(fresh):  # the mode measured what it says: nothing was compiled or cached there
        raise SystemExit(f"the fresh install wrote bytecode: {_bytecode(fresh)[:3]}")
    NOTES.append("cold start, fresh install: the unpacked wheel was never byte-compiled and held no "
                 "__pycache__ after every run (checked), so each run compiled the package in memory")
    y = med(res["yamllint one.yaml"])
    for name, runs in res.items():
        row("1 cold start", name, runs, f"{med(runs) / y:.2f}× yamllint wall, {med(runs, 'cpu') / med(res['yamllint one.yaml'], 'cpu'):.2f}× CPU")
    for mode in modes:
        runs = res[f"dropout-audit check one.yaml ({mode})"]
        budget(f"cold start / yamllint, {mode}", med(runs) / y, 0.8)
    for root, dirs, _ in os.walk(ro):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)


def corpus_run(work, corpus, reps):
    print("2. the shared corpus", flush=True)
    yaml_files, py_files, all_files = [], [], 0
    for root, dirs, files in os.walk(corpus):
        dirs.sort()
        for f in sorted(files):
            rel = os.path.relpath(os.path.join(root, f), corpus)
            if f.endswith((".yaml", ".yml")):
                yaml_files.append(rel)
            elif f.endswith(".py"):
                py_files.append(rel)
    from auditor import sources

    suffixes = tuple(sources.readers())
    all_files = sum(1 for r, _, fs in os.walk(corpus) for f in fs if f.lower().endswith(suffixes))
    cache = os.path.join(work, "corpus-cache")  # outside the corpus, which is read-only to us
    cmds = {
        "dropout-audit check --no-cache YAML": audit("--no-cache", *yaml_files),
        "dropout-audit check --no-cache --jobs 1 YAML": audit("--no-cache", "--jobs", "1", *yaml_files),
        "yamllint YAML": [peer("yamllint"), *yaml_files],
        "dropout-audit check --no-cache corpus/": audit("--no-cache", "."),
        "dropout-audit check --jobs 1 YAML (warm cache)": audit("--jobs", "1", "--cache-dir", cache, *yaml_files),
    }
    if peer("ruff") and py_files:
        cmds["ruff check --no-cache PY (reference)"] = [peer("ruff"), "check", "--no-cache", "--isolated", *py_files]
    for cmd in cmds.values():
        measure(cmd, corpus)
    res = interleaved(cmds, reps, corpus)
    counts = {"YAML": len(yaml_files), "corpus/": all_files, "PY": len(py_files)}
    for name, runs in res.items():
        n = next(v for k, v in counts.items() if k in name)
        row("2 corpus", name, runs, f"{n} files, {1000 * med(runs) / n:.2f} ms/file")
    y = med(res["yamllint YAML"])
    budget("corpus s/file ÷ yamllint's (default jobs)", med(res["dropout-audit check --no-cache YAML"]) / y, 1.0)
    budget("corpus s/file ÷ yamllint's (--jobs 1, no cache)", med(res["dropout-audit check --no-cache --jobs 1 YAML"]) / y,
           0.4)
    budget("corpus s/file ÷ yamllint's (--jobs 1, warm cache)",
           med(res["dropout-audit check --jobs 1 YAML (warm cache)"]) / y, 0.4)


def scaling(work, corpus, sizes, reps_for, deadline, parallel_only=False):
    """Serial and --jobs runs per tree size; a run whose estimate (from the previous size's
    per-file time) would overrun the harness deadline is skipped, and the table says so."""
    print("3. scaling on generated trees (+ 4. cache)", flush=True)
    walls = {}
    jobs = os.cpu_count() or 1
    modes = {"--jobs 1": ["--jobs", "1"], f"--jobs {jobs}": []}
    if parallel_only:
        del modes["--jobs 1"]
    per_file = {}
    for n in sizes:
        cache_here = not parallel_only and (n == 10_000 or (n == max(sizes) and 10_000 not in sizes))
        planned, reps = _plan(n, modes, per_file, reps_for(n), deadline, with_cache=cache_here)
        for mode in modes:
            if mode not in planned:
                why = "skipped: its estimate (from the previous size) would pass the harness deadline (--deadline)"
                ROWS.append(("3 scaling", f"{n} files, {mode}", "–", "–", "0", "–", why))
                print(f"  {n} files, {mode}: {why}", flush=True)
        if not planned:
            continue
        tree = os.path.join(work, f"tree{n}")
        t0 = time.perf_counter()
        gen_tree.generate(tree, n, corpus, seed=n)
        print(f"  generated {n} files in {time.perf_counter() - t0:.1f} s", flush=True)
        res = interleaved({f"{n} files, {m}": cmd for m, cmd in planned.items()}, reps, tree)
        digests = {r.digest for runs in res.values() for r in runs}
        for name, runs in res.items():
            row("3 scaling", name, runs, f"{1000 * med(runs) / n:.2f} ms/file")
        if len(digests) != 1:
            raise SystemExit(f"serial and parallel output differ on {n} files: {digests}")
        walls[n] = {k.split(", ")[1]: med(v) for k, v in res.items()}
        walls[n]["rss"] = max(r.rss for runs in res.values() for r in runs)
        for mode in planned:
            per_file[mode] = walls[n][mode] / n
        if len(planned) == 2 and (n == 10_000 or (n == max(sizes) and 10_000 not in sizes)):
            budget(f"--jobs {jobs} speedup over serial, {n} files", walls[n]["--jobs 1"] / walls[n][f"--jobs {jobs}"],
                   1.6, higher_is_better=True)
            cpu = {k.split(", ")[1]: med(v, "cpu") for k, v in res.items()}
            ideal = jobs * cpu["--jobs 1"] / cpu[f"--jobs {jobs}"]
            NOTES.append(f"{n} files: --jobs {jobs} used {cpu[f'--jobs {jobs}']:.1f} CPU-s against "
                         f"{cpu['--jobs 1']:.1f} serially, so with {jobs} idle cores its speedup would be about "
                         f"{ideal:.2f}× (the wall-clock ratio depends on how much of the cores others leave)")
        if cache_here:
            cache_run(tree, n, reps)
        shutil.rmtree(tree, ignore_errors=True)
    big = max(walls) if walls else None
    if big and 10_000 in walls and big > 10_000:
        for mode in modes:
            if mode in walls[big] and mode in walls[10_000]:
                budget(f"time {big // 1000}k / 10k ({mode})", walls[big][mode] / walls[10_000][mode],
                       5.5 * big / 50_000)
    if big:
        budget(f"peak RSS at {big} files (MB)", walls[big]["rss"], 150, fmt="{:.0f}")


def _plan(n, modes, per_file, max_reps, deadline, with_cache):
    """Which modes, and how many repetitions, fit before the deadline: the most repetitions
    with both modes, else the parallel mode alone; estimates come from the previous size."""
    jobs_mode = list(modes)[-1]
    left = deadline - time.perf_counter() - n * 0.002  # generating the tree
    for wanted in (list(modes), [jobs_mode]):
        for reps in range(max_reps, 0, -1):
            est = sum(per_file.get(m, 0) * n * reps for m in wanted)
            if with_cache:
                est += per_file.get(jobs_mode, 0) * n * reps * 1.2
            if est <= left:
                return {m: audit("--no-cache", *modes[m], "--format", "json", ".") for m in wanted}, reps
    return {}, 0


def cache_run(tree, n, reps):
    cache = os.path.join(tree, ".dropout_audit_cache")

    def before(name):
        if name.startswith("cold"):
            shutil.rmtree(cache, ignore_errors=True)

    cmds = {"cold (empty cache)": audit("--format", "json", "."),
            "warm (unchanged tree)": audit("--format", "json", ".")}
    res = {"cold (empty cache)": [], "warm (unchanged tree)": []}
    for _ in range(reps):  # a warm run needs a cold one before it: pairs, not rotation
        before("cold")
        res["cold (empty cache)"].append(measure(cmds["cold (empty cache)"], tree))
        res["warm (unchanged tree)"].append(measure(cmds["warm (unchanged tree)"], tree))
    if len({r.digest for runs in res.values() for r in runs}) != 1:
        raise SystemExit("warm and cold runs printed different findings")
    for name, runs in res.items():
        row("4 cache", f"{n} files, {name}", runs)
    budget(f"warm cache speedup, {n} files", med(res["cold (empty cache)"]) / med(res["warm (unchanged tree)"]), 5.0,
           higher_is_better=True)


def transformers_models() -> str | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("transformers")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "models")
    return path if os.path.isdir(path) else None


def python_trees(work, reps, sizes=(100, 300, 540)):
    """Issue 17: the Python path beside pyflakes and ruff (F rules), serial and uncached, on
    the installed Transformers' models/ and on flat directories of its modeling_*.py files
    (one directory of many scripts, where the engine keeps a whole directory's sources), with
    the peak resident memory of each process."""
    print("6. Python trees: Transformers models/ and flat modeling_*.py directories", flush=True)
    models = transformers_models()
    if models is None:
        ROWS.append(("6 python", "transformers models/", "–", "–", "0", "–", "skipped: transformers not installed"))
        return
    modeling = sorted(os.path.join(r, f) for r, _, fs in os.walk(models) for f in fs
                      if f.startswith("modeling_") and f.endswith(".py"))
    trees = {"models/": models}
    for n in sizes:
        flat = os.path.join(work, f"flat{n}")
        os.makedirs(flat)
        for path in modeling[:n]:
            shutil.copy(path, os.path.join(flat, os.path.basename(path)))
        trees[f"flat {min(n, len(modeling))} modeling files"] = flat
    for label, tree in trees.items():
        count = sum(1 for _, _, fs in os.walk(tree) for f in fs if f.endswith(".py"))
        cmds = {f"dropout-audit ({label})": audit("--no-cache", "--jobs", "1", "--format", "json", "."),
                f"pyflakes ({label})": [PY, "-m", "pyflakes", "."]}
        if peer("ruff"):
            cmds[f"ruff check --select F ({label})"] = [peer("ruff"), "check", "--no-cache", "--isolated",
                                                      "--select", "F", "--exit-zero", "."]
        res = interleaved(cmds, reps, tree)
        for name, runs in res.items():
            row("6 python", name, runs, f"{count} files")
        ours = med(res[f"dropout-audit ({label})"])
        NOTES.append(f"{label}: dropout-audit / pyflakes wall = {ours / med(res[f'pyflakes ({label})']):.2f}, "
                     f"peak RSS {max(r.rss for r in res[f'dropout-audit ({label})']):.0f} MB")


def probe_run(work, reps):
    print("5. runtime probe (tiny Llama + LoRA, CPU)", flush=True)
    import importlib.util

    missing = [m for m in ("auditor.probe.command", "torch", "transformers", "peft")
               if _find(importlib.util, m) is None]
    if missing or not os.path.exists(os.path.join(REPO, PROBE_ARGS[0])):
        why = f"missing {', '.join(missing)}" if missing else f"no {PROBE_ARGS[0]}"
        print(f"  skipped: {why} (the probe lives on another branch)", flush=True)
        ROWS.append(("5 probe", "dropout-audit probe …", "–", "–", "0", "–", f"skipped: {why}"))
        return
    cmd = [PY, "-m", "auditor", "probe", *PROBE_ARGS]
    res = interleaved({"dropout-audit probe (tiny Llama+LoRA, CPU)": cmd}, reps, REPO)
    for name, runs in res.items():
        row("5 probe", name, runs)


def _find(util, name):
    try:
        return util.find_spec(name)
    except (ImportError, ValueError):
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="dropout-audit performance harness")
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--reps", type=int, default=None, help="repetitions for the short comparisons")
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--quick", action="store_true", help="1k/5k trees and fewer repetitions")
    ap.add_argument("--only", default="cold,corpus,scaling,probe",
                    help="sections: cold,corpus,scaling,probe,python (python: issue 17, Transformers' models/)")
    ap.add_argument("--python-sizes", default="100,300,540", help="flat directory sizes for the python section")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--parallel-only", action="store_true",
                    help="scaling: only the default --jobs runs, no cache section (for 50k on a busy machine)")
    ap.add_argument("--deadline", type=float, default=570,
                    help="seconds the whole harness may take; scaling runs that would pass it are skipped")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.corpus):
        print(f"the corpus is not at {args.corpus} (--corpus)", file=sys.stderr)
        return 2
    sizes = [1000, 5000] if args.quick else [int(s) for s in args.sizes.split(",")]
    reps = args.reps or (3 if args.quick else 7)
    only = set(args.only.split(","))
    sys.path.insert(0, REPO)
    subprocess.run([PY, "-m", "compileall", "-q", os.path.join(REPO, "auditor")], env=tool_env(), check=False)
    t0 = time.perf_counter()
    if GNU_TIME:
        NOTES.append("peak RSS: GNU time's figure for each command, net of this harness's interpreter")
    else:
        floor = measure(["true"], REPO, ok=(0,)).rss
        NOTES.append(f"peak RSS: no GNU time here; every figure includes this harness's {floor:.0f} MB floor "
                     "(a forked child keeps its parent's peak)")
    print(f"dropout-audit bench: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, python "
          f"{sys.version.split()[0]}", flush=True)
    work = tempfile.mkdtemp(prefix="dropout-bench-")
    try:
        if "cold" in only:
            cold_start(work, args.corpus, reps * 2 + 1)
        if "corpus" in only:
            corpus_run(work, args.corpus, reps)
        if "scaling" in only:
            scaling(work, args.corpus, sizes, lambda n: 3 if n <= 1000 else (2 if n <= 10_000 else 1),
                    t0 + args.deadline - (60 if "probe" in only else 0), args.parallel_only)
        if "python" in only:
            # one repetition unless --reps asks for more (each is ~2 minutes on 2 cores)
            python_trees(work, args.reps or 1, sizes=tuple(int(x) for x in args.python_sizes.split(",")))
        if "probe" in only:
            probe_run(work, 1 if args.quick else 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = markdown()
    print()
    print(f"load average at the end {os.getloadavg()[0]:.1f}; total {time.perf_counter() - t0:.0f} s")
    print(table)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
