"""Summary mode finds what full mode finds: every catalogued scenario is recorded in
both modes (``lockscope run --mode summary``) and the analyzer's deadlock-class
findings (potential-deadlock, deadlock, self-deadlock, wait-cycle) are compared by
kind, severity and lock names."""
from __future__ import annotations

import pytest

from . import catalog
from .recording import record

COMPARED = ("potential-deadlock", "deadlock", "self-deadlock", "wait-cycle")


def deadlock_findings(doc: dict) -> list[tuple]:
    """(kind, severity, lock names) of the compared findings, sorted."""
    return sorted((f["kind"], f["severity"], tuple(sorted(lk["name"] or lk["id"] for lk in f["locks"])))
                  for f in doc["findings"] if f["kind"] in COMPARED)


@pytest.mark.parametrize("scenario", catalog.scenarios(), ids=lambda s: s.id)
def test_summary_mode_reports_the_same_deadlock_findings(scenario: catalog.Scenario, recorded, tmp_path) -> None:
    from analyzer import analyze

    full = recorded(scenario)
    summary = record(scenario, tmp_path / "summary", mode="summary")
    assert summary.returncode == full.returncode, summary.stderr
    header = summary.trace.read_text().split("\n", 1)[0]
    assert '"mode":"summary"' in header
    full_doc = analyze([str(full.trace)])
    summary_doc = analyze([str(summary.trace)])
    assert summary_doc["trace"]["unknown_records"] == 0
    assert deadlock_findings(summary_doc) == deadlock_findings(full_doc)
    # the lock statistics come from the summary's histograms: every hold is counted
    # (a scenario's own locks are taken the same number of times in every run)
    named = {s["name"]: s for s in full_doc["locks"] if s["name"]}
    for stats in summary_doc["locks"]:
        if stats["name"] in named and not {e.kind for e in scenario.expected} & {"deadlock", "self-deadlock"}:
            assert stats["acquisitions"] == named[stats["name"]]["acquisitions"], stats["name"]
