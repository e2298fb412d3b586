"""benchmarks/production_cost.py --quick runs every workload and reports each one's
figures (shape only: timings are never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "production_cost.py"
WORKLOADS = ["queue", "executor", "logging", "primitives", "busy128", "keyed", "http",
             "aio", "startup"]
KEYS = {"workload", "mode", "sizes", "rounds", "bare_cpu_s", "traced_cpu_s", "cpu_ratio",
        "bare_work_cpu_s", "traced_work_cpu_s", "work_ratio", "traced_wall_s", "events",
        "events_per_s", "bytes", "bytes_per_s", "bytes_per_event", "dropped", "dropped_pct",
        "bare_rss_mb", "traced_rss_mb", "writer_s", "writer_share"}


def test_quick_run_reports_every_workload():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", "--timeout", "60"],
                          capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["workload"] for r in rows] == WORKLOADS
    for r in rows:
        serving = ({"serve_ratio", "us_per_request"} if r["workload"] in ("http", "aio")
                   else set())
        assert set(r) == KEYS | serving, r["workload"]
        assert r["rounds"] == 1
        assert r["bare_cpu_s"] > 0 and r["traced_cpu_s"] > 0
        assert r["bare_rss_mb"] > 1 and r["traced_rss_mb"] > 1
        assert 0 <= r["dropped_pct"] <= 100
        # (the trace's own account of its writer: part of the process's CPU)
        assert 0 < r["writer_s"] < r["traced_cpu_s"] and 0 < r["writer_share"] < 1, r
        if r["workload"] == "startup":  # (imports threading and exits: a header, no event)
            assert r["events"] == 0 and r["bytes"] > 0, r
            continue
        # every other workload takes locks: the traced round wrote events to its trace
        assert r["events"] > 0 and r["bytes"] > r["events"] * 20, r
    for server in ("http", "aio"):  # (the server's CPU from its first request to the stop)
        assert rows[WORKLOADS.index(server)]["serve_ratio"] > 0
