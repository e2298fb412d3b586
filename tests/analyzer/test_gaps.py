"""Gaps of lost events (`dropped`, `resync`): holds across a gap are known exactly
from a resync, or else end at the gap, unknown when; no error rests on a hold
inferred across a gap, and a finding built on a hold opened in a gap says it is
partial. Synthetic traces (the recorder writes `resync` since the format addition)."""
from __future__ import annotations

from analyzer import analyze
from analyzer.report.sarif import to_sarif

from .conftest import kinds
from .tracebuilder import Trace


def _join_while_holding(gap: dict | None, lock_type: str = "threading.RLock"):
    """main takes `logging_lock` (line 10), then loses events (`gap`), then joins a
    worker that takes `logging_lock` before it ends. Returns (trace, lock, main)."""
    t = Trace()
    lock = t.lock("logging_lock", type=lock_type, line=3)
    t.acquire(t.main, lock, 10)
    if gap is not None:
        t.records.append({"ts": t.tick(), "th": t.main, **gap})
    w = t.thread("worker", t.main)
    t.acquire(w, lock, 20)
    t.release(w, lock)
    t.end(w)
    t.ev(t.main, w, "wait-begin", 30)
    t.ev(t.main, w, "wait-end", 30, outcome="ok")
    t.join(t.main, w)
    return t, lock


def _holds(path) -> list[tuple]:
    rows = []

    def grab(doc, con):
        rows.extend(con.execute(
            "SELECT actor, end_seq IS NULL, start_unknown, end_unknown, end_actor FROM holds ORDER BY seq").fetchall())

    analyze([path], on_result=grab, fail_on="never")
    return rows


def test_release_lost_in_a_dropped_gap_makes_no_wait_cycle(tmp_path):
    # CPython's test_logging: after a `dropped` record main's count of logging._lock stayed one too
    # high, and every later wait or join "while holding" it became a wait-cycle error
    t, _ = _join_while_holding({"k": "dropped", "count": 3})
    path = t.write(tmp_path / "t.jsonl")
    doc = analyze([path])
    assert not kinds(doc, "wait-cycle")
    assert [f for f in doc["findings"] if f["severity"] in ("critical", "error")] == []
    main_hold = _holds(path)[0]
    assert main_hold == (t.main, False, False, True, None)  # cut at the gap, unknown when


def test_same_trace_without_the_gap_is_a_wait_cycle(tmp_path):
    t, _ = _join_while_holding(None)
    [f] = kinds(analyze([t.write(tmp_path / "t.jsonl")]), "wait-cycle")
    assert f["severity"] == "error" and f["partial"] is False and f["partial_reason"] is None


def test_resync_that_says_the_lock_was_released_closes_the_hold(tmp_path):
    t = Trace()
    lock_id = 2  # the first id after MainThread
    t, lock = _join_while_holding({"k": "resync", "lost": 2, "since": 0, "locks": [
        {"obj": lock_id, "task": None, "acquired": 0, "released": 1}]})
    assert lock == lock_id
    path = t.write(tmp_path / "t.jsonl")
    assert not kinds(analyze([path]), "wait-cycle")
    assert _holds(path)[0] == (t.main, False, False, True, t.main)


def test_resync_that_does_not_list_the_lock_keeps_the_hold(tmp_path):
    # the thread lost events but did not touch the lock: the hold is known exactly, the cycle stands
    t, _ = _join_while_holding({"k": "resync", "lost": 5, "since": 0, "locks": []})
    path = t.write(tmp_path / "t.jsonl")
    [f] = kinds(analyze([path]), "wait-cycle")
    assert f["severity"] == "error" and f["partial"] is False
    assert _holds(path)[0] == (t.main, True, False, False, None)


def test_lock_acquired_in_a_gap_opens_a_hold_with_an_unknown_start(tmp_path):
    t = Trace()
    lock = t.lock("state", line=3)
    w = t.thread("worker", t.main)
    t.records.append({"k": "resync", "ts": t.tick(), "th": t.main, "lost": 4, "since": t.ts - 500,
                      "locks": [{"obj": lock, "task": None, "acquired": 1, "released": 0}]})
    t.ev(w, lock, "wait", 20)  # the worker needs it before it can end: it never gets it
    t.ev(t.main, w, "wait-begin", 30)  # main joins the worker while holding it: hung
    path = t.write(tmp_path / "t.jsonl", end=False)
    doc = analyze([path])
    [f] = kinds(doc, "wait-cycle")
    assert f["severity"] == "critical" and f["partial"] is True
    assert "gap of lost events" in f["partial_reason"]
    assert _holds(path) == [(t.main, True, True, False, None)]
    assert not kinds(doc, "potential-deadlock")


