"""The HTML report's content: sections, numbers that match the findings JSON,
charts computed from the database, and JSON-only rendering."""
from __future__ import annotations

import json
import re

import duckdb
import pytest

from analyzer.report import html
from analyzer.report.html.format import duration

from .pageparse import parse
from .sample_doc import sample_doc


def charts(page_html: str) -> dict[str, dict]:
    """chart name -> plotly figure, from the page's plot containers and JSON scripts."""
    page = parse(page_html)
    figs = {s.attrs["id"]: json.loads(s.text) for s in page.scripts if s.attrs.get("type") == "application/json"}
    return {d.attrs["data-chart"]: figs[d.attrs["data-fig"]] for d in page.find("div", "plot")}


def article(page_html: str, fid: str) -> str:
    m = re.search(rf'<article class="finding [a-z]+" id="{fid}">(.*?)</article>', page_html, re.S)
    assert m, f"no section for {fid}"
    return m.group(1)


def by_kind(doc: dict, kind: str) -> dict:
    found = [f for f in doc["findings"] if f["kind"] == kind]
    assert found, f"no {kind} finding in {[f['kind'] for f in doc['findings']]}"
    return found[0]


def test_sections_and_one_article_per_main_finding(shop):
    page = parse(shop.html)
    for section in ("overview", "findings", "timeline", "graph", "locks", "trace"):
        assert page.by_id(section) is not None, section
    mains = [f["id"] for f in shop.doc["findings"] if not f["folded_into"]]
    assert [a.attrs["id"] for a in page.find("article", "finding")] == mains
    folded = [f["id"] for f in shop.doc["findings"] if f["folded_into"]]
    assert folded  # the acquire that timed out is folded under the long hold it waited behind
    assert [d.attrs["id"] for d in page.find("div", "folded-finding")] == folded
    # every plot container has its figure, and every figure a container
    plots = page.find("div", "plot")
    data = [s for s in page.scripts if s.attrs.get("type") == "application/json"]
    assert sorted(p.attrs["data-fig"] for p in plots) == sorted(s.attrs["id"] for s in data)
    assert {"timeline-run", "lock-graph", "hold-percentiles", "hold-histogram", "wait-histogram"} <= set(charts(shop.html))


def test_overview_numbers_match_the_json(shop):
    t = shop.doc["trace"]
    text = parse(shop.html).text
    for label, value in (("Events", t["events"]), ("Threads", t["threads"]), ("Locks", t["locks"]),
                         ("Dropped events", t["dropped"]), ("Corrupt lines", t["corrupt_lines"])):
        assert re.search(rf'<div class="k">{label}</div><div class="v">{value:,}</div>', shop.html), label
    for sev in ("critical", "error", "warning", "info"):
        n = sum(1 for f in shop.doc["findings"] if f["severity"] == sev and not f["folded_into"])
        assert f'<span class="n">{n}</span>{sev}</div>' in shop.html
    assert "shop.py" in text and shop.doc["trace"]["processes"][0]["host"] in text
    assert "The trace is complete" in text


def test_potential_deadlock_section(shop):
    f = by_kind(shop.doc, "potential-deadlock")
    body = article(shop.html, f["id"])
    text = parse(body).text
    assert "Possible unsafe scenario" in text and "*** DEADLOCK ***" in text
    assert "lock(sessions);" in text and "lock(users);" in text
    assert "Thread 1" in text and "Thread 2" in text
    for step in f["steps"]:
        assert step["actor"]["name"] in text
        assert step["site"] in text
        for hold in step["holds"]:
            assert hold["acquired_at"] in text
    for site in f["sites"]:
        assert site["site"] in text
    assert "one consistent lock order" in text
    assert f"First seen{f['first_wall'].replace('T', ' ').replace('Z', ' UTC')}" in text
    # the recorded stack of the requesting site: its caller, then the folded library frames
    assert [fr[2] for fr in f["steps"][0]["stack"][:2]] == ["touch_user", "login"]
    assert re.search(r'called from</div><div class="stack"><div class="frame"><code>login</code>', body)
    assert re.search(r'<summary>\d library frames \(threading.py', body)


