"""Event buffers: one memory bound for all threads together, the writer woken early
when they fill, and ``resync`` records that say what a thread holds after a loss."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

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
    lone_th = [t["id"] for t in trace.objects("thread") if t["name"].endswith(" (lone)")]
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
        everyone = sum(len(st.buf) for st in _core.states)  # (with the main thread's)
        assert budget <= everyone <= budget + 9 * _core.MIN_THREAD_CAP
        assert _core.buffered() == everyone
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
    deadline = time.monotonic() + 20  # (for all rounds: never hangs)
    for _ in range(20):
        for _ in range(budget // 8):  # 2 events each: a quarter of the budget
            with lock:
                pass
        while len(st.buf) > budget // 8 and time.monotonic() < deadline:
            time.sleep(0.001)
        drained_every_time &= len(st.buf) <= budget // 8
    trace = rec.stop()
    assert drained_every_time
    assert not [r for r in trace.records if r["k"] == "dropped"]
    assert trace.ops(lock._ls_id) == {"acquire": 20 * budget // 8, "release": 20 * budget // 8}


def _held_from_trace(trace, th: int, ids: set[int]) -> Counter:
    """What thread ``th`` holds at the end of the trace, from its events and the
    ``resync`` records that close its gaps (only the locks in ``ids``)."""
    held: Counter = Counter()
    for r in trace.records:
        if r.get("th") != th:
            continue
        if r["k"] == "ev" and r["obj"] in ids and r["op"] in ("acquire", "release"):
            held[r["obj"]] += 1 if r["op"] == "acquire" else -1
        elif r["k"] == "resync":
            for lk in r["locks"]:
                if lk["obj"] in ids:
                    held[lk["obj"]] += lk["acquired"] - lk["released"]
    return +held


def test_resync_records_say_exactly_what_each_thread_holds_after_losses(rec):
    """4 threads do random nested lock work while the writer is alternately stalled
    (events are lost) and running (recording resumes, with a resync first); the
    recording stops while they hold locks, some of them in the middle of a gap.
    Events plus resync deltas give exactly what each thread holds."""
    rec.start(max_buffer_events=100, flush_interval=3600)
    n_threads, rounds = 4, 7
    locks = {k: [threading.Lock() for _ in range(3)] + [threading.RLock()]
             for k in range(n_threads)}
    ids = {lk._ls_id for mine in locks.values() for lk in mine}
    phase = threading.Barrier(n_threads + 1, timeout=30)
    finish = threading.Event()
    held: dict[int, Counter] = {}
    tids: dict[int, int] = {}

    def work(k: int) -> None:
        rnd = random.Random(k)
        mine = locks[k]
        holding: list = []
        tids[k] = _core.current_state().tid
        for _ in range(rounds):
            phase.wait()
            for _ in range(300):
                if holding and (len(holding) >= 5 or rnd.random() < 0.45):
                    holding.pop().release()
                else:
                    free = [lk for lk in mine if lk not in holding or lk is mine[3]]
                    lk = rnd.choice(free)
                    lk.acquire()
                    holding.append(lk)
            phase.wait()
        # (the RLock once: its inner levels are not recorded, held or lost)
        held[k] = +Counter(lk._ls_id for lk in dict.fromkeys(holding))
        phase.wait()
        finish.wait(30)
        for lk in reversed(holding):
            lk.release()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    io = recorder._sink._io
    try:
        for r in range(rounds):
            stalled = r % 2 == 0  # the last round is stalled: it ends in a gap
            if stalled:
                assert io.acquire(True, 5)
            phase.wait()
            phase.wait()
            if stalled:
                io.release()
            else:
                recorder.flush()
        phase.wait()  # every thread knows what it holds, and holds it
        trace = rec.stop()
    finally:
        finish.set()
        for t in threads:
            t.join(30)
    resyncs = [r for r in trace.records if r["k"] == "resync"]
    lost = sum(r["count"] for r in trace.records if r["k"] == "dropped")
    assert lost > 0
    assert sum(r["lost"] for r in resyncs) == lost  # each lost event is in one gap
    for k in range(n_threads):
        mine = [r for r in resyncs if r["th"] == tids[k]]
        assert len(mine) >= rounds // 2 + 1, f"thread {k}: {len(mine)} gaps closed"
        assert held[k], "every thread ends holding something"
        assert _held_from_trace(trace, tids[k], ids) == held[k], f"thread {k}"


def test_resync_records_name_the_asyncio_task_of_each_lost_acquire(rec):
    """Tasks on one loop hold asyncio locks across awaits while the writer is
    alternately stalled and running: per (task, lock), events plus resync deltas give
    exactly what each task holds when recording stops."""
    import asyncio

    from recorder import _aio_tasks

    rec.start(max_buffer_events=100, flush_interval=3600)
    n_tasks, rounds = 4, 5
    held: dict[int, Counter] = {}
    ids: set[int] = set()

    async def worker(k: int, go: list, done: asyncio.Queue, finish: asyncio.Event) -> None:
        rnd = random.Random(k)
        mine = [asyncio.Lock() for _ in range(3)]
        brief = threading.Lock()
        ids.update(lk._ls_id for lk in [*mine, brief])
        holding: list = []
        for r in range(rounds):
            await go[r].wait()
            for _ in range(150):
                free = [lk for lk in mine if lk not in holding]
                if holding and (not free or rnd.random() < 0.45):
                    holding.pop(rnd.randrange(len(holding))).release()
                else:
                    lk = rnd.choice(free)
                    if rnd.random() < 0.5:
                        await lk.acquire()
                        holding.append(lk)
                    else:
                        async with lk:
                            with brief:
                                pass
                await asyncio.sleep(0)
            await done.put(k)
        me = _aio_tasks.current()._ls_id
        held[me] = +Counter(lk._ls_id for lk in holding)
        await done.put(k)
        await finish.wait()
        for lk in holding:
            lk.release()

    async def main() -> object:
        go = [asyncio.Event() for _ in range(rounds)]
        done: asyncio.Queue = asyncio.Queue()
        finish = asyncio.Event()
        tasks = [asyncio.create_task(worker(k, go, done, finish)) for k in range(n_tasks)]
        io = recorder._sink._io
        for r in range(rounds):
            stalled = r % 2 == 0  # the last round is stalled: it ends in a gap
            if stalled:
                assert io.acquire(True, 5)
            go[r].set()
            for _ in range(n_tasks):
                await asyncio.wait_for(done.get(), 30)
            if stalled:
                io.release()
            else:
                recorder.flush()
        for _ in range(n_tasks):
            await asyncio.wait_for(done.get(), 30)
        trace = rec.stop()
        finish.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        return trace

    trace = asyncio.run(main())
    resyncs = [r for r in trace.records if r["k"] == "resync"]
    lost = sum(r["count"] for r in trace.records if r["k"] == "dropped")
    assert lost > 0
    assert sum(r["lost"] for r in resyncs) == lost
    assert any(lk["task"] in held for r in resyncs for lk in r["locks"])
    assert len(held) == n_tasks and all(held.values())
    for task_id, want in held.items():
        got: Counter = Counter()
        for r in trace.records:
            if r["k"] == "ev" and r.get("task") == task_id and r["obj"] in ids \
                    and r["op"] in ("acquire", "release"):
                got[r["obj"]] += 1 if r["op"] == "acquire" else -1
            elif r["k"] == "resync":
                for lk in r["locks"]:
                    if lk["task"] == task_id and lk["obj"] in ids:
                        got[lk["obj"]] += lk["acquired"] - lk["released"]
        assert +got == want, f"task {task_id}"


def test_every_append_site_counts_in_the_budget(rec):
    """Whatever path an event takes (the C core, acquires with arguments, conditions,
    semaphores, asyncio locks), the count the budget is checked against is exactly
    the number of buffered events."""
    import asyncio

    rec.start(flush_interval=3600)
    io = _stall_writer()
    try:
        lock, rlock, sem = threading.Lock(), threading.RLock(), threading.Semaphore(2)
        cond = threading.Condition(rlock)
        for _ in range(50):
            with lock:
                pass
            lock.acquire(True)
            lock.release()
            assert lock.acquire(timeout=1)
            lock.release()
            with rlock, rlock:
                pass
            with cond:
                cond.wait(0)
                cond.notify()
            with sem:
                pass

        async def aio() -> None:
            alock = asyncio.Lock()
            for _ in range(50):
                async with alock:
                    pass
                await alock.acquire()
                alock.release()

        asyncio.run(aio())
        assert _core.buffered() == sum(len(st.buf) for st in _core.states) > 1_000
    finally:
        io.release()
    rec.stop()
    assert _core.buffered() == 0
