"""Awaiting a task or a future is a wait on it; a task's end and a future's
completion are the signals that end such waits."""

from __future__ import annotations

import asyncio

import pytest

from recorder import _aio_await

pytestmark = pytest.mark.skipif(not _aio_await.SUPPORTED,
                                reason="await tracing mirrors the create_task of Python 3.10-3.13")


def test_awaiting_a_task_is_a_wait_ended_by_its_end(trace):
    async def b():
        await asyncio.sleep(0.01)
        return 42

    async def a(tb):
        assert await tb == 42
        assert await tb == 42  # already done: no wait

    async def main():
        tb = asyncio.create_task(b(), name="B")
        ta = asyncio.create_task(a(tb), name="A")
        assert repr(tb).startswith("<Task pending name='B'")
        assert isinstance(tb, asyncio.Task)
        await ta

    asyncio.run(main())
    tasks = trace.tasks_named()
    A, B = tasks["A"]["id"], tasks["B"]["id"]
    evs = [(e["op"], e["task"], e.get("outcome")) for e in trace.events(obj=B)]
    assert evs == [("wait-begin", A, None), ("end", B, "done"), ("wait-end", A, "ok")]
    assert trace.site_of(trace.events(obj=B, op="wait-begin")[0])[2] == "a"


def test_awaiter_cancelled_and_awaited_failure(trace):
    async def slow():
        await asyncio.sleep(3600)

    async def boom():
        await asyncio.sleep(0)
        raise ValueError("x")

    async def waits_for(t):
        await t

    async def main():
        ts = asyncio.create_task(slow(), name="slow")
        w = asyncio.create_task(waits_for(ts), name="W")
        await asyncio.sleep(0)
        w.cancel()
        with pytest.raises(asyncio.CancelledError):
            await w
        tb = asyncio.create_task(boom(), name="boom")
        w2 = asyncio.create_task(waits_for(tb), name="W2")
        with pytest.raises(ValueError):
            await w2

    asyncio.run(main())
    tasks = trace.tasks_named()
    slow_ev = [(e["op"], e["task"], e.get("outcome"))
               for e in trace.events(obj=tasks["slow"]["id"]) if e["op"] != "end"]
    assert slow_ev == [("wait-begin", tasks["W"]["id"], None),
                       ("wait-end", tasks["W"]["id"], "cancelled")]
    boom_ev = [(e["op"], e["task"], e.get("outcome")) for e in trace.events(obj=tasks["boom"]["id"])]
    assert boom_ev == [("wait-begin", tasks["W2"]["id"], None),
                       ("end", tasks["boom"]["id"], "failed"),
                       ("wait-end", tasks["W2"]["id"], "ok")]


def test_user_future_wait_and_signal(trace):
    async def a(fut):
        return await fut

    async def b(fut):
        fut.set_result("v")

    async def main():
        fut = asyncio.get_running_loop().create_future()
        assert type(fut) is _aio_await.Future and isinstance(fut, asyncio.Future)
        ta = asyncio.create_task(a(fut), name="A")
        await asyncio.sleep(0)
        await asyncio.create_task(b(fut), name="B")
        assert await ta == "v"
        internal = asyncio.Event()
        internal.set()
        await internal.wait()

    asyncio.run(main())
    tasks = trace.tasks_named()
    futs = [r for r in trace.defs("resource").values() if r["type"] == "asyncio.Future"]
    assert len(futs) == 1  # futures made inside asyncio stay plain
    evs = [(e["op"], e["task"], e.get("sig") or e.get("outcome"))
           for e in trace.events(obj=futs[0]["id"])]
    assert evs == [("wait-begin", tasks["A"]["id"], None),
                   ("signal", tasks["B"]["id"], "result"),
                   ("wait-end", tasks["A"]["id"], "ok")]
    assert trace.site_of(trace.events(obj=futs[0]["id"], op="signal")[0])[2] == "b"


@pytest.mark.skipif(not hasattr(asyncio, "TaskGroup"), reason="TaskGroup: Python 3.11+")
def test_taskgroup_exit_waits_on_children_holding_a_lock_they_need(trace):
    """The classic: a task holds a lock across `async with TaskGroup()` whose child
    needs that lock. Both sides of the would-be cycle are in the trace."""
    lock = asyncio.Lock()

    async def child():
        try:
            await asyncio.wait_for(lock.acquire(), 0.05)
        except asyncio.TimeoutError:
            return

    async def main():
        asyncio.current_task().set_name("parent")
        async with lock:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(child(), name="child")

    asyncio.run(main())
    tasks = trace.tasks_named()
    P, C = tasks["parent"]["id"], tasks["child"]["id"]
    on_child = [(e["op"], e["task"], e.get("outcome")) for e in trace.events(obj=C)]
    assert on_child == [("wait-begin", P, None), ("end", C, "done"), ("wait-end", P, "ok")]
    assert trace.site_of(trace.events(obj=C, op="wait-begin")[0])[2] == "main"
    on_lock = [(e["op"], e["task"]) for e in trace.events(obj=trace.obj_id(lock))]
    assert on_lock == [("acquire", P), ("wait", C), ("timeout", C), ("release", P)]


def test_gather_is_a_wait_on_each_child(trace):
    async def leaf(n):
        await asyncio.sleep(0.001 * n)
        return n

    async def main():
        asyncio.current_task().set_name("main")
        t1 = asyncio.create_task(leaf(1), name="t1")
        t2 = asyncio.create_task(leaf(2), name="t2")
        assert await asyncio.gather(t1, t2) == [1, 2]
        assert await asyncio.gather() == []

    asyncio.run(main())
    tasks = trace.tasks_named()
    M = tasks["main"]["id"]
    for name in ("t1", "t2"):
        evs = [(e["op"], e["task"]) for e in trace.events(obj=tasks[name]["id"])]
        assert evs[0] == ("wait-begin", M) and evs[-1] == ("wait-end", M), name
        assert ("end", tasks[name]["id"]) in evs
