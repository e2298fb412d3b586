"""CPython's own asyncio tests pass while recording, on whatever Python runs this:
tasks (with wait, as_completed, shield, gather), futures, TaskGroup, timeouts,
wait_for and runners with the traced Task class, create_task/create_future hooks
and timeout bookkeeping in force; and, on versions other than the 3.11 whose copies
live in tests/cpython, the interpreter's own lock and queue tests against the traced
primitives. Run from the interpreter's ``test`` package in a subprocess; skipped
where that package is not installed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

NEW_IN_311 = {"test_taskgroups", "test_timeouts"}
GROUPS = {
    "tasks": ["test_tasks"],
    "futures-and-friends": ["test_futures", "test_taskgroups", "test_timeouts", "test_waitfor",
                            "test_runners"],
    "locks-and-queues": ["test_locks", "test_queues"],
}


def _suites(group: str) -> list[str]:
    return [f"test.test_asyncio.{m}" for m in GROUPS[group]
            if sys.version_info >= (3, 11) or m not in NEW_IN_311]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("group", list(GROUPS))
def test_stdlib_asyncio_suites_pass_under_recording(tmp_path, group):
    if importlib.util.find_spec("test.test_asyncio") is None:
        pytest.skip("needs the interpreter's test package")
    if group == "locks-and-queues" and sys.version_info[:2] == (3, 11):
        pytest.skip("run in-process from the copies in tests/cpython")
    out = tmp_path / "traces"
    suites = _suites(group)
    code = textwrap.dedent(f"""
        import sys, unittest, asyncio, recorder
        recorder.start({str(out)!r}, flush_interval=5)
        from recorder import _aio_sync
        assert asyncio.Lock is _aio_sync.Lock and asyncio.Queue is _aio_sync.Queue
        suite = unittest.defaultTestLoader.loadTestsFromNames({suites!r})
        result = unittest.TextTestRunner(verbosity=0).run(suite)
        recorder.stop()
        sys.exit(0 if result.wasSuccessful() and result.testsRun > 50 else 1)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tasks = ends = waits = 0
    for f in out.glob("*.jsonl"):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            tasks += rec["k"] == "task"
            ends += rec["k"] == "ev" and rec["op"] == "end" and "task" in rec
            waits += rec["k"] == "ev" and rec["op"] == "wait-begin"
    assert tasks > 20 and ends > 20 and waits > 20
