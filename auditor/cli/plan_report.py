"""`dropout-audit plan`: the effective dropout of each setup, and how it came to be.

Imports inside functions (`rich.console`, `rich.table`, `setup.graph`) are deferred for start-up
time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import json
import os

from auditor.setup import resolve


def _plans(engine, files):
    """The plans worth showing: a setup with at least one dropout site or finding (#15.6); a
    script without dropout settings prints nothing."""
    from auditor.setup import graph

    found = []
    for directory, group in resolve.by_directory(files):
        loaded = engine.load_directory(group)
        flagged = {f.path for f in engine.check_sources(directory, loaded)}
        for setup in graph.setups(engine, directory, loaded):
            found.append((setup, flagged))
    # A recipe a launch command runs is planned as launched (its overrides applied); the setup
    # its own directory makes of it alone would show the same file a second time, without them.
    launched = {os.path.realpath(s.driver.path) for s, _ in found if s.launch is not None and s.driver is not None}
    for setup, flagged in found:
        if setup.launch is None and setup.driver is not None and os.path.realpath(setup.driver.path) in launched:
            continue
        plan = graph.plan(setup)
        if plan.entries or any(src.path in flagged for src in setup.sources):
            _notebook_places(plan)
            yield plan


def _notebook_places(plan) -> None:
    """A notebook's settings sit in its joined code: name them by cell, as `check` does
    (`finetune.ipynb:cell 3:2:5`), not by the line of the stored JSON."""
    maps = {src.path: fact for src in plan.setup.sources for fact in src.facts if hasattr(fact, "place")}
    if not maps:
        return
    for e in plan.entries:
        s = e.configured
        if s is None or s.path not in maps:
            continue
        raw = f"{s.path}:{s.value_span.line}"
        where = f"{s.path}:{maps[s.path].place(s.value_span.start)}"
        e.source = where if e.source == raw else e.source
        e.chain = [step.replace(raw, where, 1) if step.startswith(raw) else step for step in e.chain]


EMPTY = ("no dropout setting is configured here: rates written in code (nn.Dropout(0.1), F.dropout(x, 0.1)) "
         "are judged by `dropout-audit check`; the plan lists configured settings and model defaults")


def _configured(e):
    """The configured value for JSON: the number when it is one (as `effective` is), else the
    text as written; `configured_raw` always has the text."""
    s = e.configured
    if s is None:
        return None
    if s.p is not None and s.reason is None:
        return int(s.p) if s.p.is_integer() and isinstance(s.value, int) and not isinstance(s.value, bool) else s.p
    return s.raw


def _model(setup):
    m = setup.model
    return None if m is None else {"ref": m.ref, "model_type": m.model_type, "source": m.source, "detail": m.detail}


def _not_rates(setup) -> list:
    """Keys named like rates that the readers took for settings (#25), so a user sees that the
    tool did look at them: (path, key, value as written, line, why)."""
    found = []
    for src in setup.sources:
        field = src.fields.get("not_rates")
        if field is not None:
            found.extend((src.path, key, raw, line, why) for key, raw, line, why in field.value)
    return found


def _fmt(p) -> str:
    return "-" if p is None else f"{p:g}"


def write(engine, files, fmt: str, stream) -> None:
    from auditor.setup import graph

    plans = list(_plans(engine, files))
    if fmt == "json":
        doc = [{
            "setup": p.setup.root, "driver": p.setup.driver.path if p.setup.driver else None,
            "artifacts": [a.path for a in p.setup.artifacts], **resolve.describe(p),
            "launched_by": f"{p.setup.launch.path}:{p.setup.launch.span.line}" if p.setup.launch else None,
            "links": graph.describe_links(p.setup),
            "model": _model(p.setup),
            "entries": [{"site": e.site, "role": e.role, "configured": _configured(e),
                         "configured_raw": e.configured.raw if e.configured else None,
                         "effective": e.effective, "source": e.source, "why": e.chain} for e in p.entries],
            "not_rates": [{"key": key, "value": raw, "source": f"{path}:{line}", "why": why}
                          for path, key, raw, line, why in _not_rates(p.setup)],
            **({"note": EMPTY} if not p.entries else {}),
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
        m = p.setup.model
        model = "" if m is None else f"; model {m.ref}: {m.model_type or 'unknown'} ({m.source})"
        model += f"; starts from {d['starts_from']}" if d.get("starts_from") else ""
        table = Table(title=f"{title}  (fine-tune: {d['finetune']}; trainer: {d['trainer']}{dialect}{model})",
                      title_justify="left")
        for col in ("site", "role", "configured", "effective", "source", "why"):
            table.add_column(col, overflow="fold")
        for e in p.entries:
            table.add_row(e.site, e.role, e.configured.raw if e.configured else "(not set)", _fmt(e.effective),
                          e.source, "; ".join(e.chain[1:]) or "as configured")
        if p.entries:
            console.print(table)
        else:
            console.print(table.title, markup=False)
            console.print(f"  {EMPTY}", markup=False)
        for path, key, raw, line, why in _not_rates(p.setup):
            console.print(f"  not a rate: {key} = {raw} ({path}:{line}): {why}", markup=False)
        if p.setup.launch is not None:
            console.print(f"  driver {title}, launched by {p.setup.launch.path}:{p.setup.launch.span.line} "
                          f"({p.setup.launch.via}); the command's overrides win over the recipe", markup=False)
        if m is not None and m.detail:  # which token or file decided, so a user can check and override it
            console.print(f"  model {m.ref}: {m.detail}", markup=False)
        for link in graph.describe_links(p.setup):
            target = link["target"] or f"unknown ({link['reason']})"
            state = "" if link["exists"] or not link["target"] else " (missing)"
            console.print(f"  link {link['kind']}: {link['from']} {link['written']!r} -> {target}{state}", markup=False)
