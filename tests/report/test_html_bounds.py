"""Big traces: timelines draw a bounded number of bars (everything near a
finding, then the longest) and say so on the chart."""
from __future__ import annotations

import json

import duckdb
import pytest

from analyzer.analysis import analyze
from analyzer.report import html
from analyzer.report.html import data as html_data
from analyzer.report.html import report as html_report
from tests.analyzer.tracebuilder import Trace

from .pageparse import parse

HOLDS_PER_THREAD = 400


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    """4 threads with many short holds of `hot`, a few long ones, and one lock-order
    inversion (a, b) in the middle of the run."""
    tmp = tmp_path_factory.mktemp("busy")
    t = Trace()
    hot, a, b = t.lock("hot"), t.lock("a"), t.lock("b")
    threads = [t.thread(f"w{i}", parent=t.main) for i in range(4)]
    for k in range(HOLDS_PER_THREAD):
        for i, th in enumerate(threads):
            t.acquire(th, hot, line=10, wait_ns=500 if k % 10 == 0 else None)
            t.release(th, hot, hold_ns=5_000_000 if (k, i) in ((50, 0), (300, 1)) else 1000)
        if k == 200:
            t.nested(threads[2], [a, b], [20, 21])
            t.nested(threads[3], [b, a], [30, 31])
    for th in threads:
        t.end(th)
        t.join(t.main, th)
    trace = t.write(tmp / "busy.jsonl")
    pages = {}
    db = tmp / "busy.duckdb"
    old = html_report.MAX_WHOLE_RUN_BARS
    html_report.MAX_WHOLE_RUN_BARS = 300
    try:
        doc = analyze([str(trace)], db=str(db), on_result=lambda d, con: pages.update(html=html.render(d, con=con)))
    finally:
        html_report.MAX_WHOLE_RUN_BARS = old
    return doc, db, pages["html"]


def test_select_spans_keeps_the_longest_and_everything_near(busy):
    doc, db, _ = busy
    con = duckdb.connect(str(db), read_only=True)
    try:
        holds, waits = con.execute("SELECT (SELECT count(*) FROM holds), (SELECT count(*) FROM waits)").fetchone()
        f = next(f for f in doc["findings"] if f["kind"] == "potential-deadlock")
        near = [(f["run"], f["first_ts"] - 1, f["last_ts"] + 1)]
        spans = html_data.select_spans(con, limit=50, near=near)
    finally:
        con.close()
    assert spans.total == holds + waits > 1600
    assert len(spans.rows) == 50
    names = {r["lock_name"] for r in spans.rows}
    assert {"a", "b"} <= names  # the holds of the cycle, near the finding
    long_holds = [r for r in spans.rows if r["what"] == "hold" and r["end_ts"] - r["ts"] >= 5_000_000]
    assert len(long_holds) == 2  # the two longest holds of the run


def test_whole_run_timeline_is_bounded_and_says_so(busy):
    _doc, _db, page_html = busy
    page = parse(page_html)
    figs = {s.attrs["id"]: json.loads(s.text) for s in page.scripts if s.attrs.get("type") == "application/json"}
    chart = next(d for d in page.find("div", "plot") if d.attrs["data-chart"] == "timeline-run")
    fig = figs[chart.attrs["data-fig"]]
    drawn = sum(len(t["x"]) for t in fig["data"] if t["type"] == "bar")
    assert drawn == 300
    notes = " ".join(a.get("text", "") for a in fig["layout"].get("annotations", []))
    assert "showing 300 of 1," in notes and "the longest, and everything near findings" in notes
    assert "the chart draws 300 of them" in page.text


def test_deadlock_timeline_shows_the_moment_it_formed(tmp_path):
    """Two threads stuck on each other for 10 s until the trace ends: the focused
    timeline shows the milliseconds in which the cycle closed, and says the rest
    runs off the chart."""
    t = Trace()
    a, b = t.lock("a"), t.lock("b")
    t1, t2 = t.thread("t1", parent=t.main), t.thread("t2", parent=t.main)
    t.acquire(t1, a, line=10)
    t.acquire(t2, b, line=20)
    t.ev(t1, b, "wait", line=11)
    t.ev(t2, a, "wait", line=21)
    t.tick(10_000_000_000)
    t.ev(t.main, t1, "wait-begin", line=30)  # the main thread's join, still waiting at the end
    trace = t.write(tmp_path / "stuck.jsonl", end=False)
    pages = {}
    doc = analyze([str(trace)], on_result=lambda d, con: pages.update(html=html.render(d, con=con)))
    f = next(f for f in doc["findings"] if f["kind"] == "deadlock")
    page = parse(pages["html"])
    figs = {s.attrs["id"]: json.loads(s.text) for s in page.scripts if s.attrs.get("type") == "application/json"}
    chart = next(d for d in page.find("div", "plot") if d.attrs["data-chart"] == f"timeline-{f['id']}")
    fig = figs[chart.attrs["data-fig"]]
    lo, hi = fig["layout"]["xaxis"]["range"]
    unit = fig["layout"]["xaxis"]["title"]["text"]
    scale = {"(µs)": 1e3, "(ms)": 1e6, "(s)": 1e9}[unit.rsplit(" ", 1)[-1]]
    assert (hi - lo) * scale < 5e6  # a few ms, not 10 s
    notes = " ".join(a.get("text", "") for a in fig["layout"].get("annotations", []))
    assert "still blocked when the trace ended" in notes and "beyond the right edge" in notes
    assert set(fig["layout"]["yaxis"]["ticktext"]) == {"t1", "t2"}
