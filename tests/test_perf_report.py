"""The full report without rich (not a terminal) is byte-identical to rich's rendering."""

from __future__ import annotations

import io

from auditor.core.model import Edit, Finding, Fix, Span
from auditor.report import ReportContext, full


def _findings(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text('a: 1\nlora_dropout: "x\x07y"  # [b]not markup[/b] \\[x]\n' + "k: " + "v" * 300 + "\n\tt: 1\n")
    s = str(p)
    return [
        Finding("DRP100", "n", "invalid", "error", s, Span(2, 15, 2, 20, 0, 0), "msg [red]x[/red] \x08"),
        Finding("DRP201", "n", "extreme", "warning", s, Span(2, 15, 3, 2, 0, 0), "m",
                Fix("set [0.1]", (Edit(0, 1, "x"),))),
        Finding("DRP300", "n", "missing", "info", s, Span(3, 250, 3, 260, 0, 0), "long", Fix("u", (), "unsafe")),
        Finding("DRP300", "n", "missing", "info", s, Span(4, 1, 4, 3, 0, 0), "tab"),
        Finding("DRP300", "n", "missing", "info", str(tmp_path / "absent.yaml"), Span(1, 1, 1, 1, 0, 0), "gone"),
    ]


def test_plain_output_equals_rich_output(tmp_path, monkeypatch):
    findings = _findings(tmp_path)
    for stats in (False, True):
        ctx = ReportContext(files_checked=3, statistics=stats)
        plain = io.StringIO()
        full.write(findings, plain, ctx)
        monkeypatch.setattr(full, "_plain", lambda stream, ctx: False)
        rich = io.StringIO()
        full.write(findings, rich, ctx)
        monkeypatch.undo()
        assert plain.getvalue() == rich.getvalue()


def test_colour_requests_still_use_rich(monkeypatch):
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    assert full._plain(io.StringIO(), ReportContext(color=None))
    assert not full._plain(io.StringIO(), ReportContext(color=True))
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not full._plain(io.StringIO(), ReportContext(color=None))
