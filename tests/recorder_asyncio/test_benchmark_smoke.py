"""benchmarks/recorder_overhead_asyncio.py runs and reports its two rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "recorder_overhead_asyncio.py"


def test_benchmark_runs_and_reports_both_rows():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--rounds", "2", "--pairs", "200",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["row"] for r in rows] == ["asyncio.Lock async with (wall)",
                                        "asyncio.Lock async with (loop thread CPU)"]
    for r in rows:
        assert r["untraced_ns"] > 0 and r["traced_ns"] > 0
        assert abs(r["extra_ns"] - (r["traced_ns"] - r["untraced_ns"])) < 0.2