def test_long_hold_and_timeout_sections(shop):
    lh = by_kind(shop.doc, "long-hold")
    text = parse(article(shop.html, lh["id"])).text
    assert duration(lh["details"]["max_hold_ns"]) in text
    assert lh["details"]["worst"][0]["site"] in text
    assert "Smallest lock scope" in text
    at = by_kind(shop.doc, "acquire-timeout")  # folded under the long-hold
    assert at["folded_into"] == lh["id"] and at["id"] in lh["related"]
    text = parse(article(shop.html, lh["id"])).text
    assert f"an acquire of 'cache' gave up after {duration(at['details']['max_wait_ns'])} ({at['id']} acquire-timeout)" in text
    assert f"{at['details']['timeouts']} timed out" in text
    assert duration(at["details"]["max_wait_ns"]) in text


def test_lock_statistics_rows_match_the_json(shop):
    keys = ["acquisitions", "contentions", None, None, "wait_total_ns", "wait_max_ns", "wait_avg_ns",
            "hold_min_ns", "hold_avg_ns", "hold_p50_ns", "hold_p95_ns", "hold_p99_ns", "hold_max_ns",
            "hold_total_ns", "open_holds"]
    for lock in shop.doc["locks"]:
        row = re.search(rf'<tr data-lock="{re.escape(lock["id"])}">(.*?)</tr>', shop.html, re.S).group(1)
        values = re.findall(r'<td class="num" data-v="([^"]*)">', row)
        assert len(values) == len(keys)
        for key, value in zip(keys, values, strict=True):
            if key is not None:
                assert value == ("" if lock[key] is None else str(lock[key])), key


def test_timelines_are_drawn_from_the_database(shop):
    figs = charts(shop.html)
    con = duckdb.connect(str(shop.db), read_only=True)
    holds, waits = con.execute("SELECT (SELECT count(*) FROM holds), (SELECT count(*) FROM waits)").fetchone()
    con.close()
    run = figs["timeline-run"]
    bars = [t for t in run["data"] if t["type"] == "bar"]
    assert sum(len(t["x"]) for t in bars) == holds + waits  # small trace: every hold and wait is drawn
    ticks = set(run["layout"]["yaxis"]["ticktext"])
    assert {"login", "rename", "impatient", "worker-0", "worker-3"} <= ticks

    f = by_kind(shop.doc, "potential-deadlock")
    focused = figs[f"timeline-{f['id']}"]
    assert focused["layout"]["yaxis"]["ticktext"][:2] == ["login", "rename"]
    names = {t["name"] for t in focused["data"] if t["type"] == "bar"}
    assert {"sessions", "users"} <= names
    marks = next(t for t in focused["data"] if t["name"] == "finding")
    assert marks["text"] == ["1", "2"]
    assert any("requests users" in h for h in marks["hovertext"])


def test_lock_graph_highlights_the_cycle(shop):
    fig = charts(shop.html)["lock-graph"]
    nodes = next(t for t in fig["data"] if t.get("mode") == "markers+text")
    assert {"sessions", "users", "cache"} <= set(nodes["text"])
    cycle = next(t for t in fig["data"] if t.get("name") == "edge of a deadlock cycle")
    assert cycle["line"]["color"] == "#d93025"
    hover = " ".join(t for tr in fig["data"] for t in (tr.get("hovertext") or []) if isinstance(t, str))
    f = by_kind(shop.doc, "potential-deadlock")
    for step in f["steps"]:
        assert step["site"] in hover


