"""End to end: real program, real recorder, real analyzer, exact findings.

Each catalogued scenario is run under ``lockscope run``, its trace analyzed with
``analyzer.analyze`` (default options: per-instance locks, 100 ms long-hold
threshold), and the findings compared with the catalog (see ``expect.py``):
every expected finding exactly once with its locks, sites and steps, nothing
else but tolerated consequences and ``hot-lock`` statistics — so the corrected
twins must come out with no deadlock-class finding at all. The committed
``sample_traces/`` must give the same answers.

While a finding kind has no rule on this branch yet, the scenarios that expect
it are strict xfails: they start counting as soon as the rule lands.
"""
from __future__ import annotations

import pytest

from analyzer import analyze
from analyzer.rules import all_rules

from . import catalog
from .expect import problems

IMPLEMENTED = frozenset(kind for rule in all_rules() for kind in rule.KINDS)


def _params() -> list:
    params = []
    for scenario in catalog.scenarios():
        pending = sorted({e.kind for e in scenario.expected} - IMPLEMENTED)
        marks = [pytest.mark.xfail(reason=f"no analyzer rule yet for {', '.join(pending)}",
                                   strict=True)] if pending else []
        params.append(pytest.param(scenario, id=scenario.id, marks=marks))
    return params


def assert_findings(scenario: catalog.Scenario, doc: dict) -> None:
    assert doc["trace"]["corrupt_lines"] == 0
    found = problems(scenario, doc["findings"])
    assert not found, f"{scenario.id}:\n  " + "\n  ".join(found)


@pytest.mark.parametrize("scenario", _params())
def test_recorded_run_gives_the_catalogued_findings(scenario: catalog.Scenario, recorded) -> None:
    run = recorded(scenario)
    assert run.returncode == scenario.exit_code, run.stderr
    assert_findings(scenario, analyze([str(run.trace)]))


@pytest.mark.parametrize("scenario", _params())
def test_committed_sample_gives_the_catalogued_findings(scenario: catalog.Scenario,
                                                        sample_report) -> None:
    assert_findings(scenario, sample_report(scenario))
