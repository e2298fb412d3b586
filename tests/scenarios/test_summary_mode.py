"""Summary mode finds what full mode finds: every catalogued scenario is recorded in
both modes (``lockscope run --mode summary``) and the analyzer's deadlock-class
findings (potential-deadlock, deadlock, self-deadlock, wait-cycle) are compared by
kind, severity and lock names."""
from __future__ import annotations

import pytest

from . import catalog
from .recording import record
from .tracecheck import assert_valid_trace

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
    records = assert_valid_trace(summary.trace)
    assert records[0]["settings"]["mode"] == "summary"
    full_doc = analyze([str(full.trace)])
    summary_doc = analyze([str(summary.trace)])
    assert summary_doc["trace"]["unknown_records"] == 0
    assert deadlock_findings(summary_doc) == deadlock_findings(full_doc)
    # the lock statistics come from the summary's histograms: every hold of each
    # named lock is counted (about as often as in the full run: how often a
    # Condition's waiter wakes and takes its lock again depends on timing)
    named = {s["name"]: s for s in full_doc["locks"] if s["name"]}
    for stats in summary_doc["locks"]:
        if stats["name"] in named:
            full_n = named[stats["name"]]["acquisitions"]
            assert abs(stats["acquisitions"] - full_n) <= 1 + full_n // 10, (stats["name"], stats, full_n)
