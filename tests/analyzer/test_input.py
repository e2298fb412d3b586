"""Loading: corrupt lines, empty files, wrong versions, discovery; and the CLI contract."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from analyzer import analyze
from analyzer.cli import app
from analyzer.errors import UnusableInput

from .tracebuilder import Trace

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"


def inversion_trace(run: str = "run1") -> Trace:
    t = Trace(run=run)
    a, b = t.lock("sessions", line=3), t.lock("users", line=4)
    t1 = t.thread("login", t.main)
    t.nested(t1, [a, b], [8, 9])
    t2 = t.thread("rename", t.main)
    t.nested(t2, [b, a], [13, 14])
    t.end(t1)
    t.end(t2)
    t.join(t.main, t1)
    t.join(t.main, t2)
    return t


def test_truncated_last_line_is_skipped_and_reported(tmp_path):
    path = inversion_trace().write(tmp_path / "t.jsonl", end=False)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines) + b'{"k":"ev","ts":12')
    doc = analyze([path])
    assert doc["trace"]["corrupt_lines"] == 1
    assert doc["trace"]["corrupt"] == [{"file": str(path), "line": len(lines) + 1,
                                        "reason": "truncated or unparsable last line"}]
    assert doc["trace"]["incomplete_runs"] == ["run1"]
    assert [f["kind"] for f in doc["findings"]] == ["potential-deadlock"]


def test_garbage_lines_are_skipped_with_their_line_numbers(tmp_path):
    path = inversion_trace().write(tmp_path / "t.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(5, b"this is not json\n")
    lines.insert(9, b'{"k":"ev","ts":"soon","th":1}\n')
    lines.insert(12, b"[1, 2, 3]\n")
    path.write_bytes(b"".join(lines))
    doc = analyze([path])
    assert [(c["line"], c["reason"]) for c in doc["trace"]["corrupt"]] == [
        (6, "not a JSON object"), (10, "event without ts, th, obj or op"), (13, "not a JSON object")]
    assert [f["kind"] for f in doc["findings"]] == ["potential-deadlock"]


def test_empty_file_is_unusable(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(UnusableInput, match="nothing usable"):
        analyze([tmp_path / "empty.jsonl"])
    result = runner.invoke(app, ["analyze", str(tmp_path / "empty.jsonl")])
    assert result.exit_code == 2
    assert "nothing usable" in result.output
    assert "Traceback" not in result.output


def test_empty_file_next_to_a_good_one_is_a_warning(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    inversion_trace().write(tmp_path / "good.jsonl")
    doc = analyze([tmp_path])
    assert any("empty trace file" in w for w in doc["trace"]["warnings"])
    assert len(doc["findings"]) == 1


def test_wrong_format_version_is_a_clear_error(tmp_path):
    Trace(version=2).write(tmp_path / "v2.jsonl")
    result = runner.invoke(app, ["analyze", str(tmp_path / "v2.jsonl")])
    assert result.exit_code == 2
    assert "unsupported trace format version 2" in result.output
    assert "Traceback" not in result.output


def test_directory_without_traces_is_unusable(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    result = runner.invoke(app, ["analyze", str(tmp_path)])
    assert result.exit_code == 2
    assert "no trace files" in result.output


def test_missing_path_is_unusable(tmp_path):
    result = runner.invoke(app, ["analyze", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_garbage_only_file_is_unusable(tmp_path):
    (tmp_path / "junk.jsonl").write_text("junk\nmore junk\n")
    with pytest.raises(UnusableInput, match="nothing usable"):
        analyze([tmp_path / "junk.jsonl"])


def test_directories_globs_gzip_and_rotated_parts(tmp_path):
    t = inversion_trace()
    records = t.records + [{"k": "end", "ts": t.tick(), "reason": "exit"}]
    header = records[0]
    part0 = records[:12] + [{"k": "end", "ts": records[11].get("ts", t.ts), "reason": "rotate"}]
    # a rotated part repeats the definitions it needs
    defs = [r for r in records if r["k"] in ("site", "lock", "thread")]
    part1 = [header | {"part": 1}] + defs + records[12:]
    sub = tmp_path / "nested" / "deeper"
    sub.mkdir(parents=True)
    (sub / "run.jsonl").write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in part0))
    with gzip.open(sub / "run.1.jsonl.gz", "wb") as fh:
        fh.write(b"".join(json.dumps(r).encode() + b"\n" for r in part1))
    doc = analyze([tmp_path])
    assert len(doc["trace"]["files"]) == 2
    assert doc["trace"]["processes"][0]["parts"] == 2
    assert doc["trace"]["processes"][0]["ended"] is True
    assert [f["kind"] for f in doc["findings"]] == ["potential-deadlock"]
    assert len(analyze([str(tmp_path / "**" / "*.jsonl*")])["findings"]) == 1


def test_dropped_events_and_missing_end_are_in_the_summary(tmp_path):
    t = inversion_trace()
    t.records.append({"k": "dropped", "ts": t.tick(), "th": 4, "count": 1200})
    doc = analyze([t.write(tmp_path / "t.jsonl", end=False)])
    assert doc["trace"]["dropped"] == 1200
    assert doc["trace"]["incomplete_runs"] == ["run1"]
    assert doc["trace"]["processes"][0]["ended"] is False


def test_cli_exit_codes_json_sarif_and_baseline(tmp_path):
    trace = inversion_trace().write(tmp_path / "t.jsonl")
    out, sarif = tmp_path / "f.json", tmp_path / "f.sarif"
    result = runner.invoke(app, ["analyze", str(trace), "--json", str(out), "--sarif", str(sarif)])
    assert result.exit_code == 1, result.output
    assert "Potential deadlock" in result.output
    doc = json.loads(out.read_text())
    assert doc["format"] == "lockscope-findings" and doc["version"] == 1
    [f] = doc["findings"]
    for key in ("id", "fingerprint", "kind", "severity", "title", "message", "locks", "threads", "steps",
                "count", "first_ts", "last_ts", "first_wall", "last_wall"):
        assert key in f
    assert f["first_wall"].endswith("Z")
    log = json.loads(sarif.read_text())
    assert log["version"] == "2.1.0"
    [res] = log["runs"][0]["results"]
    assert res["ruleId"] == "potential-deadlock" and res["level"] == "error"
    primary = res["locations"][0]["physicalLocation"]
    assert primary["artifactLocation"]["uri"] == "app.py" and primary["region"]["startLine"] in (9, 14)
    assert {r["physicalLocation"]["region"]["startLine"] for r in res["relatedLocations"]} >= {8, 13}
    assert runner.invoke(app, ["analyze", str(trace), "--fail-on", "critical"]).exit_code == 0
    assert runner.invoke(app, ["analyze", str(trace), "--fail-on", "never"]).exit_code == 0
    again = runner.invoke(app, ["analyze", str(trace), "--baseline", str(out), "--json", str(out)])
    assert again.exit_code == 0, again.output
    assert json.loads(out.read_text())["suppressed"] == 1


def test_cli_rejects_bad_options(tmp_path):
    trace = inversion_trace().write(tmp_path / "t.jsonl")
    for args in (["--fail-on", "sometimes"], ["--long-hold", "soon"], ["--group-by", "color"],
                 ["--baseline", str(tmp_path / "missing.json")]):
        result = runner.invoke(app, ["analyze", str(trace), *args])
        assert result.exit_code == 2, args
        assert "Traceback" not in result.output


def test_keep_database_for_sql(tmp_path):
    import duckdb

    trace = inversion_trace().write(tmp_path / "t.jsonl")
    analyze([trace], db=tmp_path / "t.duckdb")
    con = duckdb.connect(str(tmp_path / "t.duckdb"), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"files", "runs", "threads", "tasks", "locks", "resources", "sites", "segments", "events",
            "dropped", "holds", "waits", "deps"} <= tables
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] > 0


def test_segments_as_actors(tmp_path):
    # two test cases in the main thread take the locks in opposite orders
    t = Trace()
    a, b = t.lock("a", line=3), t.lock("b", line=4)
    s1, s2 = t.segment("test_one"), t.segment("test_two")
    t.ev(t.main, s1, "segment-begin")
    t.nested(t.main, [a, b], [10, 11])
    t.ev(t.main, s1, "segment-end")
    t.ev(t.main, s2, "segment-begin")
    t.nested(t.main, [b, a], [20, 21])
    t.ev(t.main, s2, "segment-end")
    path = t.write(tmp_path / "t.jsonl")
    by_thread = analyze([path])
    assert [f["details"]["reason"] for f in by_thread["findings"]] == ["single-actor"]
    by_segment = analyze([path], actors="segment")
    [f] = by_segment["findings"]
    assert f["kind"] == "potential-deadlock"
    assert sorted(s["actor"]["name"] for s in f["steps"]) == ["test_one", "test_two"]
    assert {s["actor"]["kind"] for s in f["steps"]} == {"segment"}


def test_reentrant_reacquire_is_not_an_edge(tmp_path):
    t = Trace()
    r = t.lock("r", type="threading.RLock", line=3)
    b = t.lock("b", line=4)
    t1 = t.thread("one", t.main)
    t.acquire(t1, r, 10)
    t.acquire(t1, b, 11)
    t.acquire(t1, r, 12)   # re-entry while holding b: not an edge b -> r
    t.release(t1, r)
    t.release(t1, b)
    t.release(t1, r)
    t2 = t.thread("two", t.main)
    t.nested(t2, [r, b], [20, 21])
    doc = analyze([t.write(tmp_path / "t.jsonl")])
    assert doc["findings"] == []
    stats = next(lk for lk in doc["locks"] if lk["name"] == "r")
    assert stats["acquisitions"] == 2


# ---------------------------------------------------------------- bad field values (issue #15)

def run_cli(*args: str):
    """The CLI's result; fails the test on any exception other than the exit itself."""
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def lines_of(path) -> list[dict]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def write_records(path, records: list[dict]):
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records))
    return path


