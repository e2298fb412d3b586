"""analyzer/fold.py on hand-made findings: who is main, what is folded, and never a bridge."""
from __future__ import annotations

from analyzer.findings import Finding
from analyzer.fold import MAX_ABOUT, fold, hold_key, keys, wait_key


def finding(kind: str, about: list[str], severity: str = "", **details) -> Finding:
    return Finding(kind=kind, title=kind, message="", fingerprint_parts=[], severity=severity,
                   about=about, details=details)


H1, H2, W1 = hold_key("r", 1, 10), hold_key("r", 2, 20), wait_key("r", 11)


def test_lesser_findings_fold_under_the_most_severe_one_about_the_same_hold() -> None:
    found = [finding("hot-lock", [W1, H1]), finding("long-hold", [H1]),
             finding("wait-cycle", [H1, W1], severity="critical"), finding("long-hold", [H2])]
    assert fold(found) == {0: 2, 1: 2}


def test_kind_priority_breaks_ties_within_a_severity() -> None:
    found = [finding("long-hold", [H1]), finding("acquire-timeout", [W1, H1]), finding("held-across-await", [H1])]
    assert fold(found) == {0: 2, 1: 2}


def test_a_recursive_acquire_timeout_is_the_main_finding_of_its_long_hold() -> None:
    found = [finding("long-hold", [H1]), finding("acquire-timeout", [W1, H1], recursive=True)]
    assert fold(found) == {0: 1}
    found = [finding("long-hold", [H1]), finding("acquire-timeout", [W1, H1], recursive=False)]
    assert fold(found) == {1: 0}


def test_a_lesser_finding_never_joins_two_main_findings_into_one() -> None:
    found = [finding("held-across-await", [H1]), finding("held-across-await", [H2]),
             finding("hot-lock", [H1, H2])]
    assert fold(found) == {2: 0}


def test_findings_about_nothing_are_never_folded() -> None:
    found = [finding("potential-deadlock", []), finding("guarded-cycle", []), finding("hot-lock", [H1])]
    assert fold(found) == {}


def test_keys_are_unique_and_bounded() -> None:
    assert keys([H1, H1, W1]) == [H1, W1]
    assert len(keys(hold_key("r", 1, i) for i in range(10 * MAX_ABOUT))) == MAX_ABOUT


def test_the_also_line_writes_durations_as_its_report_does() -> None:
    """The one-line summary of folded findings takes the report's duration format:
    the HTML report wrote "gave up after 5.1 ms" above "the longest wait was
    5.10 ms" for the same wait (its test failed whenever a wait came out at x.x0 ms)."""
    from analyzer.fold import also_line
    from analyzer.report.html.format import duration

    main = {"id": "F1", "kind": "long-hold", "related": ["F2"]}
    folded = {"id": "F2", "kind": "acquire-timeout", "locks": [{"label": "cache"}],
              "details": {"max_wait_ns": 5_100_000}}
    by_id = {"F1": main, "F2": folded}
    assert also_line(main, by_id) == "an acquire of 'cache' gave up after 5.1 ms (F2 acquire-timeout)"
    assert also_line(main, by_id, duration) == \
        "an acquire of 'cache' gave up after 5.10 ms (F2 acquire-timeout)"
