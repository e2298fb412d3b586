"""One bug, one finding (analyzer/fold.py) on the committed sample traces: where one bug
gave several findings, one is the main finding and the others are folded under it,
in the JSON, the terminal, the HTML, SARIF and the exit status."""
from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from analyzer.analysis import failing
from analyzer.report import html, sarif, terminal

from . import catalog

BY_ID = {s.id: s for s in catalog.scenarios()}

# (id, kind, folded_into) of every finding of each sample trace.
EXPECTED = {
    "busy_service-ok": [("F1", "hot-lock", None)],
    "cache_reentry-bug": [("F1", "acquire-timeout", None), ("F2", "long-hold", "F1"), ("F3", "hot-lock", "F1")],
    "cache_reentry-fixed": [],
    "deadlock_async-bug": [("F1", "deadlock", None), ("F2", "held-across-await", "F1"),
                           ("F3", "held-across-await", "F1"), ("F4", "long-hold", "F1"),
                           ("F5", "long-hold", "F1"), ("F6", "hot-lock", "F1"), ("F7", "hot-lock", "F1")],
    "deadlock_async-fixed": [],
    "deadlock_threads-bug": [("F1", "deadlock", None), ("F2", "hot-lock", "F1"), ("F3", "hot-lock", "F1")],
    "deadlock_threads-fixed": [],
    "dining_philosophers-bug": [("F1", "potential-deadlock", None)],
    "dining_philosophers-fixed": [("F1", "hot-lock", None), ("F2", "hot-lock", None), ("F3", "hot-lock", None)],
    "event_under_lock_async-bug": [("F1", "wait-cycle", None), ("F2", "held-across-await", "F1"),
                                   ("F3", "long-hold", "F1"), ("F4", "hot-lock", "F1")],
    "event_under_lock_async-fixed": [],
    "guarded_inversion-gate": [("F1", "guarded-cycle", None)],
    "guarded_inversion-one_thread": [("F1", "guarded-cycle", None)],
    "guarded_inversion-start_join": [("F1", "guarded-cycle", None)],
    "guarded_inversion-event": [("F1", "guarded-cycle", None)],
    "held_across_await-bug": [("F1", "held-across-await", None), ("F2", "long-hold", "F1"),
                              ("F3", "hot-lock", "F1")],
    "held_across_await-fixed": [],
    "join_under_lock_threads-bug": [("F1", "wait-cycle", None), ("F2", "long-hold", "F1"),
                                    ("F3", "hot-lock", "F1")],
    "join_under_lock_threads-fixed": [],
    "keyed_locks-bug": [("F1", "potential-deadlock", None)],
    "keyed_locks-fixed": [("F1", "hot-lock", None), ("F2", "hot-lock", None), ("F3", "hot-lock", None)],
    "lock_order_async-bug": [("F1", "potential-deadlock", None)],
    "lock_order_async-fixed": [],
    "lock_order_threads-bug": [("F1", "potential-deadlock", None)],
    "lock_order_threads-fixed": [],
    # the long hold made the timed acquire give up: the long-hold is the main finding
    "lock_timeout-bug": [("F1", "acquire-timeout", "F2"), ("F2", "long-hold", None), ("F3", "hot-lock", "F2")],
    "lock_timeout-fixed": [("F1", "hot-lock", None)],
    "slow_hold_threads-bug": [("F1", "long-hold", None), ("F2", "hot-lock", "F1")],
    "slow_hold_threads-fixed": [],
    "stuck_waiter-bug": [("F1", "stalled", None)],
    "stuck_waiter-fixed": [],
    "thread_lock_in_async-bug": [("F1", "held-across-await", None), ("F2", "acquire-timeout", "F1"),
                                 ("F3", "long-hold", "F1"), ("F4", "hot-lock", "F1")],
    "thread_lock_in_async-fixed": [],
}
FOLDING = sorted(k for k, v in EXPECTED.items() if any(folded for _, _, folded in v))


def test_every_sample_is_listed() -> None:
    assert set(EXPECTED) == set(BY_ID)


