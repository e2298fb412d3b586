"""Issue 16, on every committed sample trace and on every scenario recorded afresh
(whose locks and resources are named from their creation lines): the HTML report has
no heading over nothing, no two rows of one table (and no two series or nodes of one
chart) with one label, no sentence that another contradicts, and every hang with
how long it lasted."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.analysis import analyze
from analyzer.report import html
from analyzer.report.html.findings import never_ended
from analyzer.report.html.format import duration
from tests.scenarios import catalog
from tests.scenarios.recording import record

from .pagetree import HEADINGS, Node, tree

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted(p.stem for p in (ROOT / "sample_traces").glob("*.jsonl"))
SCENARIOS = catalog.scenarios()
# tables whose rows are one thing each, named in the first column
_KEYED_TABLES = ("lock", "id")


def _rendered(paths: list[str]) -> tuple[dict, str]:
    pages: dict = {}
    doc = analyze(paths, on_result=lambda d, con: pages.update(html=html.render(d, con=con, plotlyjs="cdn")))
    return doc, pages["html"]


def _rank(node: Node) -> int:
    return HEADINGS.index(node.tag) + 1


def _elements(node: Node) -> list:
    """Children that show something: elements, and text that is not only whitespace."""
    return [c for c in node.children if isinstance(c, Node) or c.strip()]


def empty_headings(root: Node) -> list[str]:
    """Headings with no text, or with nothing under them before the next heading of
    their rank or higher (or the end of their block)."""
    out = []
    for h in root.find(*HEADINGS):
        if not h.text:
            out.append(f"<{h.tag}> without text")
            continue
        siblings = _elements(h.parent)
        after = siblings[siblings.index(h) + 1:]
        # what follows up to the next heading of this rank or higher
        under = []
        for s in after:
            if isinstance(s, Node) and s.tag in HEADINGS and _rank(s) <= _rank(h):
                break
            under.append(s)
        if not any(not isinstance(s, Node) or _shows_something(s) for s in under):
            out.append(f"<{h.tag}>{h.text}</{h.tag}> over nothing")
    return out


def _shows_something(node: Node) -> bool:
    if node.tag in ("script", "style"):
        return False
    if node.tag == "div" and "plot" in node.classes():
        return bool(node.attrs.get("data-fig"))  # drawn from its figure
    if node.tag == "table":
        return bool([tr for tr in node.find("tr") if tr.find("td")])
    return bool(node.text) or any(isinstance(c, Node) and _shows_something(c) for c in node.children) \
        or node.tag in ("img", "svg", "canvas")


def _cells(tr: Node) -> list[Node]:
    return [c for c in tr.children if isinstance(c, Node) and c.tag in ("td", "th")]


def repeated_row_labels(root: Node) -> list[str]:
    """Tables of locks or findings with two rows of one label, and tables of facts
    (a heading cell per row) with one fact twice."""
    out = []
    for table in root.find("table"):
        rows = table.find("tr")
        head = [c.text for c in _cells(rows[0])] if rows and all(c.tag == "th" for c in _cells(rows[0])) else []
        if head and head[0] in _KEYED_TABLES:
            labels = [_cells(tr)[0].text for tr in rows[1:] if _cells(tr) and _cells(tr)[0].tag == "td"]
        elif "facts" in table.classes():
            labels = [_cells(tr)[0].text for tr in rows if _cells(tr) and _cells(tr)[0].tag == "th"]
        else:
            continue
        seen = {x for x in labels if labels.count(x) > 1}
        if seen:
            out.append(f"table {head[:3] or sorted(table.classes())}: rows {sorted(seen)} repeated")
    return out


def repeated_chart_labels(page: str) -> list[str]:
    """Charts with two series (legend entries) or two lock-graph nodes of one label."""
    root = tree(page)
    figs = {s.attrs["id"]: json.loads("".join(c for c in s.children if isinstance(c, str)))
            for s in root.find("script") if s.attrs.get("type") == "application/json" and s.attrs.get("id")}
    out = []
    for div in root.find("div"):
        if "plot" not in div.classes() or div.attrs.get("data-fig") not in figs:
            continue
        chart, fig = div.attrs.get("data-chart"), figs[div.attrs["data-fig"]]
        names = [t["name"] for t in fig["data"] if t.get("name") and t.get("showlegend", True) is not False]
        nodes = [x for t in fig["data"] if t.get("name") == "lock" for x in (t.get("text") or [])]
        for what, labels in (("series", names), ("nodes", nodes)):
            twice = sorted({x for x in labels if labels.count(x) > 1})
            if twice:
                out.append(f"chart {chart}: {what} {twice} repeated")
    return out


def contradictions(doc: dict, page: str) -> list[str]:
    """Sentences that another part of the page (or the numbers) contradicts."""
    out = []
    root = tree(page)
    for art in root.find("article"):
        text = art.text
        if ("never ended" in text or "still blocked when the trace ended" in text) and "Ended yes" in text:
            out.append(f"{art.attrs.get('id')}: never ended, and ended")
    sections = {n.attrs["id"]: n.text for n in root.walk() if n.attrs.get("id")}
    for f in doc["findings"]:  # a hang says how long it lasted
        d = f.get("details") or {}
        lasted = d.get("blocked_ns") if d.get("blocked_ns") is not None else d.get("duration_ns")
        if never_ended(d, f["kind"]) and lasted is not None and f["id"] in sections:
            if f"Blocked for {duration(lasted)}, until the trace ended" not in sections[f["id"]]:
                out.append(f"{f['id']}: a hang without its duration")
    text = root.text
    if "No lock had to be waited for" in text and any((lk.get("contentions") or 0) > 0 for lk in doc["locks"]):
        out.append("'No lock had to be waited for', but a lock was contended")
    return out


def problems(doc: dict, page: str) -> list[str]:
    root = tree(page)
    return empty_headings(root) + repeated_row_labels(root) + repeated_chart_labels(page) + contradictions(doc, page)


@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_report_reads_well(sample):
    doc, page = _rendered([str(ROOT / "sample_traces" / f"{sample}.jsonl")])
    assert problems(doc, page) == [], sample


@pytest.fixture(scope="module")
def scenario_traces(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenario-html")
    runs: dict = {}

    def get(scenario: catalog.Scenario) -> list[str]:
        if scenario.id not in runs:
            run = record(scenario, root / scenario.id)
            assert run.returncode == scenario.exit_code, run.stderr
            runs[scenario.id] = [str(p) for p in run.traces]
        return runs[scenario.id]

    return get


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_scenario_report_reads_well(scenario, scenario_traces):
    doc, page = _rendered(scenario_traces(scenario))
    assert problems(doc, page) == [], scenario.id


def _page(body: str) -> Node:
    return tree(f"<html><body>{body}</body></html>")


def test_the_checks_catch_what_they_look_for():
    """Each check fails on a page with the fault, and passes on one without."""
    assert empty_headings(_page("<section><h2>Locks</h2><h4>Hold times</h4></section>")) == [
        "<h4>Hold times</h4> over nothing"]
    assert empty_headings(_page("<div><h4>Waits</h4><h4>Holds</h4><p>x</p></div>")) == [
        "<h4>Waits</h4> over nothing"]
    assert empty_headings(_page("<h3></h3><p>x</p>")) == ["<h3> without text"]
    assert empty_headings(_page("<h4>Holds</h4><table><tr><th>lock</th></tr></table>")) == [
        "<h4>Holds</h4> over nothing"]
    assert empty_headings(_page("<h2>Locks</h2><h4>Holds</h4><p>x</p>")) == []
    rows = "<table><tr><th>lock</th><th>n</th></tr><tr><td>a</td><td>1</td></tr><tr><td>{}</td><td>2</td></tr></table>"
    assert repeated_row_labels(_page(rows.format("a"))) == ["table ['lock', 'n']: rows ['a'] repeated"]
    assert repeated_row_labels(_page(rows.format("b"))) == []
    fig = {"data": [{"type": "bar", "name": "Lock@a.py:4"}, {"type": "bar", "name": "Lock@a.py:4"}]}
    page = (f'<div class="plot" data-chart="timeline" data-fig="f1"></div>'
            f'<script type="application/json" id="f1">{json.dumps(fig)}</script>')
    assert repeated_chart_labels(page) == ["chart timeline: series ['Lock@a.py:4'] repeated"]
    doc = {"locks": [{"contentions": 1}], "findings": []}
    assert contradictions(doc, "<p>No lock had to be waited for.</p>") == [
        "'No lock had to be waited for', but a lock was contended"]
    assert contradictions(doc, '<article id="F1"><p>It never ended.</p><table><tr><th>Ended</th>'
                               "<td>yes</td></tr></table></article>") == ["F1: never ended, and ended"]
    hang = {"locks": [], "findings": [{"id": "F2", "kind": "stalled", "details": {"duration_ns": 3_000_000_000}}]}
    assert contradictions(hang, '<article id="F2"><p>Still waiting.</p></article>') == [
        "F2: a hang without its duration"]
    assert contradictions(hang, '<article id="F2"><table class="facts"><tr><th>Blocked for</th>'
                                "<td>3.00 s, until the trace ended</td></tr></table></article>") == []


def test_a_deadlock_of_two_accounts_reads_well(tmp_path):
    """Two accounts' locks (one creation line) and many library locks: two rows, and a
    page without the faults above, folded statistics or all of them."""
    from tests.analyzer.test_lock_names import run_program

    out, _ = run_program(tmp_path)
    pages: dict = {}
    doc = analyze([str(out)], on_result=lambda d, con: pages.update(
        folded=html.render(d, con=con, plotlyjs="cdn"), all=html.render(d, con=con, plotlyjs="cdn", all_locks=True)))
    for page in pages.values():
        assert problems(doc, page) == []
        [stats] = [t for t in tree(page).find("table") if "stats-table" in t.classes()]
        firsts = [_cells(tr)[0].text for tr in stats.find("tr")[1:]]
        assert firsts.count("Account.lock#1") == 1 and firsts.count("Account.lock#2") == 1


def test_long_labels_that_differ_at_the_end_stay_two_rows_of_the_hold_time_chart():
    """Two library locks whose labels differ only in the line that made them: the
    chart shortens them, and must not put both on one row."""
    from analyzer.report.html import charts
    from analyzer.report.html.format import LockNames

    locks = [{"id": f"r/{i}", "label": f"logging.Handler.lock (made by tests/scenarios/busy_service_ok.py:{line})",
              "hold_min_ns": 10, "hold_p50_ns": 20, "hold_p99_ns": 30, "hold_max_ns": 40}
             for i, line in ((1, 12), (2, 50))]
    fig = charts.percentiles(locks, LockNames({"locks": locks}), {}).to_plotly_json()
    rows = {y for t in fig["data"] for y in t["y"]}
    assert len(rows) == 2, rows
    assert all(len(r) <= 40 and r.endswith(("py:12)", "py:50)")) for r in rows), rows
