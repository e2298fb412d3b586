"""Traced asyncio primitives: exact records of locks, semaphores, conditions, events
and queues driven by real event loops."""

from __future__ import annotations

import asyncio
import threading

import pytest

from recorder import _aio_sync


def test_lock_held_across_sleep_is_visible(trace):
    lock = asyncio.Lock()
    other = asyncio.Lock()

    async def a():
        async with lock:
            await asyncio.sleep(0.01)

    async def b():
        async with other:
            pass

    async def main():
        ta = asyncio.create_task(a(), name="A")
        await asyncio.sleep(0)  # A takes the lock first
        tb = asyncio.create_task(b(), name="B")
        await asyncio.gather(ta, tb)

    asyncio.run(main())
    tasks = trace.tasks_named()
    A, B = tasks["A"]["id"], tasks["B"]["id"]
    held = trace.events(obj=trace.obj_id(lock))
    assert [(e["op"], e["task"]) for e in held] == [("acquire", A), ("release", A)]
    b_evs = trace.events(obj=trace.obj_id(other))
    assert [(e["op"], e["task"]) for e in b_evs] == [("acquire", B), ("release", B)]
    assert {e["th"] for e in held + b_evs} == {held[0]["th"]}
    assert held[0]["ts"] < b_evs[0]["ts"] < b_evs[1]["ts"] < held[1]["ts"]
    assert trace.site_of(held[0])[2] == "a"
    assert trace.defs("lock")[trace.obj_id(lock)]["type"] == "asyncio.Lock"


def test_contended_lock_records_wait_then_acquire(trace):
    lock = asyncio.Lock()
    order = []

    async def worker(n):
        async with lock:
            order.append(n)
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(worker(n) for n in range(3)))

    asyncio.run(main())
    evs = trace.events(obj=trace.obj_id(lock))
    assert order == [0, 1, 2]
    assert [e["op"] for e in evs] == ["acquire", "wait", "wait", "release", "acquire",
                                      "release", "acquire", "release"]
    # Every hold is released by the task that took it.
    holder = {}
    for e in evs:
        if e["op"] == "acquire":
            assert not holder
            holder["t"] = e["task"]
        elif e["op"] == "release":
            assert holder.pop("t") == e["task"]


def test_event_set_by_b_ends_wait_of_a(trace):
    ev = asyncio.Event()

    async def a():
        await ev.wait()

    async def b():
        ev.set()

    async def main():
        ta = asyncio.create_task(a(), name="A")
        await asyncio.sleep(0)
        tb = asyncio.create_task(b(), name="B")
        await asyncio.gather(ta, tb)

    asyncio.run(main())
    tasks = trace.tasks_named()
    evs = trace.events(obj=trace.obj_id(ev))
    assert [(e["op"], e["task"], e.get("outcome"), e.get("sig")) for e in evs] == [
        ("wait-begin", tasks["A"]["id"], None, None),
        ("signal", tasks["B"]["id"], None, "set"),
        ("wait-end", tasks["A"]["id"], "ok", None),
    ]
    assert evs[1]["n"] == 1
    assert trace.defs("resource")[trace.obj_id(ev)]["type"] == "asyncio.Event"


@pytest.mark.parametrize("how", ["cancel", "wait_for", "timeout"])
def test_waiting_lock_acquire_cancelled_or_timed_out(trace, how):
    if how == "timeout" and not hasattr(asyncio, "timeout"):
        pytest.skip("asyncio.timeout(): Python 3.11+")
    lock = asyncio.Lock()

    async def waiter():
        if how == "wait_for":
            await asyncio.wait_for(lock.acquire(), 0.01)
        elif how == "timeout":
            async with asyncio.timeout(0.01):
                await lock.acquire()
        else:
            await lock.acquire()

    async def main():
        await lock.acquire()
        t = asyncio.create_task(waiter(), name="W")
        await asyncio.sleep(0)
        if how == "cancel":
            t.cancel()
        with pytest.raises((asyncio.CancelledError, asyncio.TimeoutError)):
            await t
        lock.release()
        assert not lock._waiters

    asyncio.run(main())
    ops = [e["op"] for e in trace.events(obj=trace.obj_id(lock))]
    gave_up = "cancel" if how == "cancel" else "timeout"
    assert ops == ["acquire", "wait", gave_up, "release"]
    tasks = trace.tasks_named()
    waiter_ev = trace.events(obj=trace.obj_id(lock), op=gave_up)[0]
    # (wait_for's helper task of Python 3.11 is attributed to the caller, W)
    assert [e["task"] for e in trace.events(obj=trace.obj_id(lock))][1:3] == [
        tasks["W"]["id"]] * 2
    assert trace.site_of(waiter_ev)[2] == "waiter"
    assert len(trace.defs("task")) == len({t["id"] for t in trace.defs("task").values()})
    assert all(t["parent"] in (None, *trace.defs("task")) for t in trace.defs("task").values())