@pytest.mark.parametrize("sid", sorted(EXPECTED))
def test_findings_folded_under_their_main_finding(sample_report, sid: str) -> None:
    doc = sample_report(BY_ID[sid])
    assert [(f["id"], f["kind"], f["folded_into"]) for f in doc["findings"]] == EXPECTED[sid]
    for f in doc["findings"]:
        assert f["related"] == [g["id"] for g in doc["findings"] if g["folded_into"] == f["id"]]
    mains = [f for f in doc["findings"] if not f["folded_into"]]
    assert doc["folded"] == len(doc["findings"]) - len(mains)
    assert sum(doc["summary"].values()) == len(mains)


@pytest.mark.parametrize("sid", FOLDING)
def test_a_folded_finding_shares_a_hold_or_wait_with_its_main_one(sample_report, sid: str) -> None:
    findings = {f["id"]: f for f in sample_report(BY_ID[sid])["findings"]}
    for f in findings.values():
        if f["folded_into"]:
            main = findings[f["folded_into"]]
            assert set(f["about"]) & set(main["about"]), (f["id"], main["id"])
            assert ["critical", "error", "warning", "info"].index(main["severity"]) <= \
                ["critical", "error", "warning", "info"].index(f["severity"])


def test_fail_on_counts_main_findings_only(sample_report) -> None:
    doc = sample_report(BY_ID["thread_lock_in_async-bug"])
    assert [f["id"] for f in failing(doc, "info")] == ["F1"]
    assert [f["id"] for f in failing(doc, "error")] == ["F1"]
    doc = sample_report(BY_ID["lock_timeout-bug"])
    assert [f["id"] for f in failing(doc, "warning")] == ["F2"]


def _terminal(doc: dict) -> str:
    out = io.StringIO()
    terminal.render(doc, Console(file=out, width=200, color_system=None))
    return out.getvalue()


def test_terminal_shows_folded_findings_as_one_line_under_the_main_one(sample_report) -> None:
    text = _terminal(sample_report(BY_ID["event_under_lock_async-bug"]))
    also = [ln for ln in text.splitlines() if "also:" in ln]
    assert len(also) == 1
    # (the times are the committed recording's: regenerating it moves them by a ms or so)
    assert re.fullmatch(r"also: 'state' held across an await \(F2 held-across-await\); 'state' held "
                        r"5\d\d ms \(F3 long-hold\); 'state' contended 1 time, 4\d\d ms waited in all "
                        r"\(F4 hot-lock\)", also[0].strip(" │")), also[0]
    assert "F2 warning" not in text and "F3 warning" not in text  # no panel of their own
    assert "1 finding(s): 1 critical (and 3 folded under them)" in text


def test_sarif_reports_main_findings_with_the_folded_sites(sample_report) -> None:
    doc = sample_report(BY_ID["lock_timeout-bug"])
    results = sarif.to_sarif(doc)["runs"][0]["results"]
    assert [(r["ruleId"], r["properties"]["lockscopeId"], r["properties"]["related"]) for r in results] == \
        [("long-hold", "F2", ["F1", "F3"])]
    related = [loc["message"]["text"] for loc in results[0]["relatedLocations"]]
    assert related == ["F1 acquire-timeout: an acquire of 'db' gave up after 100 ms "
                       "(tests/scenarios/lock_timeout_bug.py:40)"]
    assert "Also: an acquire of 'db' gave up after 100 ms (F1 acquire-timeout)" in results[0]["message"]["text"]


def test_html_shows_one_article_per_main_finding(sample_report) -> None:
    page = html.render(sample_report(BY_ID["deadlock_async-bug"]), plotlyjs="cdn")
    assert page.count('<article class="finding') == 1
    assert "Findings (1)" in page
    assert page.count('<p class="also">') == 1
    assert "6 folded findings about the same holds and waits" in page
    for fid in ("F2", "F3", "F4", "F5", "F6", "F7"):
        assert f'<div class="folded-finding" id="{fid}">' in page


def test_samples_without_folding_render_as_before(sample_report) -> None:
    doc = sample_report(BY_ID["dining_philosophers-fixed"])
    assert "also:" not in _terminal(doc)
    assert [r["properties"]["lockscopeId"] for r in sarif.to_sarif(doc)["runs"][0]["results"]] == ["F1", "F2", "F3"]
