"""pytest-xdist: every worker records its own trace; the controller analyzes them
all, so tests that ran in different worker processes still form a cycle."""
from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]
pytest.importorskip("xdist")

# Each test in its own xdist group: with two workers, each worker runs one.
OPPOSITE_GROUPS = """
import threading

import pytest

accounts = threading.Lock()
audit = threading.Lock()


@pytest.mark.xdist_group("deposit")
def test_deposit():
    with accounts:
        with audit:
            pass


@pytest.mark.xdist_group("report")
def test_report():
    with audit:
        with accounts:
            pass
"""


def segments_by_file(trace_dir):
    out = {}
    for path in sorted(trace_dir.glob("*.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        out[path.name] = {r["name"] for r in records if r["k"] == "segment" and r["kind"] == "test"}
    return out


def test_workers_record_and_the_controller_finds_the_cycle_across_them(pytester):
    pytester.makepyfile(test_bank=OPPOSITE_GROUPS)
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "--lockscope",
                                           "--lockscope-out", "traces", timeout=300)
    result.assert_outcomes(passed=2)
    # one trace per worker, each with one of the tests (the controller records nothing)
    by_file = segments_by_file(pytester.path / "traces")
    assert sorted(map(sorted, by_file.values())) == [["test_bank.py::test_deposit"],
                                                     ["test_bank.py::test_report"]]
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "analyzed 2 trace files, 2 tests, *",
        "ERROR potential-deadlock: *",
        "    test_bank.py::test_deposit: requested * at test_bank.py:12 *",
        "    test_bank.py::test_report: requested * at test_bank.py:19 *",
        "lockscope: FAILED: 1 finding at or above 'error': 1 potential-deadlock",
    ])


def test_fixed_version_passes_under_xdist_and_temp_traces_are_removed(pytester, monkeypatch):
    tmp = pytester.mkdir("tmp")
    monkeypatch.setenv("TMPDIR", str(tmp))
    pytester.makepyfile(test_bank=OPPOSITE_GROUPS.replace(
        "    with audit:\n        with accounts:", "    with accounts:\n        with audit:"))
    result = pytester.runpytest_subprocess("-n", "2", "--lockscope", timeout=300)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["analyzed 2 trace files, 2 tests, *",
                                 "lockscope: passed: no findings at or above 'error'*"])
    assert "traces:" not in result.stdout.str()
    assert not [p for p in tmp.iterdir() if p.name.startswith("lockscope-")]
