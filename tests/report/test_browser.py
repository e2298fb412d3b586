"""The report in a real browser: headless Chromium opens it offline, every chart
renders, nothing is logged as an error, no request leaves the file, and the
hostile trace runs no script. Skipped when Chromium is not installed."""
from __future__ import annotations

import pytest

from .browser import Browser, find_chromium

CHROMIUM = find_chromium()
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
              pytest.mark.timeout(300)]

PLOTS = "document.querySelectorAll('div.plot').length"
DRAWN = ("Array.from(document.querySelectorAll('div.plot'))"
         ".filter(d => d.querySelector('svg.main-svg') && d.querySelectorAll('g.trace, g.scatterlayer g').length > 0)"
         ".length")


def open_report(tmp_path, report):
    browser = Browser(CHROMIUM, tmp_path / "profile", width=1400, height=1000)
    browser.open(report.resolve().as_uri())
    browser.wait_for("document.body.getAttribute('data-rendered') !== null", timeout=120)
    return browser


def test_report_renders_offline_without_errors(shop, tmp_path):
    (tmp_path / "profile").mkdir()
    with open_report(tmp_path, shop.report) as b:
        plots = b.evaluate(PLOTS)
        assert plots >= 5
        assert b.evaluate("document.body.getAttribute('data-rendered')") == str(plots)
        assert b.evaluate(DRAWN) == plots
        assert b.console_errors() == []
        assert [u for u in b.requests() if not u.startswith("file://")] == []
        # the statistics table sorts on click
        order = ("Array.from(document.querySelectorAll('table.stats-table tbody tr'))"
                 ".map(r => r.getAttribute('data-lock'))")
        b.evaluate("document.querySelectorAll('table.stats-table th')[3].click()")
        by_acq = b.evaluate(order)
        expected = [lk["id"] for lk in sorted(shop.doc["locks"], key=lambda x: -x["acquisitions"])]
        assert by_acq == expected  # both sorts are stable: ties keep the table's order
        shot = b.screenshot(tmp_path / "report.png")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


def test_hostile_trace_runs_no_script(xss, tmp_path):
    (tmp_path / "profile").mkdir()
    with open_report(tmp_path, xss.report) as b:
        assert b.evaluate("typeof window.__xss") == "undefined"
        assert b.dialogs() == []
        assert b.console_errors() == []
        assert b.evaluate(DRAWN) == b.evaluate(PLOTS)
        text = b.evaluate("document.body.innerText")
        assert "<script>window.__xss=1;alert(1)</script>" in text
        assert '<img src=x onerror="window.__xss=2">' in text
        # chart labels show the names as text too
        svg_text = b.evaluate("Array.from(document.querySelectorAll('svg text')).map(t => t.textContent).join('\\n')")
        assert "<script>window.__xss=1;alert(1)</script>" in svg_text
        b.screenshot(tmp_path / "xss.png")
        assert b.evaluate("typeof window.__xss") == "undefined"
