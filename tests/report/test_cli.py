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


def _lock_statistics(page_html: str) -> str:
    return page_html.split('<section id="locks">')[1].split("</section>")[0]


def test_all_locks_lists_the_library_locks_in_every_report(tmp_path):
    """Without --all-locks the statistics fold the libraries' locks into one line
    (terminal, HTML); with it they list them; the JSON lists them either way and
    says which was asked, so `lockscope report` shows the same (or all, when asked)."""
    from tests.analyzer.test_lock_names import run_program

    traces, _ = run_program(tmp_path)
    got = {}
    for flag in ([], ["--all-locks"]):
        out = tmp_path / ("all" if flag else "folded")
        out.mkdir()
        result = runner.invoke(app, ["analyze", str(traces), "--html", str(out / "r.html"), "--json",
                                     str(out / "f.json"), "--plotlyjs", "cdn", *flag], env={"COLUMNS": "200"})
        assert result.exit_code == 1, result.output  # the accounts' deadlock
        got[bool(flag)] = (result.output, (out / "r.html").read_text(encoding="utf-8"),
                           json.loads((out / "f.json").read_text()), out / "f.json")
    (text, page, doc, _), (text_all, page_all, doc_all, js_all) = got[False], got[True]
    library = [lk["label"] for lk in doc["locks"] if lk["library"]]
    assert len(library) > 5 and doc["locks"] == doc_all["locks"]  # the JSON lists every lock either way
    assert (doc["options"]["all_locks"], doc_all["options"]["all_locks"]) == (False, True)
    fold = f"+ {len(library)} library locks ("
    future = next(label for label in library if label.startswith("Future._condition#1 "))
    assert fold in text and future not in text
    assert future in text_all and "library locks (" not in text_all
    assert fold in _lock_statistics(page) and f">{future}<" not in _lock_statistics(page)
    stats_all = _lock_statistics(page_all)
    assert "library locks (" not in stats_all and all(f">{label}<" in stats_all for label in library)

    for source, flag, all_shown in ((got[False][3], [], False), (got[False][3], ["--all-locks"], True),
                                    (js_all, [], True)):
        again = tmp_path / "again.html"
        result = runner.invoke(app, ["report", str(source), "--html", str(again), "--plotlyjs", "cdn", *flag])
        assert result.exit_code == 0, result.output
        stats = _lock_statistics(again.read_text(encoding="utf-8"))
        assert (f">{future}<" in stats, fold in stats) == (all_shown, not all_shown), (source, flag)
