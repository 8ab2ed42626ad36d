"""Evaluation of the everyday eval-mode forms (issue #26) on public code not used before: run
by hand, never in CI.

Issue #26 added DRP605 (a model the script builds and uses for inference without eval()),
made the mode flow interprocedural (main(), helpers, handlers, sibling model modules) and
added rules on hand-written dropout (DRP53x). This runs the code rules on from-scratch and
training repositories that no earlier evaluation used (docs/real-code-evaluation.md,
docs/notebook-evaluation.md, docs/framework-evaluation.md), lists every finding, and with a
verdict file computes precision per rule over warnings and errors. The judged table, the
commits and the misses found by reading the code live in docs/everyday-evaluation.md.

Getting the repositories (no network is needed by this script):

  1. In a session with the `fetch` tool: fetch `github:<owner>/<name>` for each entry of
     REPOS; it returns a bare mirror /work/.mirror/<owner>+<name>/repo. Elsewhere:
     `git clone --bare --depth 1 https://github.com/<owner>/<name> <mirror>`.
  2. `python bench/everyday_eval.py --extract --mirrors /work/.mirror --root /tmp/everyday`
     extracts each repository's Python files and notebooks at the mirror's HEAD (the commit is
     written to <root>/<short>/.commit and printed in the report).

Run:  python bench/everyday_eval.py --root /tmp/everyday [--verdicts bench/everyday_verdicts.tsv]
      [--select DRP52,DRP53,DRP60] [--list findings.tsv] [--base /tmp/base-layout]

--base runs the same rules with another checkout of the auditor (its path on PYTHONPATH, in a
subprocess) and lists the findings that are new, to judge only what changed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# short name -> (GitHub repository, folder evaluated)
REPOS = {
    "build-nanogpt": ("karpathy/build-nanogpt", ""),
    "ng-video-lecture": ("karpathy/ng-video-lecture", ""),
    "makemore": ("karpathy/makemore", ""),
    "labml": ("labmlai/annotated_deep_learning_paper_implementations", "labml_nn"),
    "MEGABYTE": ("lucidrains/MEGABYTE-pytorch", ""),
    "PaLM": ("lucidrains/PaLM-pytorch", ""),
    "pytorch-tutorial": ("yunjey/pytorch-tutorial", ""),
    "pytorch-transformer": ("hkproj/pytorch-transformer", ""),
    "pytorch-seq2seq": ("bentrevett/pytorch-seq2seq", ""),
    "detr": ("facebookresearch/detr", ""),
    "nlp-tutorial": ("graykode/nlp-tutorial", ""),
    "attention-is-all-you-need": ("jadore801120/attention-is-all-you-need-pytorch", ""),
    "original-transformer": ("gordicaleksa/pytorch-original-transformer", ""),
    "denoising-diffusion": ("lucidrains/denoising-diffusion-pytorch", ""),
    "DALLE": ("lucidrains/DALLE-pytorch", ""),
    "nn-zero-to-hero": ("karpathy/nn-zero-to-hero", ""),
    "d2l": ("d2l-ai/d2l-en", "d2l"),
    "minimind": ("jingyaogong/minimind", ""),
    "llama2.c": ("karpathy/llama2.c", ""),
    "pytorch-llama": ("hkproj/pytorch-llama", ""),
    "improved-diffusion": ("openai/improved-diffusion", ""),
    "sentiment-analysis": ("bentrevett/pytorch-sentiment-analysis", ""),
    "LoRA": ("microsoft/LoRA", ""),
    "pytorch-made": ("karpathy/pytorch-made", ""),
    "lit-llama": ("Lightning-AI/lit-llama", ""),
    "stable-diffusion": ("CompVis/stable-diffusion", ""),
}

# The rules that read Python code.
CODE_RULES = ("DRP110", "DRP52", "DRP53", "DRP60", "DRP70")


def extract(root: str, mirrors: str) -> None:
    for short, (repo, sub) in REPOS.items():
        git_dir = os.path.join(mirrors, repo.replace("/", "+"), "repo")
        if not os.path.isdir(git_dir):
            print(f"skip {short}: no mirror at {git_dir} (fetch github:{repo} first)", file=sys.stderr)
            continue
        dest = os.path.join(root, short)
        os.makedirs(dest, exist_ok=True)
        prefix = f"{sub}/" if sub else ""
        listed = subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "-r", "--name-only", "HEAD", "--",
                                 *([sub] if sub else [])], check=True, capture_output=True, text=True).stdout
        wanted = [p for p in listed.splitlines() if p.startswith(prefix) and p.endswith((".py", ".ipynb"))]
        for rel in wanted:  # one blob at a time: a snapshot may lack its largest files
            blob = subprocess.run(["git", "--git-dir", git_dir, "cat-file", "-p", f"HEAD:{rel}"], capture_output=True)
            if blob.returncode:
                print(f"{short}: {rel} is not in the snapshot", file=sys.stderr)
                continue
            target = os.path.join(dest, rel[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(blob.stdout)
        commit = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()
        with open(os.path.join(dest, ".commit"), "w", encoding="utf-8") as fh:
            fh.write(f"{repo} {commit}\n")


def audit(path: str, select: tuple) -> list:
    from auditor.run.discover import discover
    from auditor.run.engine import Engine, Options

    engine = Engine(Options(select=select, root=path))
    files = discover([path], engine.suffixes).files
    return [(f.path, f.span.line, f.code, f.severity, f.message) for f in engine.check_paths(files)]


def audit_with(checkout: str, path: str, select: tuple) -> list:
    """The same audit with another checkout of the auditor, in a subprocess."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); "
            "from auditor.run.discover import discover; from auditor.run.engine import Engine, Options; "
            "e = Engine(Options(select=tuple(sys.argv[3].split(',')), root=sys.argv[2])); "
            "print(json.dumps([(f.path, f.span.line, f.code, f.severity, f.message) "
            "for f in e.check_paths(discover([sys.argv[2]], e.suffixes).files)]))")
    env = dict(os.environ, PYTHONPATH=checkout)
    out = subprocess.run([sys.executable, "-c", code, checkout, path, ",".join(select)], check=True,
                         capture_output=True, text=True, env=env).stdout
    return [tuple(r) for r in json.loads(out)]


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
    ap.add_argument("--root", default="/tmp/everyday")
    ap.add_argument("--select", default=",".join(CODE_RULES))
    ap.add_argument("--verdicts", help="judged findings (TSV) to compute precision")
    ap.add_argument("--list", help="write every finding as TSV (repo, path, line, code, severity, message)")
    ap.add_argument("--base", help="another auditor checkout: list only the findings it does not report")
    ap.add_argument("--extract", action="store_true", help="extract the files from bare mirrors first")
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
        commit = open(os.path.join(path, ".commit"), encoding="utf-8").read().strip() \
            if os.path.exists(os.path.join(path, ".commit")) else "?"
        print(f"{short}: {commit}", file=sys.stderr)
        found = audit(path, select)
        if args.base:
            before = {(p, line, code, sev) for p, line, code, sev, _ in audit_with(args.base, path, select)}
            found = [f for f in found if f[:4] not in before]
        for fpath, line, code, severity, message in found:
            rel = os.path.relpath(fpath, path)
            rows.append((short, rel, line, code, severity, message))
            c = per_rule[code]
            c[severity] += 1
            c[f"repo:{short}"] += 1
            if severity in ("warning", "error"):
                v = verdicts.get((short, rel, line, code))
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
