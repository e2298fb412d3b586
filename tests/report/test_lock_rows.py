"""Statistics rows: library locks fold into one line, except the ones a finding is about."""
from __future__ import annotations

from analyzer.report import lock_rows

LOCKS = [
    {"id": "1", "library": None, "acquisitions": 5, "contentions": 0, "wait_total_ns": 0, "hold_total_ns": 10},
    {"id": "2", "library": "concurrent.futures", "acquisitions": 7, "contentions": 1,
     "wait_total_ns": 805_000, "hold_total_ns": 20},
    {"id": "3", "library": "queue", "acquisitions": 9, "contentions": 0, "wait_total_ns": 0, "hold_total_ns": 30},
]


def test_library_locks_fold_into_one_line():
    shown, folded = lock_rows.split(LOCKS)
    assert [s["id"] for s in shown] == ["1"]
    assert folded["locks"] == 2 and folded["libraries"] == ["concurrent.futures", "queue"]
    assert lock_rows.fold_line(folded) == ("+ 2 library locks (concurrent.futures, queue): 16 acquisitions, "
                                           "1 wait (805 µs in all)")


def test_a_library_lock_a_finding_is_about_keeps_its_row():
    shown, folded = lock_rows.split(LOCKS, keep={"2"})
    assert [s["id"] for s in shown] == ["1", "2"]
    assert folded["locks"] == 1 and folded["libraries"] == ["queue"]


def test_all_locks_folds_nothing():
    shown, folded = lock_rows.split(LOCKS, all_locks=True)
    assert [s["id"] for s in shown] == ["1", "2", "3"] and folded is None
