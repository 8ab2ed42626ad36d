"""Model identity figures on a corpus: how many setups name a model, by hub id or path, and
how each was resolved. Reads `dropout-audit plan --format json` output.

    python -m auditor plan --format json ../shared/corpus > /tmp/plan.json
    python bench/identity_corpus.py /tmp/plan.json [--list]
"""

from __future__ import annotations

import collections
import json
import sys

from auditor.setup import names


def main(argv) -> int:
    plans = json.load(open(argv[0], encoding="utf-8"))
    listing = "--list" in argv
    kinds = collections.Counter()
    sources = collections.Counter()
    unresolved = collections.Counter()
    resolved = collections.Counter()
    named = collections.Counter()   # custom code and other libraries' models: no Transformers type to find
    for plan in plans:
        model = plan["model"]
        if model is None:
            kinds["no model reference"] += 1
            continue
        ref = model["ref"]
        hub = names.is_hub_id(ref) or (ref.startswith("checkpoints/") and names.is_hub_id(ref[12:]))
        if model["source"] == "torchtune-builder":
            kind = "torchtune builder"
        elif hub and model["source"] not in ("local-path", "config.json"):
            kind = "hub id"
        else:
            kind = "path or config.json"
        kinds[kind] += 1
        if kind == "hub id":
            sources[model["source"]] += 1
            if model["model_type"] is not None:
                resolved[(ref, model["model_type"], model["source"])] += 1
            elif model["source"] in ("custom-code", "non-transformers"):
                named[(ref, model["source"])] += 1
            else:
                unresolved[ref] += 1
    print(f"setups: {len(plans)}")
    for k, v in sorted(kinds.items()):
        print(f"  {k}: {v}")
    total = sum(sources.values())
    others = sum(named.values())
    print(f"setups naming a model by hub id: {total}; resolved {sum(resolved.values())}, custom code or "
          f"another library {others}, unknown {sum(unresolved.values())}")
    for k, v in sorted(sources.items()):
        print(f"  {k}: {v}")
    if listing:
        print("resolved:")
        for (ref, model_type, source), n in sorted(resolved.items()):
            print(f"  {n} x {ref} -> {model_type} ({source})")
        print("custom code / another library:")
        for (ref, source), n in sorted(named.items()):
            print(f"  {n} x {ref} ({source})")
        print("unknown:")
        for ref, n in sorted(unresolved.items()):
            print(f"  {n} x {ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
