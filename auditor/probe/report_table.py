"""The probe's per-site table for the terminal (rich, imported only here).

Imports inside functions (`rich.console`, `rich.table`) are deferred for start-up time: a run
that never takes that path never pays for them.
"""

from __future__ import annotations


def _fmt(v, spec=".4f", none="-"):
    return none if v is None else format(v, spec)


def write_table(result, stream, color=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream, force_terminal=color, no_color=color is False,
                      width=None if stream.isatty() else 200)
    meta = result.meta
    console.print(f"[bold]dropout-audit probe[/bold]: {meta.get('model')} on {meta.get('device')} "
                  f"({meta.get('dtype')}, attention {meta.get('attn_implementation') or 'n/a'}), "
                  f"{meta.get('steps')} AdamW steps, seed {meta.get('seed')}, {meta.get('seconds')} s")
    table = Table(show_lines=False, header_style="bold")
    for col in ("site (module path)", "kind", "key", "p", "calls", "measured rate", "CI", "scale", "train", "eval"):
        table.add_column(col, overflow="fold")
    for r in result.rows:
        ci = f"[{r.ci[0]:.4f}, {r.ci[1]:.4f}]" if r.ci else "-"
        scale = f"{r.scale:.4f} (want {r.expected_scale:.4f})" if r.scale is not None and r.expected_scale else "-"
        train = r.train_verdict if r.train_verdict in ("ok", "-") else f"[red]{r.train_verdict}[/red]"
        ev = r.eval_verdict if r.eval_verdict not in ("ACTIVE", "RESCALED") else f"[red]{r.eval_verdict}[/red]"
        calls = f"{r.calls_train}/{r.calls_eval}"
        table.add_row(r.path, r.kind, r.key or "-", f"{r.p:g}", calls, _fmt(r.rate), ci, scale, train, ev)
    if not result.rows:
        table.add_row("(no dropout site ran)", "", "", "", "", "", "", "", "", "")
    console.print(table)
    console.print("Calls: train/eval forward calls of each site (train: the fine-tune's forwards; "
                  "hand-written: the survey's).", markup=False)
    for part in result.parts:
        line = part["line"]
        console.print(f"Part {line}" if part["ran"] or not part["built"] else f"[red]Part {line}[/red]",
                      highlight=False)
    s = result.survey
    if s.get("ran"):
        judged = s.get("judged", [])
        console.print(f"Module survey: {s['modules']} modules, {s['module_calls']} calls compared train vs eval on "
                      f"the same input ({s['forwards']} forwards), {s['differing']} differing; "
                      f"{len(judged)} judged as dropout written by hand or storing a rate.", markup=False)
    elif s:
        console.print(f"Module survey: {s.get('note')}.", markup=False)
    if result.rows and any(r.alpha for r in result.rows):
        alpha = next(r.alpha for r in result.rows if r.alpha)
        console.print(f"Rates: {meta.get('rate_test')}; per-site alpha {alpha:.2g} "
                      f"(family {meta.get('family_alpha')}); CI at {(1 - alpha) * 100:.4g}%.")
    ev = result.eval
    if ev:
        console.print(f"Eval: two forwards equal: {ev['two_forwards_equal']}; equals every-site-identity: "
                      f"{ev['equals_identity']} ({ev['comparison']}).")
    if result.magnitude is not None:
        m = result.magnitude
        equal = m.identity_equal if m.identity_deterministic else "undecided (train mode is random)"
        console.print(f"Magnitude: train mode with dropout at identity equals eval: {equal}; "
                      f"{m.skipped or m.describe()}.")
    if result.losses:
        console.print(f"Loss: {result.losses[0]:.4g} -> {result.losses[-1]:.4g} over {len(result.losses)} steps.")
    if result.keys:
        keys = ", ".join(f"{k['key']}={k['value']:g} {k['verdict']}" for k in result.keys)
        console.print(f"Keys (switched off one at a time): {keys}.")
    o = result.overhead
    if o.get("ratio") is not None:
        console.print(f"Step time with dropout / with dropout 0: {o['ratio']:.2f}x "
                      f"(95% CI [{o['ci95'][0]:.2f}, {o['ci95'][1]:.2f}], {o['rounds']} rounds of {o['block']} steps, "
                      f"{o['timer']}).")
    console.print()
