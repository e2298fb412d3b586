"""`pytest --lockscope` analyzes the traces of the processes the session started."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CHILD = Path(__file__).resolve().parents[1] / "scenarios" / "lock_order_threads_bug.py"

# The test itself takes no lock: the only lock-order cycle is in the child process.
STARTS_A_CHILD = """
import subprocess
import sys


def test_runs_the_service():
    done = subprocess.run([sys.executable, "child_service.py"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
"""


def test_the_session_report_includes_a_subprocess_childs_finding(pytester):
    pytester.makepyfile(test_service=STARTS_A_CHILD)
    (pytester.path / "child_service.py").write_text(CHILD.read_text())
    result = pytester.runpytest_inprocess("--lockscope", "--lockscope-json", "findings.json",
                                          "--lockscope-out", "traces")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "ERROR potential-deadlock: Potential deadlock: lock order cycle sessions -> users -> sessions*",
        "    test_service.py::test_runs_the_service: thread 'login' requested 'users' at "
        "child_service.py:35 while holding 'sessions'*",
        "lockscope: FAILED: 1 finding at or above 'error': 1 potential-deadlock"])
    doc = json.loads((pytester.path / "findings.json").read_text())
    assert len(doc["trace"]["processes"]) == 2
    [finding] = [f for f in doc["findings"] if f["severity"] == "error"]
    assert finding["kind"] == "potential-deadlock"
    child_run = finding["run"]
    child = next(p for p in doc["trace"]["processes"] if p["run"] == child_run)
    assert child["argv"][-1] == "child_service.py" and child["pid"] != os.getpid()
    assert sorted(s["actor"]["name"] for s in finding["steps"]) == ["login", "rename"]
    # the child's edges belong to the test that was running when the child took them
    assert finding["tests"] == ["test_service.py::test_runs_the_service"]
    assert [s["tests"] for s in finding["steps"]] == [["test_service.py::test_runs_the_service"]] * 2
    # the environment the children inherited is restored
    assert "LOCKSCOPE_OUT" not in os.environ


def test_traces_already_in_the_output_directory_are_not_analyzed_again(pytester):
    pytester.makepyfile(test_service=STARTS_A_CHILD)
    (pytester.path / "child_service.py").write_text(CHILD.read_text())
    first = pytester.runpytest_inprocess("--lockscope", "--lockscope-out", "traces",
                                         "--lockscope-json", "first.json")
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    # the second session starts no child: the first session's traces are not its own
    pytester.makepyfile(test_service="def test_nothing():\n    pass\n")
    second = pytester.runpytest_inprocess("--lockscope", "--lockscope-out", "traces",
                                          "--lockscope-json", "second.json")
    second.assert_outcomes(passed=1)
    assert second.ret == pytest.ExitCode.OK
    doc = json.loads((pytester.path / "second.json").read_text())
    assert len(doc["trace"]["processes"]) == 1


def test_xdist_workers_children_are_analyzed_once(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_service=STARTS_A_CHILD, test_other="def test_other():\n    pass\n")
    (pytester.path / "child_service.py").write_text(CHILD.read_text())
    # both workers write to one directory: each sees the other's files appear
    result = pytester.runpytest_subprocess("-n", "2", "--lockscope", "--lockscope-out", "traces",
                                           "--lockscope-json", "findings.json", timeout=300)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "analyzed 3 trace files, 2 tests, *",
        "    test_service.py::test_runs_the_service: thread 'login' requested 'users' at "
        "child_service.py:35 *",
        "lockscope: FAILED: 1 finding at or above 'error': 1 potential-deadlock"])
    doc = json.loads((pytester.path / "findings.json").read_text())
    assert len(doc["trace"]["processes"]) == 3
    assert not [w for w in doc["trace"]["warnings"] if "read once" in w]
