"""No internal id in text meant for people: run ids and `<run>/<n>` object ids
stay in the JSON's id fields, never in the terminal, the HTML's visible text
(charts included), SARIF messages, or the titles, messages and warnings of the
findings document. Processes are named by program and pid."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from analyzer import analyze
from analyzer.report import html, sarif, terminal

from ..analyzer.tracebuilder import Trace
from .pageparse import parse

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "sample_traces").glob("*.jsonl"))
CHART_TEXT_KEYS = {"text", "hovertext", "name", "ticktext", "title", "hovertemplate"}


def _chart_strings(value, key: str = "") -> list[str]:
    """The strings of a plotly figure a reader sees (labels, hover texts, titles)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _chart_strings(v, k)]
    if isinstance(value, list):
        return [s for v in value for s in _chart_strings(v, key)]
    return [value] if isinstance(value, str) and key in CHART_TEXT_KEYS else []


def _texts(doc: dict, page: str) -> dict[str, str]:
    """Every text of the reports of `doc` meant for people, by where it is shown."""
    out = {}
    for width in (80, 200):
        buf = io.StringIO()
        terminal.render(doc, Console(file=buf, width=width))
        out[f"terminal {width}"] = buf.getvalue()
    parsed = parse(page)
    out["html"] = parsed.text
    out["html charts"] = "\n".join(s for el in parsed.scripts if el.attrs.get("type") == "application/json"
                                   for s in _chart_strings(json.loads(el.text)))
    log = sarif.to_sarif(doc)["runs"][0]
    out["sarif"] = "\n".join([r["message"]["text"] for r in log["results"]]
                             + [loc["message"]["text"] for r in log["results"]
                                for loc in r.get("relatedLocations", []) if "message" in loc])
    out["json text"] = "\n".join([f["title"] + "\n" + f["message"] for f in doc["findings"]]
                                 + [str(f["details"].get(k)) for f in doc["findings"]
                                    for k in ("what", "explanation", "order") if k in f["details"]]
                                 + doc["trace"]["warnings"])
    return out


def _ids_in(doc: dict, page: str) -> list[tuple[str, str]]:
    runs = [p["run"] for p in doc["trace"]["processes"]]
    assert runs
    pattern = re.compile("|".join(re.escape(r.split("~")[0]) for r in runs))
    return [(where, text[max(0, m.start() - 60): m.end() + 20])
            for where, text in _texts(doc, page).items() for m in pattern.finditer(text)]


def _analyzed(paths: list[str]) -> tuple[dict, str]:
    pages: dict = {}
    doc = analyze(paths, on_result=lambda d, con: pages.update(page=html.render(d, con=con)))
    return doc, pages["page"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_no_run_id_in_the_reports_of_a_sample(sample):
    assert _ids_in(*_analyzed([str(sample)])) == []


def test_no_run_id_with_unnamed_locks_two_processes_and_a_hang(tmp_path):
    """Unnamed locks in a cycle's steps, a stalled unnamed event, a process with no
    end record, a copied file and two programs that wrote one run id."""
    procs = []
    for pid, run in ((4101, "5fb365fd43d6884a"), (4102, "9c0e3a4b5d6f7081"), (4103, "9c0e3a4b5d6f7081")):
        t = Trace(run=run, cwd="/srv/app")
        t.records[0]["pid"] = pid
        t.records[0]["argv"] = ["/srv/app/worker.py", "--port", "80"]
        a, b = t.lock(line=3), t.lock(line=4)
        one, two = t.thread("one", t.main), t.thread("two", t.main)
        t.nested(one, [a, b], [10, 11])
        t.nested(two, [b, a], [20, 21])
        ev = t._id()
        t.records.append({"k": "resource", "id": ev, "type": "threading.Event", "name": None,
                          "site": t.site(5), "ts": t.tick(), "th": t.main})
        t.ev(t.main, ev, "wait-begin", 30)
        procs.append(t.write(tmp_path / f"{pid}.jsonl", end=False))
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "4101.jsonl").write_bytes(procs[0].read_bytes())
    doc, page = _analyzed([str(tmp_path)])
    kinds = sorted(f["kind"] for f in doc["findings"])
    assert kinds == ["potential-deadlock"] * 3 + ["stalled"] * 3
    assert len(doc["trace"]["incomplete_runs"]) == 3
    assert len(doc["trace"]["warnings"]) >= 3  # the copy, the run id written twice, no end record
    assert _ids_in(doc, page) == []
    texts = _texts(doc, page)
    assert "worker.py (pid 4101)" in texts["terminal 200"] and "worker.py (pid 4101)" in texts["html"]
    assert "worker.py (pid 4103) on test" in texts["json text"]
    created = {lk["created_at"] for f in doc["findings"] for lk in f["locks"]}
    assert created == {"app.py:3", "app.py:4"}
    labels = {lk["label"] for f in doc["findings"] for lk in f["locks"]}
    for where in ("terminal 200", "html", "sarif"):  # the unnamed locks are named by their labels
        assert all(label in texts[where] for label in labels), where
