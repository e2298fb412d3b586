"""End to end: real program, real recorder, real analyzer, exact findings.

Each catalogued scenario is run under ``lockscope run``, its trace analyzed with
``analyzer.analyze`` (default options: per-instance locks, 100 ms long-hold
threshold), and the findings compared with the catalog (see ``expect.py``):
every expected finding exactly once with its locks, sites and steps, nothing
else but tolerated consequences and ``hot-lock`` statistics — so the corrected
twins must come out with no deadlock-class finding at all. The committed
``sample_traces/`` must give the same answers.

While a finding kind has no rule on this branch yet, the scenarios that expect
it are strict xfails: they start counting as soon as the rule lands. Known
analyzer gaps are strict xfails too (``KNOWN_GAPS``).
"""
from __future__ import annotations

import json
import subprocess

import pytest

from analyzer import analyze
from analyzer.rules import all_rules

from . import catalog
from .expect import problems
from .recording import LOCKSCOPE, REPO

IMPLEMENTED = frozenset(kind for rule in all_rules() for kind in rule.KINDS)
#: Scenarios the analyzer is known to get wrong, with why (strict xfails: they fail
#: loudly once fixed, so the entry gets removed).
KNOWN_GAPS: dict[str, str] = {}


def _params() -> list:
    params = []
    for scenario in catalog.scenarios():
        pending = sorted({e.kind for e in scenario.expected} - IMPLEMENTED)
        reason = (f"no analyzer rule yet for {', '.join(pending)}" if pending
                  else KNOWN_GAPS.get(scenario.id))
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
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


@pytest.mark.parametrize(("scenario_id", "exit_code"),
                         [("lock_order_threads-bug", 1), ("lock_order_threads-fixed", 0)])
def test_command_line_on_a_recorded_run(scenario_id: str, exit_code: int, recorded,
                                        tmp_path) -> None:
    """`lockscope analyze TRACE --json F` as CI runs it: exit 1 on the bug, 0 on its twin."""
    scenario = catalog.by_id(scenario_id)
    out = tmp_path / "findings.json"
    proc = subprocess.run([*LOCKSCOPE, "analyze", str(recorded(scenario).trace), "--json", str(out),
                           "--sarif", str(tmp_path / "findings.sarif"), "--quiet"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == exit_code, proc.stderr
    assert_findings(scenario, json.loads(out.read_text(encoding="utf-8")))
    sarif = json.loads((tmp_path / "findings.sarif").read_text(encoding="utf-8"))
    results = sarif["runs"][0]["results"]
    assert len([r for r in results if r.get("level") == "error"]) == exit_code
