"""Real-code evaluation of the code rules (issue #16): run by hand, never in CI.

The rules were built on fixtures; this runs them on public repositories they were not tuned
on and writes, per repository and per rule, how many warnings/errors/info they report, plus
every finding in a list to judge. With a verdict file it also computes precision (true
findings / all warnings and errors) per rule and overall; the judged table lives in
docs/real-code-evaluation.md.

Getting the repositories (no network is needed by this script):

  1. In a session with the `fetch` tool: fetch `github:<owner>/<name>` for each entry of
     REPOS; it returns a bare mirror such as /work/.mirror/<owner>+<name>/repo.
     Elsewhere: `git clone --bare --depth 1 https://github.com/<owner>/<name> <mirror>`.
  2. Extract the folder the evaluation covers (the commit is recorded in the report):

       mkdir -p /tmp/realcode/<short>
       git --git-dir=<mirror> archive HEAD <subdir> | tar -x -C /tmp/realcode/<short>

     or let this script do it: `python bench/real_code.py --extract --mirrors /work/.mirror`.

Run:  python bench/real_code.py --root /tmp/realcode [--verdicts bench/real_code_verdicts.tsv]
      [--select DRP11,DRP52,DRP60,DRP70] [--list findings.tsv]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# short name -> (GitHub repository, folder evaluated)
REPOS = {
    "peft": ("huggingface/peft", "examples"),
    "accelerate": ("huggingface/accelerate", "examples"),
    "axolotl": ("axolotl-ai-cloud/axolotl", "src"),
    "LLaMA-Factory": ("hiyouga/LLaMA-Factory", "src"),
    "unsloth": ("unslothai/unsloth", "unsloth"),
    "nanoGPT": ("karpathy/nanoGPT", ""),
    "minGPT": ("karpathy/minGPT", ""),
    "open-instruct": ("allenai/open-instruct", "open_instruct"),
    "torchtune": ("pytorch/torchtune", "recipes"),
    "gpt-neox": ("EleutherAI/gpt-neox", "megatron"),
    # beyond the list, for more findings to judge
    "litgpt": ("Lightning-AI/litgpt", "litgpt"),
    "alpaca-lora": ("tloen/alpaca-lora", ""),
    "OpenRLHF": ("OpenRLHF/OpenRLHF", "openrlhf"),
    "x-transformers": ("lucidrains/x-transformers", "x_transformers"),
}

# The rules that read Python code (the subject of issue #16).
CODE_RULES = ("DRP110", "DRP52", "DRP60", "DRP70")


def extract(root: str, mirrors: str) -> None:
    for short, (repo, sub) in REPOS.items():
        git_dir = os.path.join(mirrors, repo.replace("/", "+"), "repo")
        if not os.path.isdir(git_dir):
            print(f"skip {short}: no mirror at {git_dir} (fetch github:{repo} first)", file=sys.stderr)
            continue
        dest = os.path.join(root, short)
        os.makedirs(dest, exist_ok=True)
        cmd = ["git", "--git-dir", git_dir, "archive", "HEAD", "--", *([sub] if sub else [])]
        done = subprocess.run(cmd, capture_output=True)
        if done.returncode:  # a snapshot without its largest blobs: take its Python files only
            done = subprocess.run(cmd[:-1] + [os.path.join(sub, "*.py") if sub else "*.py"], check=True,
                                  capture_output=True)
        archive = done.stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
        commit = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()
        with open(os.path.join(dest, ".commit"), "w", encoding="utf-8") as fh:
            fh.write(f"{repo} {commit}\n")


def audit(path: str, select: tuple) -> list:
    from auditor.run.discover import discover
    from auditor.run.engine import Engine, Options

    engine = Engine(Options(select=select))
    files = discover([path], engine.suffixes).files
    return list(engine.check_paths(files))


def read_verdicts(path: str) -> dict:
    """TSV: repo<TAB>relative path<TAB>line<TAB>code<TAB>true|false<TAB>evidence."""
    verdicts = {}
    with open(path, encoding="utf-8") as fh:
        for row in fh:
            if not row.strip() or row.startswith("#"):
                continue
            repo, rel, line, code, verdict, *_ = row.rstrip("\n").split("\t")
            verdicts[(repo, rel, int(line), code)] = verdict.strip().lower() == "true"
    return verdicts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default="/tmp/realcode")
    ap.add_argument("--select", default=",".join(CODE_RULES))
    ap.add_argument("--verdicts", help="judged findings (TSV) to compute precision")
    ap.add_argument("--list", help="write every finding as TSV (repo, path, line, code, severity, message)")
    ap.add_argument("--extract", action="store_true", help="extract the folders from bare mirrors first")
    ap.add_argument("--mirrors", default="/work/.mirror")
    args = ap.parse_args(argv)
    if args.extract:
        extract(args.root, args.mirrors)
    select = tuple(s.strip() for s in args.select.split(",") if s.strip())
    verdicts = read_verdicts(args.verdicts) if args.verdicts else {}
    per_rule = collections.defaultdict(collections.Counter)
    rows = []
    for short in REPOS:
        path = os.path.join(args.root, short)
        if not os.path.isdir(path):
            print(f"missing {path}: see the module docstring to fetch it", file=sys.stderr)
            continue
        for f in audit(path, select):
            rel = os.path.relpath(f.path, path)
            rows.append((short, rel, f.span.line, f.code, f.severity, f.message))
            c = per_rule[f.code]
            c[f.severity] += 1
            c[f"repo:{short}"] += 1
            if f.severity in ("warning", "error"):
                v = verdicts.get((short, rel, f.span.line, f.code))
                c["true" if v else ("false" if v is False else "unjudged")] += 1
    if args.list:
        with open(args.list, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write("\t".join(map(str, r)) + "\n")
    print("| rule | warnings+errors | info | true | false | unjudged | repositories |")
    print("|---|---|---|---|---|---|---|")
    tot = collections.Counter()
    for code in sorted(per_rule):
        c = per_rule[code]
        we = c["warning"] + c["error"]
        repos = ", ".join(f"{k[5:]} {v}" for k, v in sorted(c.items()) if k.startswith("repo:"))
        print(f"| {code} | {we} | {c['info']} | {c['true']} | {c['false']} | {c['unjudged']} | {repos} |")
        tot.update({"we": we, "info": c["info"], "true": c["true"], "false": c["false"], "unjudged": c["unjudged"]})
    print(f"| all | {tot['we']} | {tot['info']} | {tot['true']} | {tot['false']} | {tot['unjudged']} | |")
    judged = tot["true"] + tot["false"]
    if judged:
        print(f"\nprecision (true / judged warnings and errors): {tot['true']}/{judged} = {tot['true'] / judged:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
