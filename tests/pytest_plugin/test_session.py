"""`pytest --lockscope`: record the session, every test its own actor, fail on
lock-order cycles between tests (run with pytest's own `pytester`)."""
from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

# Two tests, each passing alone, that take the same two module-level locks in
# opposite orders, both in the main thread.
OPPOSITE = """
import threading

accounts = threading.Lock()
audit = threading.Lock()


def test_deposit():
    with accounts:
        with audit:
            pass


def test_report():
    with audit:
        with accounts:
            pass
"""

# The fix: both take `accounts` first.
FIXED = OPPOSITE.replace("""    with audit:
        with accounts:
            pass""", """    with accounts:
        with audit:
            pass""")

# Per-test objects (fresh instances in every test) of two classes, opposite orders.
FRESH = """
import threading


class Cache:
    def __init__(self):
        self.lock = threading.Lock()


class Store:
    def __init__(self):
        self.lock = threading.Lock()


def test_read_through():
    cache, store = Cache(), Store()
    with cache.lock:
        with store.lock:
            pass


def test_invalidate():
    cache, store = Cache(), Store()
    with store.lock:
        with cache.lock:
            pass
"""


def edge_lines(result, test: str) -> list[str]:
    """The lines of the lockscope summary for cycle edges exercised by `test` alone."""
    return [line for line in result.outlines if line.strip().startswith(test + ": requested")]


def test_opposite_order_in_two_tests_fails_the_session_and_names_both(pytester):
    pytester.makepyfile(test_bank=OPPOSITE)
    result = pytester.runpytest_inprocess("--lockscope")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*= lockscope =*",
        "ERROR potential-deadlock: Potential deadlock: lock order cycle accounts -> audit -> accounts *",
        "lockscope: FAILED: 1 finding at or above 'error': 1 potential-deadlock",
    ])
    deposit = edge_lines(result, "test_bank.py::test_deposit")
    report = edge_lines(result, "test_bank.py::test_report")
    assert len(deposit) == 1 and len(report) == 1
    # each edge names its test, the lock it requested and where, and what it held
    # (named by their creation lines, `accounts = threading.Lock()` and `audit = ...`)
    assert "requested 'audit' at test_bank.py:9" in deposit[0]
    assert "holding 'accounts' (taken at test_bank.py:8)" in deposit[0]
    assert "requested 'accounts' at test_bank.py:15" in report[0]
    assert "holding 'audit' (taken at test_bank.py:14)" in report[0]


def test_each_test_alone_passes(pytester):
    pytester.makepyfile(test_bank=OPPOSITE)
    for name in ("test_deposit", "test_report"):
        result = pytester.runpytest_inprocess("--lockscope", "-k", name)
        result.assert_outcomes(passed=1, deselected=1)
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(["lockscope: passed: no findings at or above 'error'*"])


def test_fixed_order_passes(pytester):
    pytester.makepyfile(test_bank=FIXED)
    result = pytester.runpytest_inprocess("--lockscope")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["lockscope: passed: no findings at or above 'error'*"])
    assert "potential-deadlock" not in result.stdout.str()


def test_fresh_objects_per_test_match_by_creation_site(pytester):
    """Tests build their own objects: locks are identified by creation site (default)."""
    pytester.makepyfile(test_cache=FRESH)
    result = pytester.runpytest_inprocess("--lockscope")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert len(edge_lines(result, "test_cache.py::test_read_through")) == 1
    assert len(edge_lines(result, "test_cache.py::test_invalidate")) == 1
    # per instance, two different pairs of locks never form a cycle
    result = pytester.runpytest_inprocess("--lockscope", "--lockscope-group-by", "instance")
    assert result.ret == pytest.ExitCode.OK