def test_every_kind_renders_from_json_alone():
    doc = sample_doc()
    page_html = html.render(doc)
    page = parse(page_html)
    assert [a.attrs["id"] for a in page.find("article", "finding")] == [f["id"] for f in doc["findings"]]
    text = page.text
    expected = {
        "F1": ["What happened", "*** DEADLOCK ***", "never ended", duration(4_000_000)],
        "F2": ["Possible unsafe scenario", "Seen3 times", "one consistent lock order"],
        "F3": ["non-reentrant", "Do not re-enter a non-reentrant lock"],
        "F4": ["jobs queue", "Never hold a lock while waiting"],
        "F5": ["whole event loop froze", "3 tasks", "asyncio.to_thread"],
        "F6": ["151 ms", "twice", "Longest holds"],
        "F7": ["was still waiting when the trace ended", duration(9_000_000_000)],
        "F8": ["2 timed out and 1 were cancelled", "app.py:13"],
        "F9": ["gate lock", "both hold the gate", "No action needed"],
        "F10": ["100 acquisitions", "callers had to wait 40 times"],
        "F11": ["A kind this report does not know"],
    }
    for fid, phrases in expected.items():
        body = parse(article(page_html, fid)).text
        for phrase in phrases:
            assert phrase in body, (fid, phrase)
    # warnings are visible
    assert "120 events were dropped" in text
    assert "2 corrupt lines were skipped" in text and "/traces/a.jsonl:7" in text
    assert "has no end record" in text and "cycle search stopped" in text
    assert "2 known finding(s) suppressed" in text
    # without the database: no timelines, but the graph of the cycle edges
    assert "Timelines need the trace database" in text
    names = set(charts(page_html))
    assert "lock-graph" in names and "hold-percentiles" in names
    assert not any(n.startswith("timeline") for n in names)


def test_no_findings_says_so():
    doc = sample_doc()
    doc["findings"] = []
    text = parse(html.render(doc)).text
    assert "No findings" in text


def test_plotlyjs_inline_once_or_cdn(shop):
    inline = parse(shop.html)
    code = [s for s in inline.scripts if not s.attrs.get("type") == "application/json"]
    assert len(code) == 2 and not any(s.attrs.get("src") for s in code)
    assert shop.html.count("* plotly.js v") == 1  # plotly.js embedded once, not per chart
    doc = sample_doc()
    cdn = html.render(doc, plotlyjs="cdn")
    srcs = [s.attrs.get("src") for s in parse(cdn).scripts if s.attrs.get("src")]
    assert len(srcs) == 1 and srcs[0].startswith("https://cdn.plot.ly/")
    assert len(cdn) < 1_000_000
    with pytest.raises(ValueError):
        html.render(doc, plotlyjs="none")


@pytest.mark.parametrize("sample, kind, phrases", [
    ("event_under_lock_async-bug", "wait-cycle",
     ["wait(ready);", "only Task 2 can end this wait", "lock(state);", "*** DEADLOCK ***", "Never hold a lock while waiting"]),
    ("join_under_lock_threads-bug", "wait-cycle", ["join(reporter);", "held by Thread 1"]),
    ("thread_lock_in_async-bug", "held-across-await", ["the whole event loop froze", "collector", "200 ms (timeout)"]),
    ("deadlock_async-bug", "deadlock", ["What happened", "Task 1", "broken after that because a task was cancelled"]),
    ("cache_reentry-bug", "acquire-timeout", ["gave up", "recursive acquire"]),
])
def test_committed_sample_traces_render_each_kind(sample, kind, phrases):
    from pathlib import Path

    from analyzer.analysis import analyze

    trace = Path(__file__).resolve().parents[2] / "sample_traces" / f"{sample}.jsonl"
    pages = {}
    doc = analyze([str(trace)], on_result=lambda d, con: pages.update(html=html.render(d, con=con)))
    f = by_kind(doc, kind)
    body = article(pages["html"], f["id"])
    text = parse(body).text
    for phrase in phrases:
        assert phrase in text, phrase
    assert f"timeline-{f['id']}" in charts(pages["html"])
