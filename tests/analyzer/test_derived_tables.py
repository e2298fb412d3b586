"""The derived tables (holds, waits, deps) on exact hand-built interleavings,
including the shapes that leave the fast path: a lock released by another thread,
a semaphore taken twice by one thread, RLock nesting, locks released out of order."""
from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import analyze
from analyzer import load as loader

from .tracebuilder import Trace

SAMPLES = Path(__file__).resolve().parents[2] / "sample_traces"


def _tables(path, **kw) -> dict[str, list[tuple]]:
    out = {}

    def grab(doc, con):
        out["holds"] = con.execute(
            "SELECT l.name, h.actor, h.seq, h.end_seq FROM holds h JOIN locks l ON l.run = h.run AND l.id = h.obj "
            "ORDER BY h.seq").fetchall()
        out["waits"] = con.execute(
            "SELECT l.name, w.actor, w.seq, w.end_op::VARCHAR, w.end_seq FROM waits w "
            "JOIN locks l ON l.run = w.run AND l.id = w.obj ORDER BY w.seq").fetchall()
        names = dict(con.execute("SELECT lk, name FROM lock_classes").fetchall())
        out["deps"] = [(names[lk], actor, [names[h] for h in held], n, failed) for lk, actor, held, n, failed in
                       con.execute("SELECT lk, actor, held, n, failed FROM deps ORDER BY dep").fetchall()]

    analyze([path], on_result=grab, fail_on="never", **kw)
    return out


def test_holds_pair_acquire_and_release_per_thread_and_lock(tmp_path):
    t = Trace()
    a, b = t.thread("a", t.main), t.thread("b", t.main)
    plain, handoff = t.lock("plain"), t.lock("handoff")
    sem = t.lock("sem", type="threading.Semaphore", value=1)
    rl = t.lock("rl", type="threading.RLock")
    for _ in range(2):                       # plain: alternating, the usual case
        t.acquire(a, plain, 10)
        t.release(a, plain)
    t.acquire(a, handoff, 11)                # handoff: taken by a, released by b
    t.release(b, handoff)
    t.acquire(a, sem, 12)                    # sem: taken twice by a, released twice
    t.acquire(a, sem, 13)
    t.release(a, sem)
    t.release(a, sem)
    t.acquire(a, rl, 14)                     # rl: nested twice, one hold
    t.acquire(a, rl, 15)
    t.release(a, rl)
    t.release(a, rl)
    tables = _tables(t.write(tmp_path / "t.jsonl"))
    holds = [(name, actor) + ((end - seq) if end else None,) for name, actor, seq, end in tables["holds"]]
    # (lock, actor, events from acquire to release; None = never released). A Lock is paired per
    # lock: b's release ends the hold a took (hand-off)
    assert holds == [("plain", a, 1), ("plain", a, 1), ("handoff", a, 1),
                     ("sem", a, 2), ("sem", a, 2), ("rl", a, 3)]


def test_waits_end_with_the_waiters_next_operation_on_the_lock(tmp_path):
    t = Trace()
    a, b = t.thread("a", t.main), t.thread("b", t.main)
    lock = t.lock("lock")
    t.acquire(a, lock, 10)
    t.ev(b, lock, "wait", 20)
    t.release(a, lock)
    t.ev(b, lock, "acquire", 20)             # the wait ends with the acquire
    t.release(b, lock)
    t.acquire(a, lock, 11)
    t.ev(b, lock, "wait", 21)
    t.ev(b, lock, "timeout")                 # ... with a timeout
    t.ev(b, lock, "wait", 22)                # ... never
    tables = _tables(t.write(tmp_path / "t.jsonl", end=False))
    assert [(n, actor, end_op) for n, actor, _seq, end_op, _end in tables["waits"]] == [
        ("lock", b, "acquire"), ("lock", b, "timeout"), ("lock", b, None)]


def test_held_sets_follow_out_of_order_releases(tmp_path):
    t = Trace()
    a = t.thread("a", t.main)
    x, y, z = t.lock("x"), t.lock("y"), t.lock("z")
    for _ in range(3):
        t.acquire(a, x, 10)
        t.acquire(a, y, 11)                  # holds x
        t.release(a, x)
        t.acquire(a, z, 12)                  # holds y only: x was released first
        t.release(a, z)
        t.release(a, y)
    t.acquire(a, z, 13)                      # holds nothing: no dependency
    t.release(a, z)
    tables = _tables(t.write(tmp_path / "t.jsonl"))
    assert tables["deps"] == [("y", a, ["x"], 3, 0), ("z", a, ["y"], 3, 0)]


def test_a_failed_wait_is_a_request_and_the_lock_itself_is_not_held(tmp_path):
    t = Trace()
    a, b = t.thread("a", t.main), t.thread("b", t.main)
    x, y = t.lock("x"), t.lock("y")
    t.acquire(b, y, 20)
    t.acquire(a, x, 10)
    t.ev(a, y, "wait", 11)
    t.ev(a, y, "timeout")                    # a: holds x, went for y and gave up
    t.ev(a, x, "wait", 12)                   # a: waits for x it holds (self-deadlock, not an edge)
    tables = _tables(t.write(tmp_path / "t.jsonl", end=False))
    assert tables["deps"] == [("y", a, ["x"], 1, 1)]


def _derived(trace: Path, concurrent: bool, **kw) -> dict[str, list[tuple]]:
    con = loader.connect()
    try:
        loader.load(con, [trace])
        seen = []
        loader.derive(con, alongside=(lambda: seen.append(con.execute("SELECT count(*) FROM holds").fetchone()))
                      if concurrent else None, **kw)
        assert bool(seen) == concurrent
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ("holds", "waits", "deps")}
    finally:
        con.close()


@pytest.mark.parametrize("mode", [{"group_by": "site"}, {"actors": "thread"}, {"actors": "segment"}, {}])
@pytest.mark.parametrize("name", ["dining_philosophers-bug", "lock_order_async-bug", "deadlock_threads-bug"])
def test_dependencies_built_alongside_equal_the_sequential_build(name, mode):
    """derive() builds deps on a second connection while `alongside` runs: same tables as one after the other."""
    trace = SAMPLES / f"{name}.jsonl"
    sequential, concurrent = _derived(trace, False, **mode), _derived(trace, True, **mode)
    # (with --group-by site the philosophers' forks are one class: no order edges)
    assert sequential["holds"] and (sequential["deps"] or mode.get("group_by") == "site")
    assert concurrent == sequential
