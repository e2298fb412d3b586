"""The matcher the end-to-end tests use, checked on hand-written findings (issue 4's JSON shape)."""
from __future__ import annotations

import copy

from . import catalog
from .expect import problems


def lock(name: str, site: catalog.Site) -> dict:
    return {"id": 1, "name": name, "type": "threading.Lock",
            "created_at": f"tests/scenarios/{site.file}:{site.line}"}


def finding_for(scenario: catalog.Scenario, expected: catalog.Expected) -> dict:
    """A finding as the analyzer documents it, built from the catalog's expectation."""
    steps = [{"actor": {"kind": "thread", "name": step.actor},
              "holds": [{"lock": "r/1", "name": h.lock,
                         "acquired_at": f"tests/scenarios/{h.at.file}:{h.at.line}"}
                        for h in step.held],
              "requests": {"lock": "r/2", "name": step.wants},
              "site": f"/checkout/tests/scenarios/{step.at.file}:{step.at.line}"}
             for step in expected.steps]
    in_steps = {site for step in expected.steps for site in (step.at, *[h.at for h in step.held])}
    extra_sites = [f"tests/scenarios/{s.file}:{s.line}" for s in expected.sites
                   if s not in in_steps]
    finding = {"id": "F1", "fingerprint": "abc", "kind": expected.kind, "severity": expected.severity,
            "title": "t", "message": f"{expected.resource or ''}",
            "locks": [lock(name, scenario.locks[name]) for name in expected.locks],
            "threads": [{"name": a} for a in expected.actors], "steps": steps,
            "sites": extra_sites, "count": 1,
            "details": {"reason": expected.reason} if expected.reason else {}}
    if expected.guard:
        finding["message"] += f" under the common gate lock '{expected.guard}'"
    return finding


def findings_for(scenario_id: str) -> tuple[catalog.Scenario, list[dict]]:
    scenario = catalog.by_id(scenario_id)
    findings = [finding_for(scenario, e) | {"id": f"F{i}"} for i, e in enumerate(scenario.expected, 1)]
    for e, f in zip(scenario.expected, findings, strict=True):
        f["folded_into"] = next((g["id"] for g in findings if g["kind"] == e.folded_under), None)
    return scenario, findings


def test_exact_findings_match_every_catalogued_scenario() -> None:
    for scenario in catalog.scenarios():
        _, findings = findings_for(scenario.id)
        assert problems(scenario, findings) == [], scenario.id


def test_missing_finding() -> None:
    scenario, _ = findings_for("lock_order_threads-bug")
    assert problems(scenario, []) == ["missing potential-deadlock on ['sessions', 'users']"]


def test_missing_site_and_wrong_severity() -> None:
    scenario, findings = findings_for("lock_order_threads-bug")
    wrong = copy.deepcopy(findings)
    wrong[0]["steps"][1]["site"] = "tests/scenarios/lock_order_threads_bug.py:99"
    assert "does not cite lock_order_threads_bug.py:43" in problems(scenario, wrong)[0]
    wrong = copy.deepcopy(findings)
    wrong[0]["severity"] = "warning"
    assert "severity warning, expected error" in problems(scenario, wrong)[0]


def test_duplicates_and_unexpected_kinds() -> None:
    scenario, findings = findings_for("deadlock_threads-bug")
    assert "reported 2 times" in problems(scenario, findings * 2)[0]
    potential = dict(findings[0], kind="potential-deadlock", severity="error")
    assert problems(scenario, [*findings, potential])[0].startswith("unexpected potential-deadlock")


def test_tolerated_and_statistics_are_accepted() -> None:
    scenario, findings = findings_for("deadlock_threads-bug")
    long_hold = {"kind": "long-hold", "severity": "warning", "locks": findings[0]["locks"][:1],
                 "folded_into": findings[0]["id"]}
    hot = {"kind": "hot-lock", "severity": "info", "locks": findings[0]["locks"][:1]}
    assert problems(scenario, [*findings, long_hold, hot]) == []


def test_tolerated_findings_must_be_folded_under_the_bug() -> None:
    scenario, findings = findings_for("deadlock_threads-bug")
    long_hold = {"kind": "long-hold", "severity": "warning", "locks": findings[0]["locks"][:1]}
    assert problems(scenario, [*findings, long_hold]) == [
        "long-hold/warning locks=['sessions'] sites=[] is not folded under the finding of its bug"]


def test_expected_folding() -> None:
    scenario, findings = findings_for("lock_timeout-bug")
    assert [(f["kind"], f["folded_into"]) for f in findings] == [("acquire-timeout", "F2"), ("long-hold", None)]
    unfolded = [dict(f, folded_into=None) for f in findings]
    assert problems(scenario, unfolded) == [
        "acquire-timeout on ['db'] folded under nothing, expected under long-hold"]


def test_fixed_twin_must_be_quiet() -> None:
    scenario = catalog.by_id("held_across_await-fixed")
    hot = {"kind": "hot-lock", "severity": "info", "locks": []}
    assert problems(scenario, [hot]) == []
    long_hold = {"kind": "long-hold", "severity": "warning",
                 "locks": [{"name": "config", "created_at": "x.py:1"}]}
    assert problems(scenario, [long_hold])[0].startswith("unexpected long-hold")


def test_wrong_actor_or_creation_line() -> None:
    scenario, findings = findings_for("dining_philosophers-bug")
    wrong = copy.deepcopy(findings)
    wrong[0]["threads"] = [{"name": "philosopher-0"}, {"name": "philosopher-1"}]
    for step in wrong[0]["steps"]:
        step["actor"]["name"] = "philosopher-0"
    assert "does not name 'philosopher-1'" in problems(scenario, wrong)[0] or \
        "does not name 'philosopher-2'" in problems(scenario, wrong)[0]
    wrong = copy.deepcopy(findings)
    wrong[0]["locks"][0]["created_at"] = "tests/scenarios/dining_philosophers_bug.py:1"
    assert "lock 'fork-0' created at" in problems(scenario, wrong)[0]


def test_steps_reason_and_gate_are_checked() -> None:
    scenario, findings = findings_for("guarded_inversion-gate")
    assert problems(scenario, findings) == []
    wrong = copy.deepcopy(findings)
    wrong[0]["steps"][0]["holds"][0]["name"] = "other"  # gate not held
    assert "no step where login holds gate" in problems(scenario, wrong)[0]
    wrong = copy.deepcopy(findings)
    wrong[0]["details"]["reason"] = "ordered"
    assert "reason 'ordered', expected 'gate-lock'" in problems(scenario, wrong)[0]
    wrong = copy.deepcopy(findings)
    wrong[0]["message"] = ""
    assert "does not name the gate lock" in problems(scenario, wrong)[0]
