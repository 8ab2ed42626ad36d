"""`dropout-audit plan`: the effective dropout of each setup, and how it came to be."""

from __future__ import annotations

import json

from auditor import resolve


def _plans(engine, files):
    """The plans worth showing: a setup with at least one dropout site or finding (#15.6); a
    script without dropout settings prints nothing."""
    for directory, group in resolve.by_directory(files):
        loaded = engine.load_directory(group)
        flagged = {f.path for f in engine.check_sources(directory, loaded)}
        for setup in resolve.group(directory, loaded):
            plan = resolve.resolve(setup)
            if plan.entries or any(src.path in flagged for src in setup.sources):
                yield plan


def _fmt(p) -> str:
    return "-" if p is None else f"{p:g}"


def write(engine, files, fmt: str, stream) -> None:
    plans = list(_plans(engine, files))
    if fmt == "json":
        doc = [{
            "setup": p.setup.root, "driver": p.setup.driver.path if p.setup.driver else None,
            "artifacts": [a.path for a in p.setup.artifacts], **resolve.describe(p),
            "entries": [{"site": e.site, "role": e.role, "configured": e.configured.raw if e.configured else None,
                         "effective": e.effective, "source": e.source, "why": e.chain} for e in p.entries],
        } for p in plans]
        json.dump(doc, stream, indent=2)
        stream.write("\n")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, highlight=False, soft_wrap=False, width=None if stream.isatty() else 160)
    if not plans:
        console.print("No training setups found.")
    for p in plans:
        title = p.setup.driver.path if p.setup.driver else p.setup.root
        d = resolve.describe(p)
        dialect = f"; read as {d['dialect']}" if d["dialect"] else ""
        dialect += f" ({d['dialect_why']})" if d["dialect_why"] else ""
        table = Table(title=f"{title}  (fine-tune: {d['finetune']}; trainer: {d['trainer']}{dialect})",
                      title_justify="left")
        for col in ("site", "role", "configured", "effective", "source", "why"):
            table.add_column(col, overflow="fold")
        for e in p.entries:
            table.add_row(e.site, e.role, e.configured.raw if e.configured else "(not set)", _fmt(e.effective),
                          e.source, "; ".join(e.chain[1:]) or "as configured")
        console.print(table)
