"""Summary traces: a lock dependency known only from its `dep` record (its
occurrences counted, none written in the files read, e.g. once earlier parts were
deleted) still gives its lock-order edge, with its site and the held lock's site."""
from __future__ import annotations

from analyzer import analyze

from .conftest import kinds
from .tracebuilder import Trace


def _dep(t: Trace, did: int, lock: int, line: int, held: list[tuple[int, int]], th: int,
         n: int = 1000) -> None:
    t.records.append({
        "k": "dep", "ts": t.tick(), "id": did, "obj": lock, "site": t.site(line),
        "held": [{"obj": h, "site": t.site(hl)} for h, hl in held], "n": n,
        "first": t.ts - 500_000, "last": t.ts, "actors": [{"th": th, "task": None}]})


def _cycle_as_counts_only(tmp_path, second_held: bool = True):
    t = Trace()
    t.records[0]["settings"] = {"mode": "summary"}
    a, b = t.lock("a"), t.lock("b")
    t1, t2 = t.thread("login", parent=t.main), t.thread("rename", parent=t.main)
    _dep(t, 1, a, 10, [], t1)
    _dep(t, 2, b, 11, [(a, 10)], t1)
    _dep(t, 3, b, 20, [], t2)
    _dep(t, 4, a, 21, [(b, 20)] if second_held else [], t2)
    return t.write(tmp_path / "summary.jsonl")


def test_a_cycle_seen_only_as_dependency_counts_is_a_potential_deadlock(tmp_path):
    doc = analyze([str(_cycle_as_counts_only(tmp_path))])
    (finding,) = kinds(doc, "potential-deadlock")
    assert sorted(lk["name"] for lk in finding["locks"]) == ["a", "b"]
    # each edge with its request's site and the site where the held lock was taken
    steps = [(st["holds"][0]["name"], st["holds"][0]["acquired_at"], st["requests"]["name"], st["site"],
              st["actor"]["name"], st["count"]) for st in finding["steps"]]
    assert sorted(steps) == [("a", "app.py:10", "b", "app.py:11", "login", 1000),
                             ("b", "app.py:20", "a", "app.py:21", "rename", 1000)]


def test_dependency_counts_without_a_cycle_give_no_finding(tmp_path):
    doc = analyze([str(_cycle_as_counts_only(tmp_path, second_held=False))])
    assert kinds(doc, "potential-deadlock") == []



def test_a_reentrant_acquire_counted_in_a_dep_record_is_no_lock_order_edge(tmp_path):
    """``rename`` takes a then b, then a again (an RLock it already holds): its
    `dep` record for that acquire lists a among the held locks. Like the same
    acquire in events (not an outermost request), it orders nothing: no b -> a
    edge, so no cycle with ``login``'s a -> b (test_logging's false summary-mode
    potential-deadlock on logging._lock and a handler's lock)."""
    t = Trace()
    t.records[0]["settings"] = {"mode": "summary"}
    a, b = t.lock("a", type="threading.RLock"), t.lock("b")
    t1, t2 = t.thread("login", parent=t.main), t.thread("rename", parent=t.main)
    _dep(t, 1, a, 10, [], t1)
    _dep(t, 2, b, 11, [(a, 10)], t1)
    _dep(t, 3, a, 20, [], t2)
    _dep(t, 4, b, 21, [(a, 20)], t2)
    _dep(t, 5, a, 22, [(a, 20), (b, 21)], t2)
    doc = analyze([str(t.write(tmp_path / "summary.jsonl"))])
    assert kinds(doc, "potential-deadlock") == []
