"""Every scenario run under the real recorder leaves one valid trace with the intended events.

The trace must parse line by line, every record must match
``docs/trace-format.schema.json``, definitions must precede their use, and the
locks and code sites the catalog expects findings on must be in it: named locks
created on the catalogued lines, and each step's acquires/waits done by the
named thread (or task) at the catalogued lines.
"""
from __future__ import annotations

import pytest

from . import catalog
from .tracecheck import ASYNCIO_TRACED, assert_catalogued_events, assert_valid_trace, read_trace

SCENARIOS = catalog.scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_recorder_writes_a_valid_trace(scenario: catalog.Scenario, recorded) -> None:
    run = recorded(scenario)
    assert run.returncode == scenario.exit_code, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    records = assert_valid_trace(run.trace)
    assert records[0]["argv"][0].endswith(scenario.file)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_trace_holds_the_catalogued_locks_and_sites(scenario: catalog.Scenario, recorded) -> None:
    if scenario.api == "asyncio" and not ASYNCIO_TRACED:
        pytest.skip("asyncio tracing (recorder._asyncio) has not landed yet")
    assert_catalogued_events(scenario, read_trace(recorded(scenario).trace))