@pytest.mark.parametrize("bad_line", ["missing", "x", 1.5, 2**40])
def test_site_without_an_integer_line_is_a_corrupt_line(tmp_path, bad_line):
    # a real recorded trace whose findings all name code sites
    records = lines_of(SAMPLES / "lock_order_threads-bug.jsonl")
    bad_at = []
    for n, r in enumerate(records, 1):
        if r["k"] == "site":
            if bad_line == "missing":
                del r["line"]
            else:
                r["line"] = bad_line
            bad_at.append(n)
    path = write_records(tmp_path / "t.jsonl", records)
    out = tmp_path / "f.json"
    result = run_cli("analyze", str(path), "--json", str(out), "--sarif", str(tmp_path / "f.sarif"),
                     "--html", str(tmp_path / "r.html"))
    assert result.exit_code == 1  # the potential deadlock is still found
    doc = json.loads(out.read_text())
    assert "potential-deadlock" in [f["kind"] for f in doc["findings"]]
    assert [(c["line"], c["reason"]) for c in doc["trace"]["corrupt"]] == [
        (n, "site without an integer line (kept without it)") for n in bad_at]
    # the site keeps its file: findings still say where
    assert all(s["site"] and s["line"] is None for f in doc["findings"] for s in f["sites"])


def test_timestamp_out_of_range_is_a_corrupt_line(tmp_path):
    t = inversion_trace()
    t.records.append({"k": "ev", "ts": -2**63, "th": t.main, "task": None, "obj": 2, "op": "acquire"})
    t.records.append({"k": "ev", "ts": 2**63 - 1, "th": t.main, "task": None, "obj": 2, "op": "release"})
    path = t.write(tmp_path / "t.jsonl")
    n = len(t.records)
    result = run_cli("analyze", str(path), "--json", str(tmp_path / "f.json"))
    assert result.exit_code == 1
    doc = json.loads((tmp_path / "f.json").read_text())
    assert [(c["line"], c["reason"]) for c in doc["trace"]["corrupt"]] == [
        (n - 1, "ts out of range"), (n, "ts out of range")]
    assert [f["kind"] for f in doc["findings"]] == ["potential-deadlock"]
    assert doc["trace"]["duration_ns"] < 10**9


