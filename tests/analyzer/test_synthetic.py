"""The benchmark's synthetic trace, small: every planted bug found, nothing else."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from analyzer import analyze

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "analyzer_throughput.py"


def test_planted_bugs_are_found_in_a_small_synthetic_trace(tmp_path):
    spec = importlib.util.spec_from_file_location("analyzer_throughput", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    trace = tmp_path / "synthetic.jsonl"
    bench.generate(trace, 100_000)
    doc = analyze([trace])
    assert doc["trace"]["events"] > 90_000
    assert bench.check(doc) == []
    assert [f["details"]["resolved_by"] for f in doc["findings"] if f["kind"] == "deadlock"] == [None]
