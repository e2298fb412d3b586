"""asyncio.wait, as_completed and shield: awaiting them is a wait by the awaiting task
on each task or future not yet done, ended by that task's `end` (or the future's
signal), on every supported Python version."""

from __future__ import annotations

import asyncio
import sys

import pytest

from recorder import _aio_await

TIMEOUT = 5


async def _leaf(delay: float, result: object = None) -> object:
    await asyncio.sleep(delay)
    return result


def _waits(trace, obj: int) -> list[tuple]:
    return [(e["op"], e["task"], e.get("outcome"), e.get("any"), e.get("timeout"))
            for e in trace.events(obj=obj) if e["op"] in ("wait-begin", "wait-end")]


def test_wait_all_completed_waits_on_each_pending_task(trace):
    async def main():
        asyncio.current_task().set_name("main")
        fast = asyncio.create_task(_leaf(0.001), name="fast")
        slow = asyncio.create_task(_leaf(0.02), name="slow")
        done, pending = await asyncio.wait([fast, slow], timeout=TIMEOUT)  # wait-all
        assert done == {fast, slow} and not pending
        assert await asyncio.wait([fast]) == ({fast}, set())  # all done: no wait

    asyncio.run(main())
    tasks = trace.tasks_named()
    M = tasks["main"]["id"]
    for name in ("fast", "slow"):
        T = tasks[name]["id"]
        assert _waits(trace, T) == [("wait-begin", M, None, None, TIMEOUT),
                                    ("wait-end", M, "ok", None, None)], name
        ops = [e["op"] for e in trace.events(obj=T)]
        assert ops == ["wait-begin", "end", "wait-end"], name  # the end is the signal
        assert trace.site_of(trace.events(obj=T, op="wait-begin")[0])[2] == "main"
    # both wait-begins are one wait: same site, same instant order as the call
    begins = trace.events(op="wait-begin")
    assert len({e["site"] for e in begins}) == 1


