"""A self-contained HTML report: no scripts, no network assets, the chart is inline SVG."""

from __future__ import annotations

import html
import json


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


def render(result, title: str) -> str:
    e = html.escape
    rows_html = []
    for r in result.rows:
        ci = f"[{r.ci[0]:.4f}, {r.ci[1]:.4f}]" if r.ci else "-"
        rows_html.append(
            "<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in (
                r.path, r.kind, r.key or "-", f"{r.p:g}", "-" if r.rate is None else f"{r.rate:.4f}", ci,
                "-" if r.scale is None else f"{r.scale:.4f}", r.train_verdict, r.eval_verdict)) + "</tr>")
    findings_html = "".join(
        f"<li><b>{e(f.code)} {e(f.name)}</b> ({e(f.severity)}) {e(f.path)}:{f.span.line}: {e(f.message)}</li>"
        for f in result.findings) or "<li>No findings.</li>"
    data = json.dumps(result.to_dict(), indent=1, default=str)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:12px}}th{{background:#eee}}pre{{font-size:11px;overflow:auto;max-height:30em}}</style>
</head><body>
<h1>{e(title)}</h1>
<p>{e(str(result.meta.get('model')))} on {e(str(result.meta.get('device')))}, {e(str(result.meta.get('dtype')))};
{e(str(result.meta.get('steps')))} steps, seed {e(str(result.meta.get('seed')))}.</p>
<h2>Findings</h2><ul>{findings_html}</ul>
<h2>Configured vs measured drop rate per site</h2>
{_bar_chart(result.rows)}
<p>{e(str(result.meta.get('rate_test')))}</p>
<h2>Sites</h2>
<table><tr><th>site</th><th>kind</th><th>key</th><th>p</th><th>measured rate</th><th>CI</th><th>scale</th><th>train</th><th>eval</th></tr>
{''.join(rows_html)}</table>
<h2>Measurements (JSON)</h2><pre>{e(data)}</pre>
</body></html>
"""
