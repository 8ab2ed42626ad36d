"""Count the setup graph's links in a tree, by kind and by outcome (followed, missing, or
why not followed), and list each one with --list. Used for docs/setup-graph.md.

    python bench/graph_links.py ../shared/corpus [--list]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    from auditor.run.discover import discover
    from auditor.run.engine import Engine, Options
    from auditor.setup import links as L

    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    engine = Engine(Options(root=args.root))
    counts = collections.Counter()
    rows = []
    for path in discover([args.root], engine.suffixes).files:
        src = engine.load(path)
        if src is None or src.kind == "unreadable":
            continue
        for link in L.of_source(src, args.root):
            outcome = "followed" if link.exists else ("missing" if link.target else link.reason)
            counts[(link.kind, outcome)] += 1
            rows.append(f"{link.kind:14} {outcome:12} {os.path.relpath(link.path, args.root)}:{link.span.line} "
                        f"{link.written!r} -> {link.target and os.path.relpath(link.target, args.root)}")
    for kind in L.KINDS:
        total = sum(n for (k, _), n in counts.items() if k == kind)
        detail = ", ".join(f"{o} {n}" for (k, o), n in sorted(counts.items()) if k == kind)
        print(f"{kind:14} {total:4}  {detail}")
    print(f"{'total':14} {sum(counts.values()):4}")
    if args.list:
        print("\n".join(rows))


if __name__ == "__main__":
    main()