def test_baseline_suppresses_known_findings_only(pytester):
    pytester.makepyfile(test_bank=OPPOSITE)
    first = pytester.runpytest_inprocess("--lockscope", "--lockscope-json", "known.json")
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    known = json.loads((pytester.path / "known.json").read_text())
    assert known["format"] == "lockscope-findings"
    [finding] = [f for f in known["findings"] if f["kind"] == "potential-deadlock"]
    assert finding["tests"] == ["test_bank.py::test_deposit", "test_bank.py::test_report"]
    assert [s["tests"] for s in finding["steps"]] == [["test_bank.py::test_deposit"],
                                                      ["test_bank.py::test_report"]]

    again = pytester.runpytest_inprocess("--lockscope", "--lockscope-baseline", "known.json")
    assert again.ret == pytest.ExitCode.OK
    again.stdout.fnmatch_lines(["lockscope: passed: *1 known in the baseline*"])

    # a new cycle is not in the baseline: it fails, and only it is reported
    pytester.makepyfile(test_cache=FRESH)
    new = pytester.runpytest_inprocess("--lockscope", "--lockscope-baseline", "known.json")
    assert new.ret == pytest.ExitCode.TESTS_FAILED
    assert edge_lines(new, "test_cache.py::test_invalidate")
    assert not edge_lines(new, "test_bank.py::test_report")
    new.stdout.fnmatch_lines(["lockscope: FAILED: 1 finding *(1 known in the baseline)"])


def test_without_the_option_nothing_is_recorded(pytester):
    pytester.makepyfile(test_bank=OPPOSITE + """

def test_recorder_is_off():
    import recorder
    assert not recorder.is_recording()
""")
    result = pytester.runpytest_inprocess("--lockscope-out", "traces")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    assert "= lockscope =" not in result.stdout.str()
    assert not (pytester.path / "traces").exists()


def test_inert_run_imports_no_analysis_libraries(pytester):
    """Without --lockscope the plugin is loaded but DuckDB, typer and plotly are not."""
    pytester.makepyfile(test_imports="""
import sys

def test_nothing_heavy_loaded():
    assert "analyzer.pytest_plugin" in sys.modules
    assert not {"duckdb", "typer", "plotly", "networkx"} & set(sys.modules)
    import recorder
    assert not recorder.is_recording()
""")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_ini_file_equivalents(pytester):
    pytester.makepyfile(test_bank=OPPOSITE)
    pytester.makeini("""
[pytest]
lockscope = true
lockscope_out = kept-traces
lockscope_json = out/findings.json
lockscope_fail_on = never
""")
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([
        "ERROR potential-deadlock: *",
        "findings JSON: *findings.json",
        "traces: *kept-traces",
        "lockscope: 1 finding, not failing (fail-on never)",
    ])
    traces = list((pytester.path / "kept-traces").glob("*.jsonl"))
    assert len(traces) == 1
    records = [json.loads(line) for line in traces[0].read_text().splitlines()]
    segments = {r["name"] for r in records if r["k"] == "segment" and r["kind"] == "test"}
    assert segments == {"test_bank.py::test_deposit", "test_bank.py::test_report"}
    assert records[-1] == {"k": "end", "ts": records[-1]["ts"], "reason": "stop",
                           "cost": records[-1]["cost"]}
    assert (pytester.path / "out" / "findings.json").exists()

    # the command line wins over the ini file
    result = pytester.runpytest_inprocess("--lockscope-fail-on", "error")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_fail_on_a_lower_level(pytester):
    """One test inverting the order by itself is a guarded cycle (info): it fails
    the run only with `--lockscope-fail-on info`."""
    pytester.makepyfile(test_alone="""
import threading

a = threading.Lock()
b = threading.Lock()


def test_both_orders_in_one_test():
    with a:
        with b:
            pass
    with b:
        with a:
            pass
""")
    result = pytester.runpytest_inprocess("--lockscope")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["lockscope: passed: no findings at or above 'error' (1 info)"])
    result = pytester.runpytest_inprocess("--lockscope", "--lockscope-fail-on", "info")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "INFO guarded-cycle: *",
        "    test_alone.py::test_both_orders_in_one_test: requested *",
        "    test_alone.py::test_both_orders_in_one_test: requested *",
        "lockscope: FAILED: 1 finding at or above 'info': 1 guarded-cycle"])


def test_failing_tests_keep_their_exit_status(pytester):
    pytester.makepyfile(test_bank=OPPOSITE + """

def test_broken():
    assert False
""")
    result = pytester.runpytest_inprocess("--lockscope")
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["lockscope: FAILED: 1 finding *"])