def test_wait_first_completed_is_an_any_wait(trace):
    async def main():
        asyncio.current_task().set_name("main")
        fast = asyncio.create_task(_leaf(0.001), name="fast")
        slow = asyncio.create_task(_leaf(3600), name="slow")
        done, pending = await asyncio.wait({fast, slow}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {fast} and pending == {slow}
        # one is done already: returns at once, no wait
        await asyncio.wait({fast, slow}, return_when=asyncio.FIRST_COMPLETED)
        slow.cancel()

    asyncio.run(main())
    tasks = trace.tasks_named()
    M = tasks["main"]["id"]
    for name in ("fast", "slow"):
        assert _waits(trace, tasks[name]["id"]) == [("wait-begin", M, None, True, None),
                                                     ("wait-end", M, "ok", None, None)], name


def test_wait_timeout_and_cancelled_waiter(trace):
    async def waiter(t):
        await asyncio.wait([t])

    async def main():
        asyncio.current_task().set_name("main")
        slow = asyncio.create_task(_leaf(3600), name="slow")
        done, pending = await asyncio.wait([slow], timeout=0.01)
        assert pending == {slow}
        w = asyncio.create_task(waiter(slow), name="W")
        await asyncio.sleep(0.01)
        w.cancel()
        with pytest.raises(asyncio.CancelledError):
            await w
        assert not slow.done()  # asyncio.wait does not cancel what it waits for
        slow.cancel()

    asyncio.run(main())
    tasks = trace.tasks_named()
    M, W, S = tasks["main"]["id"], tasks["W"]["id"], tasks["slow"]["id"]
    assert _waits(trace, S) == [("wait-begin", M, None, None, 0.01),
                                ("wait-end", M, "timeout", None, None),
                                ("wait-begin", W, None, None, None),
                                ("wait-end", W, "cancelled", None, None)]


def test_wait_on_a_user_future_ends_with_its_signal(trace):
    async def setter(fut):
        await asyncio.sleep(0.01)
        fut.set_result(1)

    async def main():
        asyncio.current_task().set_name("main")
        fut = asyncio.get_running_loop().create_future()
        asyncio.create_task(setter(fut), name="setter")
        await asyncio.wait([fut])
        return fut

    fut = asyncio.run(main())
    tasks = trace.tasks_named()
    evs = [(e["op"], e["task"], e.get("sig") or e.get("outcome")) for e in trace.events(obj=fut._ls_id)]
    assert evs == [("wait-begin", tasks["main"]["id"], None),
                   ("signal", tasks["setter"]["id"], "result"),
                   ("wait-end", tasks["main"]["id"], "ok")]


def test_as_completed_each_await_waits_on_the_rest(trace):
    async def main():
        asyncio.current_task().set_name("main")
        ts = [asyncio.create_task(_leaf(0.01 * (i + 1), i), name=f"t{i}") for i in range(3)]
        got = [await aw for aw in asyncio.as_completed(ts, timeout=TIMEOUT)]
        assert got == [0, 1, 2]

    asyncio.run(main())
    tasks = trace.tasks_named()
    M = tasks["main"]["id"]
    # t0 is waited on once (by the first await), t1 twice, t2 three times
    for i in range(3):
        T = tasks[f"t{i}"]["id"]
        evs = _waits(trace, T)
        assert [e[:3] for e in evs] == [("wait-begin", M, None), ("wait-end", M, "ok")] * (i + 1)
        # the k-th await waits on 3 - k tasks: an any-wait but for the last one
        assert [e[3] for e in evs if e[0] == "wait-begin"] == [True if k < 2 else None
                                                               for k in range(i + 1)]
        assert trace.events(obj=T, op="end")
    # no waits on as_completed's internal queue
    assert not [r for r in trace.defs("resource").values() if r["type"] == "asyncio.Queue"]


def test_as_completed_timeout(trace):
    async def main():
        asyncio.current_task().set_name("main")
        slow = asyncio.create_task(_leaf(3600), name="slow")
        with pytest.raises(asyncio.TimeoutError):
            for aw in asyncio.as_completed([slow], timeout=0.01):
                await aw
        slow.cancel()

    asyncio.run(main())
    tasks = trace.tasks_named()
    assert _waits(trace, tasks["slow"]["id"]) == [
        ("wait-begin", tasks["main"]["id"], None, None, None),
        ("wait-end", tasks["main"]["id"], "timeout", None, None)]


@pytest.mark.skipif(_aio_await._AsCompletedIterator is None, reason="async for as_completed: 3.13+")
def test_as_completed_async_for(trace):
    async def main():
        asyncio.current_task().set_name("main")
        ts = [asyncio.create_task(_leaf(0.01 * (i + 1), i), name=f"t{i}") for i in range(2)]
        got = [await t async for t in asyncio.as_completed(ts)]
        assert got == [0, 1]

    asyncio.run(main())
    tasks = trace.tasks_named()
    M = tasks["main"]["id"]
    assert [e[:4] for e in _waits(trace, tasks["t1"]["id"])] == [
        ("wait-begin", M, None, True), ("wait-end", M, "ok", None),
        ("wait-begin", M, None, None), ("wait-end", M, "ok", None)]


def test_awaiting_shield_is_a_wait_on_the_shielded_task(trace):
    async def waiter(t):
        await asyncio.shield(t)

    async def main():
        asyncio.current_task().set_name("main")
        inner = asyncio.create_task(_leaf(0.03, "r"), name="inner")
        w = asyncio.create_task(waiter(inner), name="W")
        await asyncio.sleep(0.01)
        w.cancel()  # cancels the waiter, not the shielded task
        with pytest.raises(asyncio.CancelledError):
            await w
        assert await asyncio.shield(inner) == "r"
        assert await asyncio.gather(asyncio.shield(asyncio.create_task(_leaf(0.01), name="g")))

    asyncio.run(main())
    tasks = trace.tasks_named()
    M, W = tasks["main"]["id"], tasks["W"]["id"]
    assert _waits(trace, tasks["inner"]["id"]) == [
        ("wait-begin", W, None, None, None), ("wait-end", W, "cancelled", None, None),
        ("wait-begin", M, None, None, None), ("wait-end", M, "ok", None, None)]
    assert [e[:3] for e in _waits(trace, tasks["g"]["id"])] == [
        ("wait-begin", M, None), ("wait-end", M, "ok")]
    assert trace.site_of(trace.events(obj=tasks["inner"]["id"], op="wait-begin")[0])[2] == "waiter"


def test_wait_for_a_task_is_a_wait_on_it(trace):
    async def main():
        asyncio.current_task().set_name("main")
        quick = asyncio.create_task(_leaf(0.01, "q"), name="quick")
        assert await asyncio.wait_for(quick, TIMEOUT) == "q"
        slow = asyncio.create_task(_leaf(3600), name="slow")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(slow, 0.01)
        assert slow.cancelled()  # wait_for cancels what it gave up on

    asyncio.run(main())
    tasks = trace.tasks_named()
    M = tasks["main"]["id"]
    # (3.12+ wait_for awaits the task inside asyncio.timeout(): no timeout on the record)
    t_quick, t_slow = (TIMEOUT, 0.01) if sys.version_info < (3, 12) else (None, None)
    assert _waits(trace, tasks["quick"]["id"]) == [("wait-begin", M, None, None, t_quick),
                                                   ("wait-end", M, "ok", None, None)]
    assert _waits(trace, tasks["slow"]["id"]) == [("wait-begin", M, None, None, t_slow),
                                                  ("wait-end", M, "timeout", None, None)]
    assert trace.site_of(trace.events(obj=tasks["slow"]["id"], op="wait-begin")[0])[2] == "main"