def test_dropped_count_out_of_range_is_a_corrupt_line(tmp_path):
    t = inversion_trace()
    t.records.append({"k": "dropped", "ts": t.tick(), "th": t.main, "count": 2**63 - 1})
    t.records.append({"k": "dropped", "ts": t.tick(), "th": t.main, "count": 2**40})
    t.records.append({"k": "dropped", "ts": t.tick(), "th": t.main, "count": 2**40})
    path = t.write(tmp_path / "t.jsonl")
    result = run_cli("analyze", str(path), "--json", str(tmp_path / "f.json"))
    assert result.exit_code == 1
    doc = json.loads((tmp_path / "f.json").read_text())
    assert [(c["line"], c["reason"]) for c in doc["trace"]["corrupt"]] == [
        (len(t.records) - 2, "dropped count out of range")]
    assert doc["trace"]["dropped"] == 2**41


@pytest.mark.parametrize("argv", ["app.py --port 1", 5, {"0": "app.py"}])
def test_header_argv_not_a_list_is_a_corrupt_line(tmp_path, argv):
    t = inversion_trace()
    t.records[0]["argv"] = argv
    path = t.write(tmp_path / "t.jsonl")
    result = run_cli("analyze", str(path), "--json", str(tmp_path / "f.json"), "--html", str(tmp_path / "r.html"))
    assert result.exit_code == 1
    doc = json.loads((tmp_path / "f.json").read_text())
    assert doc["trace"]["corrupt"] == [{"file": str(path), "line": 1, "reason": "header argv is not a list (ignored)"}]
    assert doc["trace"]["processes"][0]["argv"] == []
    assert (tmp_path / "r.html").stat().st_size > 0