def test_self_deadlock_on_a_lock_taken_in_a_gap_is_partial(tmp_path):
    t = Trace()
    lock = t.lock("state", line=3)
    t.records.append({"k": "resync", "ts": t.tick(), "th": t.main, "lost": 1, "since": t.ts - 500,
                      "locks": [{"obj": lock, "task": None, "acquired": 1, "released": 0}]})
    t.ev(t.main, lock, "wait", 12)  # never ends
    doc = analyze([t.write(tmp_path / "t.jsonl", end=False)])
    [f] = kinds(doc, "self-deadlock")
    assert f["severity"] == "critical" and f["partial"] is True
    # SARIF, read by CI without the report, says so too
    [result] = [r for r in to_sarif(doc)["runs"][0]["results"] if r["ruleId"] == "self-deadlock"]
    assert result["properties"]["partial"] is True
    assert "Partial evidence: " in result["message"]["text"]
    assert "gap of lost events" in result["message"]["text"]


def test_wait_whose_outcome_was_lost_is_not_stalled(tmp_path):
    t = Trace()
    lock = t.lock("state", line=3)
    w = t.thread("worker", t.main)
    t.acquire(w, lock, 20)
    t.ev(t.main, lock, "wait", 12)
    t.records.append({"k": "dropped", "ts": t.tick(), "th": t.main, "count": 2})
    t.ev(t.main, t.main, "end")
    doc = analyze([t.write(tmp_path / "t.jsonl", end=False)])
    assert not kinds(doc, "stalled") and not kinds(doc, "deadlock")


def test_hold_opened_in_a_gap_is_held_by_later_requests_but_is_no_request(tmp_path):
    t = Trace()
    a, b = t.lock("a", line=3), t.lock("b", line=4)
    w = t.thread("worker", t.main)
    t.records.append({"k": "resync", "ts": t.tick(), "th": t.main, "lost": 1, "since": t.ts - 500,
                      "locks": [{"obj": a, "task": None, "acquired": 1, "released": 0}]})
    t.acquire(t.main, b, 12)  # main: a (taken in the gap) -> b
    t.release(t.main, b)
    t.release(t.main, a)
    t.nested(w, [b, a], [20, 21])  # worker: b -> a
    path = t.write(tmp_path / "t.jsonl")
    deps = []

    def grab(doc, con):
        names = dict(con.execute("SELECT lk, name FROM lock_classes").fetchall())
        deps.extend((names[lk], actor, sorted(names[h] for h in held)) for lk, actor, held in
                    con.execute("SELECT lk, actor, held FROM deps ORDER BY dep").fetchall())

    doc = analyze([path], on_result=grab)
    assert deps == [("b", t.main, ["a"]), ("a", w, ["b"])]  # (no request of a by main: it was lost)
    [f] = kinds(doc, "potential-deadlock")
    assert f["partial"] is True and "gap of lost events" in f["partial_reason"]


def test_dropped_count_next_to_a_resync_of_the_same_thread_defers_to_the_resync(tmp_path):
    # the writer's count and the thread's resync describe one loss: the hold is known exactly
    t, _ = _join_while_holding({"k": "resync", "lost": 3, "since": 0, "locks": []})
    at = next(i for i, r in enumerate(t.records) if r.get("k") == "resync")
    t.records.insert(at, {"k": "dropped", "ts": t.records[at]["ts"], "th": t.main, "count": 3})
    path = t.write(tmp_path / "t.jsonl")
    [f] = kinds(analyze([path]), "wait-cycle")
    assert f["severity"] == "error" and f["partial"] is False
    assert _holds(path)[0] == (t.main, True, False, False, None)


def test_process_wide_dropped_count_cuts_every_thread_without_a_resync(tmp_path):
    t, _ = _join_while_holding({"k": "dropped", "count": 3})
    del t.records[next(i for i, r in enumerate(t.records) if r.get("k") == "dropped")]["th"]
    path = t.write(tmp_path / "t.jsonl")
    assert not kinds(analyze([path]), "wait-cycle")
    assert _holds(path)[0][3] is True  # end_unknown