def test_outer_cancel_of_wait_for_is_a_cancel(trace):
    lock = asyncio.Lock()

    async def waiter():
        await asyncio.wait_for(lock.acquire(), 60)

    async def main():
        await lock.acquire()
        t = asyncio.create_task(waiter())
        await asyncio.sleep(0.001)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        lock.release()

    asyncio.run(main())
    assert [e["op"] for e in trace.events(obj=trace.obj_id(lock))] == [
        "acquire", "wait", "cancel", "release"]


def test_condition_wait_releases_and_reacquires(trace):
    cond = asyncio.Condition()
    ready = []

    async def consumer():
        async with cond:
            await cond.wait_for(lambda: ready)

    async def producer():
        async with cond:
            ready.append(1)
            cond.notify_all()

    async def main():
        c = asyncio.create_task(consumer(), name="C")
        await asyncio.sleep(0)
        p = asyncio.create_task(producer(), name="P")
        await asyncio.gather(c, p)

    asyncio.run(main())
    tasks = trace.tasks_named()
    C, P = tasks["C"]["id"], tasks["P"]["id"]
    lock_id = trace.defs("resource")[trace.obj_id(cond)]["lock"]
    assert trace.defs("lock")[lock_id]["owner"] == trace.obj_id(cond)
    seq = [(e["obj"], e["op"], e["task"]) for e in trace.records
           if e["k"] == "ev" and e["obj"] in (lock_id, trace.obj_id(cond))]
    L, R = lock_id, trace.obj_id(cond)
    assert seq == [
        (L, "acquire", C), (L, "release", C), (R, "wait-begin", C),
        (L, "acquire", P), (R, "signal", P), (L, "release", P),
        (R, "wait-end", C), (L, "acquire", C), (L, "release", C),
    ]
    wait_begin = trace.events(obj=R, op="wait-begin")[0]
    assert trace.site_of(wait_begin)[2] == "consumer"
    assert trace.events(obj=R, op="signal")[0]["sig"] == "notify_all"


def test_condition_wait_cancelled(trace):
    cond = asyncio.Condition()

    async def consumer():
        async with cond:
            await cond.wait()

    async def main():
        c = asyncio.create_task(consumer())
        await asyncio.sleep(0)
        c.cancel()
        with pytest.raises(asyncio.CancelledError):
            await c
        assert not cond.locked()

    asyncio.run(main())
    ends = trace.events(obj=trace.obj_id(cond), op="wait-end")
    assert [e["outcome"] for e in ends] == ["cancelled"]


def test_semaphores(trace):
    sem = asyncio.Semaphore(2)
    bsem = asyncio.BoundedSemaphore(1)

    async def user(n):
        async with sem:
            async with bsem:
                await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(user(n) for n in range(3)))
        with pytest.raises(ValueError):
            bsem.release()

    asyncio.run(main())
    locks = trace.defs("lock")
    assert locks[trace.obj_id(sem)]["type"] == "asyncio.Semaphore"
    assert locks[trace.obj_id(sem)]["value"] == 2
    assert locks[trace.obj_id(bsem)]["type"] == "asyncio.BoundedSemaphore"
    sem_ops = [e["op"] for e in trace.events(obj=trace.obj_id(sem))]
    assert sem_ops.count("acquire") == 3 and sem_ops.count("release") == 3
    assert sem_ops.count("wait") == 1
    b_ops = [e["op"] for e in trace.events(obj=trace.obj_id(bsem))]
    assert b_ops == ["acquire", "wait", "release", "acquire", "wait", "release",
                     "acquire", "release"]  # the refused release is not recorded


def test_queue_get_wait_ended_by_put(trace):
    q = asyncio.Queue(maxsize=1)

    async def consumer():
        item = await q.get()
        q.task_done()
        return item

    async def producer():
        await q.put("x")

    async def main():
        c = asyncio.create_task(consumer(), name="C")
        await asyncio.sleep(0)
        p = asyncio.create_task(producer(), name="P")
        await asyncio.gather(c, p)
        await q.join()

    asyncio.run(main())
    tasks = trace.tasks_named()
    C, P = tasks["C"]["id"], tasks["P"]["id"]
    res = trace.defs("resource")
    roles = {r["role"]: r for r in res.values() if r.get("owner") == trace.obj_id(q)}
    assert set(roles) == {"not_empty", "not_full", "all_tasks_done"}
    assert {r["type"] for r in roles.values()} == {"asyncio.Queue"}
    ne, nf, done = (roles[k]["id"] for k in ("not_empty", "not_full", "all_tasks_done"))
    seq = [(e["obj"], e["op"], e["task"], e.get("sig") or e.get("outcome"))
           for e in trace.records if e["k"] == "ev" and e["obj"] in (ne, nf, done)]
    assert seq == [
        (ne, "wait-begin", C, None),
        (ne, "signal", P, "put"),
        (ne, "wait-end", C, "ok"),
        (nf, "signal", C, "get"),
        (done, "signal", C, "set"),
        (done, "signal", C, "task_done"),
    ]