@pytest.mark.parametrize("steps, message", [
    ("x", "findings[0].steps is not a list"),
    ([1, 2], "findings[0].steps[0] is not an object"),
    ([{"actor": 5}], "findings[0].steps[0].actor is not an object"),
    ([{"holds": {"lock": 1}}], "findings[0].steps[0].holds is not a list"),
])
def test_report_on_findings_with_malformed_steps_is_a_one_line_error(tmp_path, steps, message):
    out = tmp_path / "f.json"
    run_cli("analyze", str(SAMPLES / "deadlock_threads-bug.jsonl"), "--json", str(out), "-q")
    doc = json.loads(out.read_text())
    assert doc["findings"][0]["steps"]
    doc["findings"][0]["steps"] = steps
    out.write_text(json.dumps(doc))
    result = run_cli("report", str(out), "--html", str(tmp_path / "r.html"))
    assert result.exit_code == 2
    assert result.output.strip() == f"lockscope report: {out}: malformed findings document: {message}"


# ---------------------------------------------------------------- file names, copies, long lines

def test_file_names_are_read_literally_not_as_patterns(tmp_path):
    path = inversion_trace().write(tmp_path / "svc[ab].jsonl")
    # a file the pattern would match, holding another program's trace
    other = Trace(run="other")
    other.nested(other.main, [other.lock("x", line=5)], [6])
    other.write(tmp_path / "svca.jsonl")
    doc = analyze([path])
    assert [f["path"] for f in doc["trace"]["files"]] == [str(path)]
    assert [p["run"] for p in doc["trace"]["processes"]] == ["run1"]
    assert [f["kind"] for f in doc["findings"]] == ["potential-deadlock"]


def test_the_same_part_twice_is_read_once_with_a_warning(tmp_path):
    plain = inversion_trace().write(tmp_path / "t.jsonl")
    (tmp_path / "t.jsonl.gz").write_bytes(gzip.compress(plain.read_bytes()))
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "t.jsonl").write_bytes(plain.read_bytes())
    once = analyze([plain])
    os.link(plain, tmp_path / "hardlink.jsonl")
    twice = analyze([plain, plain, str(tmp_path / "*.jsonl"), tmp_path / "hardlink.jsonl"])
    assert twice["trace"]["events"] == once["trace"]["events"]
    assert [f["path"] for f in twice["trace"]["files"]] == [str(tmp_path / "hardlink.jsonl")]
    os.unlink(tmp_path / "hardlink.jsonl")
    doc = analyze([tmp_path])
    assert doc["trace"]["events"] == once["trace"]["events"]
    assert [f["path"] for f in doc["trace"]["files"]] == [str(tmp_path / "copy" / "t.jsonl")]
    assert sorted(w for w in doc["trace"]["warnings"] if "read once" in w) == [
        f"{tmp_path / 't.jsonl'} is a copy of {tmp_path / 'copy' / 't.jsonl'} (app.py (pid 4242) part 0): read once",
        f"{tmp_path / 't.jsonl.gz'} is a copy of {tmp_path / 'copy' / 't.jsonl'} (app.py (pid 4242) part 0): read once"]
    assert [(f["kind"], f["count"]) for f in doc["findings"]] == [
        (f["kind"], f["count"]) for f in once["findings"]]
    assert doc["locks"][0]["acquisitions"] == once["locks"][0]["acquisitions"]


