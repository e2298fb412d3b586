"""End to end: the wait-cycle and held-across-await scenarios, recorded under
``lockscope run`` and analyzed, report exactly what the catalog expects (and
their fixed twins stay quiet)."""
from __future__ import annotations

import pytest

import analyzer

from . import catalog
from .expect import problems

IDS = [f"{name}-{variant}" for name in ("event_under_lock_async", "join_under_lock_threads",
                                        "held_across_await", "thread_lock_in_async")
       for variant in ("bug", "fixed")]


@pytest.mark.parametrize("scenario_id", IDS)
def test_findings_match_the_catalog(scenario_id: str, recorded) -> None:
    scenario = catalog.by_id(scenario_id)
    run = recorded(scenario)
    assert run.returncode == scenario.exit_code, run.stderr
    doc = analyzer.analyze([str(run.trace)])
    assert problems(scenario, doc["findings"]) == []
    for expected in scenario.expected:
        [got] = [f for f in doc["findings"] if f["kind"] == expected.kind]
        if expected.kind == "wait-cycle":
            assert got["details"]["ended"] == expected.ended
            assert got["details"]["resource"]["name"] == expected.resource
            assert [s["actor"]["name"] for s in got["steps"]] == [s.actor for s in expected.steps]
            assert [s["site"] for s in got["steps"]] == [
                f"tests/scenarios/{s.at.file}:{s.at.line}" for s in expected.steps]
        if expected.kind == "held-across-await":
            assert got["details"]["waiters"] == expected.waiters
            assert got["details"]["holder"]["name"] == expected.actors[0]
