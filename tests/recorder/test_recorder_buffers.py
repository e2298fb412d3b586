"""Event buffers: one memory bound for all threads together, the writer woken early
when they fill, and ``resync`` records that say what a thread holds after a loss."""

from __future__ import annotations

import threading
import time

import recorder
from recorder import _core


def _stall_writer():
    """Hold the writer's drain lock: nothing leaves the buffers until released."""
    sink = recorder._sink
    assert sink._io.acquire(True, 5)
    return sink._io


def _run(n: int, target, *args) -> None:
    threads = [threading.Thread(target=target, args=(k, *args)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive()


def test_a_lone_thread_after_a_burst_of_threads_gets_the_whole_budget(rec):
    """Issue 14: after 600 threads had registered, a lone thread's share stayed 1/1024
    of the budget (976 events at the default budget): it lost 9,024 of 10,000."""
    rec.start(flush_interval=3600)
    lock = threading.Lock()

    def short(k: int) -> None:
        with lock:
            pass

    _run(600, short)
    recorder.flush()  # the burst is written; its threads are gone

    def lone(k: int) -> None:
        for _ in range(5_000):
            with lock:
                pass

    io = _stall_writer()
    try:
        _run(1, lone)
    finally:
        io.release()
    trace = rec.stop()
    assert not [r for r in trace.records if r["k"] == "dropped"]
    lone_th = [t["id"] for t in trace.objects("thread") if t["name"] == "Thread-601 (lone)"]
    assert len(lone_th) == 1
    assert trace.ops(lock._ls_id, lone_th[0]) == {"acquire": 5_000, "release": 5_000}


def test_the_budget_bounds_all_threads_together(rec):
    """8 threads against a stalled writer: together they buffer the budget (plus at
    most the small per-thread minimum each), and every other event is counted lost."""
    budget = 4096
    rec.start(max_buffer_events=budget, flush_interval=3600)
    locks = [threading.Lock() for _ in range(8)]
    states = []

    def work(k: int) -> None:
        states.append(_core.current_state())
        for _ in range(2_000):
            with locks[k]:
                pass

    io = _stall_writer()
    try:
        _run(8, work)
        buffered = sum(len(st.buf) for st in states)
        assert budget <= buffered <= budget + 8 * _core.MIN_THREAD_CAP
        assert _core.buffered() == sum(len(st.buf) for st in _core.states)
        # (each thread's events: 4,000 on its lock and its ``end``)
        assert sum(st.dropped for st in states) == 8 * 4_001 - buffered
    finally:
        io.release()
    trace = rec.stop()
    kept = sum(len(trace.evs(lk._ls_id)) for lk in locks)
    lost = sum(r["count"] for r in trace.records if r["k"] == "dropped")
    ends = len(trace.evs(op="end"))
    assert kept + ends + lost == 8 * 4_001
    assert kept + ends == buffered


def test_the_writer_is_woken_when_the_buffers_fill(rec):
    """With a flush interval of an hour, filling an eighth of the budget wakes the
    writer: a thread that waits for its buffer to empty now and then loses nothing."""
    budget = 8_000
    rec.start(max_buffer_events=budget, flush_interval=3600)
    lock = threading.Lock()
    st = _core.current_state()
    drained_every_time = True
    for _ in range(20):
        for _ in range(budget // 8):  # 2 events each: a quarter of the budget
            with lock:
                pass
        deadline = time.monotonic() + 10
        while len(st.buf) > budget // 8 and time.monotonic() < deadline:
            time.sleep(0.001)
        drained_every_time &= len(st.buf) <= budget // 8
    trace = rec.stop()
    assert drained_every_time
    assert not [r for r in trace.records if r["k"] == "dropped"]
    assert trace.ops(lock._ls_id) == {"acquire": 20 * budget // 8, "release": 20 * budget // 8}