def test_bad_baseline_is_a_clear_failure(pytester):
    pytester.makepyfile(test_bank=FIXED)
    (pytester.path / "bad.json").write_text("not json")
    result = pytester.runpytest_inprocess("--lockscope", "--lockscope-baseline", "bad.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["lockscope: FAILED: analysis failed: baseline *bad.json*"])
    assert "Traceback" not in result.stdout.str()


def test_bad_ini_value_is_a_usage_error(pytester):
    pytester.makepyfile(test_bank=FIXED)
    pytester.makeini("[pytest]\nlockscope = true\nlockscope_fail_on = sometimes\n")
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*lockscope_fail_on = 'sometimes': must be one of *"])


def test_html_report_names_the_tests(pytester):
    pytester.makepyfile(test_bank=OPPOSITE)
    result = pytester.runpytest_inprocess("--lockscope", "--lockscope-html", "out/report.html")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["HTML report: *out/report.html"])
    page = (pytester.path / "out" / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") or page.lower().startswith("<!doctype html>")
    assert "potential-deadlock" in page
    assert "test_bank.py::test_deposit" in page and "test_bank.py::test_report" in page


def test_disabled_with_p_no_lockscope(pytester):
    pytester.makepyfile(test_bank=OPPOSITE)
    result = pytester.runpytest_inprocess("-p", "no:lockscope", "--lockscope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the option is gone with the plugin
    result.stderr.fnmatch_lines(["*unrecognized arguments: --lockscope*"])


def test_recording_already_on_is_used_and_left_running(pytester, monkeypatch):
    """With LOCKSCOPE_OUT the recorder starts with the interpreter (before pytest):
    the plugin analyzes a snapshot of that recording and does not stop it."""
    monkeypatch.setenv("LOCKSCOPE_OUT", str(pytester.path / "env-traces"))
    pytester.makepyfile(test_bank=OPPOSITE)
    result = pytester.runpytest_subprocess("--lockscope", timeout=300)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert len(edge_lines(result, "test_bank.py::test_deposit")) == 1
    assert len(edge_lines(result, "test_bank.py::test_report")) == 1
    [trace] = (pytester.path / "env-traces").glob("*.jsonl")
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert {r["name"] for r in records if r["k"] == "segment" and r["kind"] == "test"} == {
        "test_bank.py::test_deposit", "test_bank.py::test_report"}
    assert records[-1]["k"] == "end" and records[-1]["reason"] == "exit"


def test_asyncio_tasks_of_two_tests_form_a_cycle(pytester):
    """Tasks stay actors of their own; each is attributed to the test it ran in."""
    pytester.makepyfile(test_async="""
import asyncio

a = asyncio.Lock()
b = asyncio.Lock()


async def nested(outer, inner):
    async with outer:
        async with inner:
            pass


def test_ab():
    asyncio.run(nested(a, b))


def test_ba():
    asyncio.run(nested(b, a))
""")
    result = pytester.runpytest_inprocess("--lockscope")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "ERROR potential-deadlock: Potential deadlock: lock order cycle a -> b -> a *",
        "    test_async.py::test_ab: task 'nested()*' requested * at test_async.py:9 *",
        "    test_async.py::test_ba: task 'nested()*' requested * at test_async.py:9 *",
    ])


def test_long_hold_threshold(pytester):
    pytester.makepyfile(test_slow="""
import threading
import time

cache = threading.Lock()


def test_slow_refresh():
    with cache:
        time.sleep(0.05)
""")
    quiet = pytester.runpytest_inprocess("--lockscope", "--lockscope-long-hold", "3600s",
                                         "--lockscope-fail-on", "warning")
    assert quiet.ret == pytest.ExitCode.OK
    assert "long-hold" not in quiet.stdout.str()
    result = pytester.runpytest_inprocess("--lockscope", "--lockscope-long-hold", "10ms",
                                          "--lockscope-fail-on", "warning")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["WARNING long-hold: *",
                                 "    in test_slow.py::test_slow_refresh at test_slow.py:8",
                                 "lockscope: FAILED: 1 finding at or above 'warning': 1 long-hold"])


def test_unwritable_trace_directory_fails_the_run_clearly(pytester):
    pytester.makepyfile(test_bank=FIXED)
    (pytester.path / "not-a-dir").write_text("a file")
    result = pytester.runpytest_inprocess("--lockscope", "--lockscope-out", "not-a-dir/traces")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["lockscope: FAILED: cannot write traces to *not-a-dir/traces: *"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
