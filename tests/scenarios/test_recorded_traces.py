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
from .recording import REPO
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


def _lockscope_frame(file: str) -> bool:
    """A frame of lockscope itself: recorder/, its start-up hook, runpy (how `lockscope
    run` starts the program)."""
    return (file.startswith(str(REPO / "recorder")) or file.endswith("lockscope_startup.py")
            or file in ("<frozen runpy>",) or file.endswith("/runpy.py"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_stacks_are_recorded_by_default_without_lockscope_frames(scenario: catalog.Scenario,
                                                                 recorded) -> None:
    records = read_trace(recorded(scenario).trace)
    assert records[0]["settings"]["stacks"] == 8
    sites = [r for r in records if r["k"] == "site"]
    used = {r["site"] for r in records if r["k"] == "ev" and r.get("site")}
    for s in sites:
        assert not _lockscope_frame(s["file"]), s
        for file, _line, _func in s.get("stack", []):
            assert not _lockscope_frame(file), s
    # Every site where the program itself did something has its stack, starting at it.
    with_stack = [s for s in sites if s["id"] in used and scenario.file in s["file"]]
    assert with_stack
    for s in with_stack:
        assert s["stack"][0] == [s["file"], s["line"], s["func"]], s