def test_two_programs_with_one_run_id_are_never_merged(tmp_path):
    # each program takes the two locks in one order: only merged do they form a cycle
    def program(pid: int, order: list[str]) -> Trace:
        t = Trace(run="samerun")
        t.records[0]["pid"] = pid
        locks = {"sessions": t.lock("sessions", line=3), "users": t.lock("users", line=4)}
        worker = t.thread("worker", t.main)
        t.nested(worker, [locks[n] for n in order], [8, 9])
        return t
    program(100, ["sessions", "users"]).write(tmp_path / "a.jsonl")
    program(200, ["users", "sessions"]).write(tmp_path / "b.jsonl")
    doc = analyze([tmp_path])
    assert [f for f in doc["findings"] if f["severity"] in ("error", "critical")] == []
    assert [(p["run"], p["pid"]) for p in doc["trace"]["processes"]] == [("samerun", 100), ("samerun~2", 200)]
    assert any("one run id was written by more than one program (pid 100 on test, app.py (pid 200) on test"
               in w for w in doc["trace"]["warnings"])
    assert not any("samerun" in w for w in doc["trace"]["warnings"])


@pytest.mark.parametrize("mib", [20, 40])
@pytest.mark.parametrize("compress", [False, True])
def test_over_long_lines_are_corrupt_lines_and_the_rest_is_read(tmp_path, monkeypatch, mib, compress):
    monkeypatch.setenv("LOCKSCOPE_MAX_GZIP_RATIO", "0")  # the long lines compress very well
    t = inversion_trace()
    huge_at = 6
    t.records.insert(huge_at - 1, {"k": "name", "id": 2, "name": "x" * (mib << 20)})
    t.records.insert(huge_at + 1, {"k": "site", "id": 99, "file": "/app/x.py", "line": 1, "func": "f",
                                   "stack": [["/app/x.py", 1, "f" * (mib << 20)]]})
    path = t.write(tmp_path / "t.jsonl")
    if compress:
        gz = tmp_path / "t.jsonl.gz"
        gz.write_bytes(gzip.compress(path.read_bytes(), compresslevel=1))
        path.unlink()
        path = gz
    doc = analyze([path])
    assert doc["trace"]["corrupt"] == [
        {"file": str(path), "line": huge_at, "reason": "line longer than 16 MiB (not read)"},
        {"file": str(path), "line": huge_at + 2, "reason": "line longer than 16 MiB (not read)"}]
    assert [f["kind"] for f in doc["findings"]] == ["potential-deadlock"]
    assert doc["findings"][0]["locks"][0]["name"] == "sessions"  # the line after the long one is read


# ---------------------------------------------------------------- resources

