"""A self-contained HTML report: no scripts, no network assets, the chart is inline SVG.

Every summary the terminal prints (parts that ran, eval, magnitude, loss, keys, module survey,
overhead) is a table here too; the raw JSON follows for whoever wants every number. A refused
model gets a page too, holding the refusal.
"""

from __future__ import annotations

import html
import json
import math

STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin-bottom:1em}"
         "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px;text-align:left;vertical-align:top}"
         "th{background:#eee}pre{font-size:11px;overflow:auto;max-height:30em}.bad{color:#b00;font-weight:bold}")


def _bar_chart(rows) -> str:
    """Configured p vs measured rate (with its interval) per site, as horizontal bars."""
    rows = [r for r in rows if r.p > 0]
    if not rows:
        return "<p>No site ran with p &gt; 0 in train mode.</p>"
    top = max(max(r.p, r.rate or 0, (r.ci or (0, 0))[1]) for r in rows) * 1.15 or 1.0
    label_w, plot_w, row_h = 420, 420, 26
    height = row_h * len(rows) + 40

    def x(v):
        return label_w + plot_w * v / top

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 40}" height="{height}" '
              'role="img" aria-label="configured vs measured dropout rate per site" font-family="sans-serif" '
              'font-size="11">')]
    for i, r in enumerate(rows):
        y = 20 + i * row_h
        name = html.escape(f"{r.path} [{r.kind}]")
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{name[-70:]}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{x(r.p) - label_w:.1f}" height="9" fill="#9ab"/>')
        if r.rate is not None:
            color = "#2a7" if r.train_verdict == "ok" else "#c33"
            parts.append(f'<rect x="{label_w}" y="{y + 12}" width="{x(r.rate) - label_w:.1f}" height="9" fill="{color}"/>')
            if r.ci:
                parts.append(f'<line x1="{x(r.ci[0]):.1f}" x2="{x(r.ci[1]):.1f}" y1="{y + 16.5}" y2="{y + 16.5}" '
                             'stroke="#000" stroke-width="1.5"/>')
    parts.append(f'<line x1="{label_w}" x2="{label_w}" y1="14" y2="{height - 16}" stroke="#444"/>')
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        v = top * frac
        parts.append(f'<text x="{x(v):.1f}" y="{height - 4}" text-anchor="middle">{v:.3f}</text>')
    parts.append(f'<rect x="{label_w}" y="2" width="10" height="8" fill="#9ab"/><text x="{label_w + 14}" y="10">configured p</text>')
    parts.append(f'<rect x="{label_w + 110}" y="2" width="10" height="8" fill="#2a7"/><text x="{label_w + 124}" y="10">'
                 'measured rate (bar: CI)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cell(value) -> str:
    if isinstance(value, float):
        text = "-" if math.isnan(value) else f"{value:.6g}"
    elif value is None:
        text = "-"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(_short(v) for v in value) or "-"
    else:
        text = str(value)
    return html.escape(text)


def _short(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def table(header: list, rows: list, bad=None) -> str:
    """rows of cells; `bad(row)` marks a row whose verdict is a problem."""
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cls = ' class="bad"' if bad is not None and bad(row) else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _pairs(d: dict) -> str:
    return table(["measure", "value"], [[k, v] for k, v in d.items() if not isinstance(v, (dict, list))
                                        or k in ("ci95",)])


def _findings(findings) -> str:
    return "".join(
        f"<li><b>{html.escape(f.code)} {html.escape(f.name)}</b> ({html.escape(f.severity)}) "
        f"{html.escape(f.path)}:{f.span.line}: {html.escape(f.message)}</li>" for f in findings) or "<li>No findings.</li>"


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head><body>
<h1>{html.escape(title)}</h1>
{body}
</body></html>
"""


def render_refusal(findings: list, title: str, data: dict) -> str:
    """The page for a model the probe could not build or run: the refusal, nothing measured."""
    body = (f"<p>Nothing was measured: the probe could not build or run this model.</p>"
            f"<h2>Findings</h2><ul>{_findings(findings)}</ul>"
            f"<h2>Measurements (JSON)</h2><pre>{html.escape(json.dumps(data, indent=1, default=str))}</pre>")
    return _page(title, body)


def render(result, title: str) -> str:
    e = html.escape
    meta = result.meta
    sites = table(["site", "kind", "key", "p", "calls (train)", "calls (eval)", "unit", "measured rate", "CI",
                   "scale", "mean ratio", "slope", "train", "eval"],
                  [[r.path, r.kind, r.key or "-", r.p, r.calls_train, r.calls_eval, r.unit or "element",
                    r.rate, f"[{r.ci[0]:.4f}, {r.ci[1]:.4f}]" if r.ci else "-", r.scale, r.mean_ratio, r.slope,
                    r.train_verdict, r.eval_verdict] for r in result.rows],
                  bad=lambda row: row[-2] not in ("ok", "-", "not measured") or row[-1] not in ("off", "not run"))
    parts = table(["part", "sub-config", "module", "built", "ran", "module calls", "dropout sites", "site calls"],
                  [[p["part"], p["config"] or "-", p["module"] or "-", p["built"], p["ran"], p["calls"], p["sites"],
                    p["fired"]] for p in result.parts], bad=lambda row: row[3] and not row[4])
    keys = table(["key", "value", "verdict", "sites", "note"],
                 [[k["key"], k["value"], k["verdict"], k["sites"], k["note"]] for k in result.keys],
                 bad=lambda row: row[2] == "no-op")
    mag = result.magnitude
    magnitude = _pairs({"train mode with dropout at identity equals eval":
                        mag.identity_equal if mag.identity_deterministic else "undecided (train mode is random)",
                        "fitted scale train/eval (identity)": mag.identity_scale,
                        "mean-of-train slope": mag.slope, "s.e.": mag.se, "tolerance": mag.tol, "alpha": mag.alpha,
                        "relative L2 gap": mag.rel_diff, "test": mag.skipped or mag.describe()}) if mag else "<p>-</p>"
    losses = table(["step", "loss"], [[i + 1, v] for i, v in enumerate(result.losses)])
    survey = _pairs(result.survey) if result.survey else "<p>Not run.</p>"
    overhead = _pairs(result.overhead) if result.overhead else "<p>Not measured.</p>"
    data = json.dumps(result.to_dict(), indent=1, default=str)
    return _page(title, f"""
<p>{e(str(meta.get('model')))} on {e(str(meta.get('device')))}, {e(str(meta.get('dtype')))};
{e(str(meta.get('steps')))} steps, seed {e(str(meta.get('seed')))}.</p>
<h2>Findings</h2><ul>{_findings(result.findings)}</ul>
<h2>Parts of the model that ran</h2>
{parts}
<h2>Configured vs measured drop rate per site</h2>
{_bar_chart(result.rows)}
<p>{e(str(meta.get('rate_test')))}</p>
<h2>Sites</h2>
{sites}
<h2>Eval mode</h2>
{_pairs(result.eval) if result.eval else "<p>-</p>"}
<h2>Expected magnitude</h2>
{magnitude}
<h2>Module survey (hand-written dropout)</h2>
{survey}
<h2>Loss</h2>
{losses}
<h2>Keys (switched off one at a time)</h2>
{keys}
<h2>Step-time overhead</h2>
{overhead}
<h2>Measurements (JSON)</h2><pre>{e(data)}</pre>
""")
