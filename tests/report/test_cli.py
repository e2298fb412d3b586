"""`lockscope analyze --html` and `lockscope report`: re-rendering from a kept
database or a findings JSON, and clear one-line errors."""
from __future__ import annotations

import json

import duckdb
import orjson
from typer.testing import CliRunner

from analyzer.cli import app

from .pageparse import parse

runner = CliRunner()


def chart_names(page_html: str) -> set[str]:
    return {d.attrs["data-chart"] for d in parse(page_html).find("div", "plot")}


def test_analyze_writes_html_and_keeps_the_findings_in_the_db(shop, tmp_path):
    out, db, js = tmp_path / "r.html", tmp_path / "t.duckdb", tmp_path / "f.json"
    result = runner.invoke(app, ["analyze", str(shop.traces), "-q", "--html", str(out), "--db", str(db),
                                 "--json", str(js), "--plotlyjs", "cdn"])
    assert result.exit_code == 1, result.output  # the potential deadlock is an error
    page = out.read_text(encoding="utf-8")
    assert "https://cdn.plot.ly/" in page and "timeline-run" in chart_names(page)
    con = duckdb.connect(str(db), read_only=True)
    stored = orjson.loads(con.execute("SELECT document FROM findings_json").fetchone()[0])
    con.close()
    written = json.loads(js.read_text())
    assert [f["fingerprint"] for f in stored["findings"]] == [f["fingerprint"] for f in written["findings"]]


def test_report_from_database_and_from_json(shop, tmp_path):
    from_db = tmp_path / "db.html"
    result = runner.invoke(app, ["report", str(shop.db), "--html", str(from_db)])
    assert result.exit_code == 0, result.output
    names = chart_names(from_db.read_text(encoding="utf-8"))
    assert {"timeline-run", "lock-graph", "hold-histogram"} <= names
    assert len([n for n in names if n.startswith("timeline-F")]) >= 2

    js = tmp_path / "f.json"
    js.write_bytes(orjson.dumps(shop.doc))
    from_json = tmp_path / "json.html"
    result = runner.invoke(app, ["report", str(js), "--html", str(from_json), "--plotlyjs", "cdn"])
    assert result.exit_code == 0, result.output
    page = from_json.read_text(encoding="utf-8")
    assert not any(n.startswith("timeline") for n in chart_names(page))
    assert "Timelines need the trace database" in parse(page).text
    for f in shop.doc["findings"]:
        assert f'id="{f["id"]}"' in page


def test_report_errors_are_one_line(shop, tmp_path):
    not_findings = tmp_path / "other.json"
    not_findings.write_text('{"hello": 1}')
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("not json at all")
    empty_db = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty_db)).close()
    newer = tmp_path / "v2.json"
    newer.write_text(json.dumps({"format": "lockscope-findings", "version": 2}))
    cases = [
        ([str(tmp_path / "missing.json")], "no such file"),
        ([str(not_findings)], "not a lockscope findings document"),
        ([str(garbage)], "neither a lockscope database nor findings JSON"),
        ([str(empty_db)], "holds no findings"),
        ([str(newer)], "unsupported findings version 2"),
        ([str(shop.db), "--plotlyjs", "maybe"], "--plotlyjs must be one of inline, cdn"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["report", *args, "--html", str(tmp_path / "x.html")])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["report", str(shop.db), "--html", str(tmp_path / "no" / "dir" / "x.html")])
    assert result.exit_code == 2 and "cannot write report" in result.output