def busy_trace(path, events: int):
    """A valid trace of `events` lock events over 8 threads and 50 locks, written fast."""
    t = Trace()
    locks = [t.lock(f"l{i}", line=10 + i) for i in range(50)]
    threads = [t.thread(f"w{i}", t.main) for i in range(8)]
    site = t.site(500)
    head = b"".join(orjson.dumps(r) + b"\n" for r in t.records)
    ts = t.ts
    with open(path, "wb") as fh:
        fh.write(head)
        for i in range(events // 2):
            ts += 1000
            th, lock = threads[i % 8], locks[(i * 7) % 50]
            fh.write(b'{"k":"ev","ts":%d,"th":%d,"task":null,"obj":%d,"op":"acquire","site":%d}\n'
                     % (ts, th, lock, site))
            fh.write(b'{"k":"ev","ts":%d,"th":%d,"task":null,"obj":%d,"op":"release"}\n' % (ts + 500, th, lock))
        fh.write(b'{"k":"end","ts":%d,"reason":"exit"}\n' % (ts + 1000))
    return path


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_analysis_removes_the_spill_directory(tmp_path_factory, signum):
    trace = tmp_path_factory.getbasetemp() / "busy.jsonl"
    if not trace.exists():
        busy_trace(trace, 600_000)
    spill_root = tmp_path_factory.mktemp("spill")
    env = dict(os.environ, TMPDIR=str(spill_root))
    proc = subprocess.Popen([sys.executable, "-c", "from analyzer.cli import main; main()", "analyze", str(trace), "-q",
                             "--memory-limit", "200MB"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not any(p.name.startswith("lockscope-") for p in spill_root.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, "no spill directory was made"
            time.sleep(0.02)
        time.sleep(0.5)  # into the loading
        assert proc.poll() is None, "the analysis ended before the signal"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 128 + signum
    assert err.strip() == f"lockscope analyze: interrupted by {signal.Signals(signum).name} (nothing written)"
    assert list(spill_root.iterdir()) == []


def test_gzip_that_expands_too_much_is_refused_with_one_line(tmp_path, monkeypatch):
    plain = busy_trace(tmp_path / "t.jsonl", 2000)
    repeated = plain.read_bytes() + plain.read_bytes().splitlines(keepends=True)[-2] * 3_000_000
    gz = tmp_path / "bomb.jsonl.gz"
    gz.write_bytes(gzip.compress(repeated, compresslevel=9))
    plain.unlink()
    assert len(repeated) / gz.stat().st_size > 100
    result = run_cli("analyze", str(gz))
    assert result.exit_code == 2
    assert result.output.startswith(f"lockscope analyze: {gz}: expands more than 100 times (")
    assert len(result.output.strip().splitlines()) == 1
    monkeypatch.setenv("LOCKSCOPE_MAX_GZIP_RATIO", "0")  # the user's explicit choice reads it
    assert run_cli("analyze", str(gz), "-q").exit_code == 0


def test_default_memory_and_spill_limits_fit_the_machine(monkeypatch):
    import duckdb

    from analyzer import load

    def settings(con) -> tuple:
        try:
            return con.execute("SELECT current_setting('memory_limit'), "
                               "current_setting('max_temp_directory_size')").fetchone()
        finally:
            con.close()

    def expected(memory: str, temp: str) -> tuple:
        con = duckdb.connect()
        con.execute(f"SET memory_limit = '{memory}'; SET max_temp_directory_size = '{temp}'")
        return settings(con)

    monkeypatch.delenv("LOCKSCOPE_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("LOCKSCOPE_TEMP_LIMIT", raising=False)
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    default = load.default_memory_limit()
    assert default.endswith("MB") and int(default[:-2]) << 20 <= physical // 2
    free = shutil.disk_usage(tempfile.gettempdir()).free
    assert settings(load.connect())[0] == expected(default, "1GB")[0]
    assert int(load.default_temp_limit(tempfile.gettempdir())[:-2]) << 20 <= free // 2 + (1 << 30)
    monkeypatch.setenv("LOCKSCOPE_MEMORY_LIMIT", "123MB")
    monkeypatch.setenv("LOCKSCOPE_TEMP_LIMIT", "2GB")
    assert settings(load.connect()) == expected("123MB", "2GB")
    assert settings(load.connect(memory_limit="200MB", temp_limit="3GB")) == expected("200MB", "3GB")
    with pytest.raises(UnusableInput, match="bad memory or temp limit"):
        load.connect(memory_limit="lots")


def test_running_out_of_memory_and_spill_is_a_one_line_error(tmp_path):
    trace = busy_trace(tmp_path / "t.jsonl", 400_000)
    result = run_cli("analyze", str(trace), "-q", "--memory-limit", "20MB", "--temp-limit", "1MB")
    assert result.exit_code == 2
    assert result.output.startswith("lockscope analyze: out of memory or spill space (memory limit ")
    assert len(result.output.strip().splitlines()) == 1