def test_queue_variants_and_full_queue_put(trace):
    lq, pq = asyncio.LifoQueue(1), asyncio.PriorityQueue(1)

    async def main():
        await lq.put(1)
        putter = asyncio.create_task(lq.put(2), name="putter")
        await asyncio.sleep(0)
        assert await lq.get() == 1
        await putter
        await pq.put((1, "a"))
        assert pq.get_nowait() == (1, "a")

    asyncio.run(main())
    res = trace.defs("resource")
    roles = {(r["type"], r["role"]): r["id"] for r in res.values() if r.get("role")}
    nf = roles[("asyncio.LifoQueue", "not_full")]
    putter = trace.tasks_named()["putter"]["id"]
    evs = trace.events(obj=nf)
    assert [(e["op"], e.get("outcome") or e.get("sig")) for e in evs] == [
        ("wait-begin", None), ("signal", "get"), ("wait-end", "ok")]
    assert evs[0]["task"] == evs[2]["task"] == putter
    assert ("asyncio.PriorityQueue", "not_empty") in roles


def test_queue_get_cancelled(trace):
    q = asyncio.Queue()

    async def main():
        t = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(q.get(), 0.01)

    asyncio.run(main())
    ne = [r["id"] for r in trace.defs("resource").values() if r.get("role") == "not_empty"][0]
    assert [e["outcome"] for e in trace.events(obj=ne, op="wait-end")] == ["cancelled", "timeout"]


def test_threading_lock_in_task_carries_task(trace):
    tlock = threading.Lock()

    async def main():
        asyncio.current_task().set_name("user")
        with tlock:
            pass

    asyncio.run(main())
    acq = trace.events(obj=trace.obj_id(tlock), op="acquire")
    assert [e["task"] for e in acq] == [trace.tasks_named()["user"]["id"]]
    with tlock:  # outside any loop: no task
        pass


def test_isinstance_of_primitives_made_before_start(tmp_path):
    import recorder

    before = asyncio.Lock(), asyncio.Semaphore(), asyncio.BoundedSemaphore(), asyncio.Event(), \
        asyncio.Condition(), asyncio.Queue(), asyncio.LifoQueue()
    recorder.start(tmp_path)
    try:
        assert asyncio.Lock is _aio_sync.Lock and asyncio.locks.Lock is _aio_sync.Lock
        assert asyncio.Queue is _aio_sync.Queue
        lock, sem, bsem, ev, cond, q, lq = before
        assert isinstance(lock, asyncio.Lock) and isinstance(sem, asyncio.Semaphore)
        assert isinstance(bsem, asyncio.BoundedSemaphore) and isinstance(bsem, asyncio.Semaphore)
        assert not isinstance(sem, asyncio.BoundedSemaphore)
        assert isinstance(ev, asyncio.Event) and isinstance(cond, asyncio.Condition)
        assert isinstance(q, asyncio.Queue) and isinstance(lq, asyncio.LifoQueue)
        assert not hasattr(lock, "_ls_id")  # made before start: untraced
        assert isinstance(asyncio.Lock(), asyncio.Lock)
    finally:
        recorder.stop()
    assert asyncio.Lock is _aio_sync._OrigLock and asyncio.Queue is _aio_sync._OrigQueue


def test_stopped_recorder_leaves_traced_objects_working(tmp_path):
    import recorder

    recorder.start(tmp_path)
    lock, ev, q = asyncio.Lock(), asyncio.Event(), asyncio.Queue()
    recorder.stop()

    async def main():
        async with lock:
            pass
        ev.set()
        await ev.wait()
        await q.put(1)
        assert await q.get() == 1

    asyncio.run(main())


@pytest.mark.skipif(_aio_sync._core.speedups is None, reason="no C accelerator")
def test_a_threading_lock_taken_by_tasks_finds_each_task_in_c(trace):
    """A threading lock taken in tasks (a logging handler's under an asyncio server):
    each event names its task, found by the C accelerator without calling the
    asyncio layer's Python lookup (two Python calls an event before)."""
    import sys
    from collections import Counter

    lock = threading.RLock()
    calls: Counter = Counter()

    def profile(frame, event, arg):
        if event == "call":
            calls[frame.f_code.co_name] += 1

    async def take(n: int) -> None:
        sys.setprofile(profile)
        try:
            for _ in range(n):
                with lock:
                    with lock:  # (an inner level, as a handler's flush inside its emit:
                        pass    # not recorded)
        finally:
            sys.setprofile(None)

    async def main():
        await asyncio.gather(asyncio.create_task(take(50), name="A"),
                             asyncio.create_task(take(30), name="B"))

    asyncio.run(main())
    assert calls["current"] == calls["task_of"] == 0, calls
    tasks = trace.tasks_named()
    evs = trace.events(obj=trace.obj_id(lock))
    assert Counter((e["op"], e["task"]) for e in evs) == {
        ("acquire", tasks["A"]["id"]): 50, ("release", tasks["A"]["id"]): 50,
        ("acquire", tasks["B"]["id"]): 30, ("release", tasks["B"]["id"]): 30}
