"""What recording cost: the `cost` of `beat`/`end` records, read into the runs
table, the findings JSON, the terminal summary and the HTML overview."""
from __future__ import annotations

import threading

import orjson
import pytest
from typer.testing import CliRunner

from analyzer import analyze
from analyzer.cli import app
from analyzer.report import html
from analyzer.report.terminal import trace_header

from .tracebuilder import Trace

runner = CliRunner()


def _costly(run: str = "run1", end_cost: dict | None = None) -> Trace:
    t = Trace(run=run)
    lock = t.lock("a", line=3)
    t.acquire(t.main, lock, 10)
    t.release(t.main, lock, hold_ns=5000)
    since = t.ts - 1_000_000
    t.records.append({"k": "beat", "ts": t.tick(), "cost": {
        "since": since, "cpu_ns": 10_000_000, "writer_ns": 100_000, "events": 1, "bytes": 900}})
    t.acquire(t.main, lock, 11)
    t.release(t.main, lock)
    t.records.append({"k": "end", "ts": t.tick(), "reason": "exit", "cost": end_cost or {
        "since": since, "cpu_ns": 40_000_000, "writer_ns": 1_000_000, "events": 4, "bytes": 1_500}})
    return t


def test_the_latest_cost_of_each_run_is_in_the_summary(tmp_path):
    a = _costly("run1").write(tmp_path / "a.jsonl", end=False)
    b = _costly("run2", {"since": 5, "cpu_ns": 60_000_000, "writer_ns": 2_000_000, "events": 6,
                         "bytes": 2_500}).write(tmp_path / "b.jsonl", end=False)
    doc = analyze([str(a), str(b)])
    procs = {p["run"]: p for p in doc["trace"]["processes"]}
    one = procs["run1"]["cost"]
    assert (one["cpu_ns"], one["writer_ns"], one["events"], one["bytes"]) == (40_000_000, 1_000_000, 4, 1_500)
    assert one["writer_share"] == pytest.approx(0.025)
    assert one["until_ns"] - one["since_ns"] > 1_000_000 and one["cores"] > 0
    total = doc["trace"]["cost"]
    assert (total["cpu_ns"], total["writer_ns"], total["events"], total["bytes"], total["processes"]) == (
        100_000_000, 3_000_000, 10, 4_000, 2)
    assert total["writer_share"] == pytest.approx(0.03)
    line = trace_header(doc).plain.replace("\n", " ")
    assert "recording cost: the recorder's writer used 3 ms of CPU, 3 % of the processes' 100 ms; " \
           "10 events, 4 kB written" in line


def test_a_trace_without_cost_says_nothing_about_it(tmp_path):
    t = Trace()
    lock = t.lock("a", line=3)
    t.acquire(t.main, lock, 10)
    t.release(t.main, lock)
    doc = analyze([str(t.write(tmp_path / "t.jsonl"))])
    assert doc["trace"]["cost"] is None and doc["trace"]["processes"][0]["cost"] is None
    assert "recording cost" not in trace_header(doc).plain
    assert "Recording cost" not in html.render(doc)


@pytest.mark.parametrize("bad", [
    {"since": 1, "cpu_ns": -4},
    {"since": 1, "cpu_ns": "lots"},
    {"since": 1, "cpu_ns": 1.5},
    {"cpu_ns": 5},
    "cheap",
    [1, 2],
])
def test_a_cost_not_of_the_documented_shape_is_left_out(tmp_path, bad):
    t = _costly(end_cost={"since": 1})
    t.records[-1]["cost"] = bad
    del t.records[-2]  # (the beat: the end's cost is then the only one)
    doc = analyze([str(t.write(tmp_path / "t.jsonl", end=False))])
    assert doc["trace"]["processes"][0]["cost"] is None
    assert doc["trace"]["cost"] is None and doc["trace"]["corrupt_lines"] == 0


def test_a_field_of_the_wrong_type_is_left_out_alone(tmp_path):
    t = _costly(end_cost={"since": 1, "cpu_ns": 8_000_000, "writer_ns": "x", "events": -1, "bytes": 70})
    doc = analyze([str(t.write(tmp_path / "t.jsonl", end=False))])
    cost = doc["trace"]["processes"][0]["cost"]
    assert (cost["cpu_ns"], cost["writer_ns"], cost["events"], cost["bytes"]) == (8_000_000, None, None, 70)
    assert cost["writer_share"] is None
    assert "the process's CPU while recording: 8 ms; 70 B written" in trace_header(doc).plain


def test_a_recorded_run_reports_its_cost_everywhere(record, tmp_path):
    with record() as rec:
        lock = threading.Lock()
        for _ in range(500):
            with lock:
                pass
    doc = rec.analyze()
    cost = doc["trace"]["processes"][0]["cost"]
    assert cost["events"] == doc["trace"]["events"] >= 1000
    assert 0 < cost["writer_ns"] < cost["cpu_ns"]
    page = html.render(doc)
    assert "Recorder&#x27;s writer CPU" in page and "Recording cost: the recorder&#x27;s writer used" in page
    share = f"{100 * cost['writer_ns'] / cost['cpu_ns']:.2g} %"
    assert "<th class=\"num\">writer CPU</th>" in page and f"<td class=\"num\">{share} (" in page

    # an edited findings JSON whose cost is not an object still renders
    doc["trace"]["cost"] = ["not", "a", "cost"]
    doc["trace"]["processes"][0]["cost"] = "x"
    js = tmp_path / "f.json"
    js.write_bytes(orjson.dumps(doc))
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(js), "--html", str(out), "--plotlyjs", "cdn"])
    assert result.exit_code == 0, result.output
    assert "Recording cost" not in out.read_text(encoding="utf-8")
