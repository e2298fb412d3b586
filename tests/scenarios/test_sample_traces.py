"""The committed sample traces cover the catalog, are valid, small, and not stale.

Regenerate them with ``python sample_traces/regenerate.py`` after changing a
scenario or the recorder.
"""
from __future__ import annotations

import pytest

from . import catalog
from .recording import REPO
from .sample_index import index_markdown
from .tracecheck import ASYNCIO_TRACED, assert_catalogued_events, assert_valid_trace

SAMPLES = REPO / "sample_traces"
MAX_BYTES = 256 * 1024
SCENARIOS = catalog.scenarios()


def test_one_sample_per_scenario() -> None:
    assert {p.name for p in SAMPLES.glob("*.jsonl")} == {f"{s.id}.jsonl" for s in SCENARIOS}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_sample_trace_is_valid_and_current(scenario: catalog.Scenario) -> None:
    path = SAMPLES / f"{scenario.id}.jsonl"
    assert path.stat().st_size <= MAX_BYTES, f"{path.name} is too big to commit"
    records = assert_valid_trace(path)
    assert records[0]["argv"] == [f"tests/scenarios/{scenario.file}"]
    sites = [r["file"] for r in records if r["k"] == "site"]
    assert not [f for f in sites if f.startswith("/") and "/tests/scenarios/" in f], \
        "scenario sites are recorded relative to the repository root"
    if scenario.api == "asyncio" and not ASYNCIO_TRACED:
        return  # recorded before asyncio tracing existed: nothing asyncio to look for
    assert_catalogued_events(scenario, records)


def test_index_is_current(sample_report) -> None:
    """sample_traces/README.md says what the analyzer reports on the committed traces."""
    expected = index_markdown({s.id: sample_report(s) for s in SCENARIOS})
    actual = (SAMPLES / "README.md").read_text(encoding="utf-8")
    assert actual == expected, "run: python sample_traces/regenerate.py --index"
