"""CPython's own tests for tasks, TaskGroup, timeouts, wait_for and runners pass
while recording (the traced Task class, create_task/create_future hooks and
timeout bookkeeping are in force). Run from the interpreter's ``test`` package in a
subprocess; skipped where that package is not installed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

SUITES = ["test.test_asyncio.test_taskgroups", "test.test_asyncio.test_timeouts",
          "test.test_asyncio.test_waitfor", "test.test_asyncio.test_runners"]


@pytest.mark.timeout(300)
def test_stdlib_asyncio_suites_pass_under_recording(tmp_path):
    if sys.version_info[:2] != (3, 11) or importlib.util.find_spec("test.test_asyncio") is None:
        pytest.skip("needs CPython 3.11's test package")
    out = tmp_path / "traces"
    code = textwrap.dedent(f"""
        import sys, unittest, recorder
        recorder.start({str(out)!r}, flush_interval=5)
        suite = unittest.defaultTestLoader.loadTestsFromNames({SUITES!r})
        result = unittest.TextTestRunner(verbosity=0).run(suite)
        recorder.stop()
        sys.exit(0 if result.wasSuccessful() and result.testsRun > 50 else 1)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tasks = ends = 0
    for f in out.glob("*.jsonl"):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            tasks += rec["k"] == "task"
            ends += rec["k"] == "ev" and rec["op"] == "end" and "task" in rec
    assert tasks > 100 and ends > 100
