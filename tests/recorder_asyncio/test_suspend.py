"""A task suspended while it holds a lock: a `suspend` event of that task, whose site
is the await in the frame that took the lock (real event loops, exact lines)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from pathlib import Path

import pytest

from recorder import _core


def _line(func, marker: str) -> int:
    lines, start = inspect.getsourcelines(func)
    return start + next(i for i, text in enumerate(lines) if marker in text)


async def _fetch():
    await asyncio.sleep(0.01)  # deeper await


async def _refresh(lock):
    async with lock:  # take
        x = 1
        await asyncio.sleep(0)  # first await
        await _fetch()  # second await
        return x


async def _quick(lock):
    for _ in range(3):
        async with lock:
            pass
        await asyncio.sleep(0)


def _suspends(trace, task_name):
    task = trace.tasks_named()[task_name]
    return [e for e in trace.events(op="suspend") if e["task"] == task["id"]]


def test_first_await_of_a_held_region_is_recorded_once_per_hold(trace):
    async def main():
        lock = asyncio.Lock()
        await asyncio.gather(asyncio.create_task(_refresh(lock), name="refresher"),
                             asyncio.create_task(_quick(lock), name="quick"))

    asyncio.run(main())
    [ev] = _suspends(trace, "refresher")
    assert ev["obj"] == ev["task"]
    assert trace.site_of(ev) == (Path(__file__).name, _line(_refresh, "# first await"), "_refresh")
    [acq] = [e for e in trace.events(op="acquire") if e["task"] == ev["task"]]
    [rel] = [e for e in trace.events(op="release") if e["task"] == ev["task"]]
    assert acq["ts"] < ev["ts"] < rel["ts"]
    # A lock released before the task yields: no suspend event.
    assert _suspends(trace, "quick") == []


def test_suspension_deeper_in_the_chain_is_shown_at_the_held_frame(trace):
    async def holder(lock):
        async with lock:  # take
            await _fetch()  # held await

    async def main():
        await asyncio.create_task(holder(asyncio.Lock()), name="holder")

    asyncio.run(main())
    [ev] = _suspends(trace, "holder")
    assert trace.site_of(ev) == (Path(__file__).name, _line(holder, "# held await"), "holder")
    site = trace.defs("site")[ev["site"]]
    assert site["stack"][0] == [site["file"], site["line"], site["func"]]


def test_threading_lock_held_by_a_task_across_an_await(trace):
    async def holder(lock):
        with lock:  # take
            await asyncio.sleep(0.01)  # held await

    async def main():
        await asyncio.create_task(holder(threading.Lock()), name="holder")

    asyncio.run(main())
    [ev] = _suspends(trace, "holder")
    assert trace.site_of(ev) == (Path(__file__).name, _line(holder, "# held await"), "holder")


def test_a_reentrant_lock_still_held_after_its_inner_release(trace):
    """An RLock taken twice by a task and released once is still held: the task
    suspended then is suspended holding it."""
    async def holder(lock):
        with lock:  # take
            with lock:
                pass
            await asyncio.sleep(0.01)  # held await

    async def main():
        await asyncio.create_task(holder(threading.RLock()), name="holder")

    asyncio.run(main())
    [ev] = _suspends(trace, "holder")
    assert trace.site_of(ev) == (Path(__file__).name, _line(holder, "# held await"), "holder")


def test_a_lock_released_by_another_task_is_not_held_by_its_taker(trace):
    async def main():
        lock = asyncio.Lock()
        await lock.acquire()  # (taken by the main task, released by another)

        async def release():
            lock.release()

        await asyncio.create_task(release(), name="releaser")  # held await
        await asyncio.sleep(0)  # the main task yields again: no longer holding it

    asyncio.run(main())
    [ev] = trace.events(op="suspend")
    assert trace.site_of(ev)[1:] == (_line(main, "# held await"), "main")


@pytest.mark.skipif(_core.speedups is None, reason="no C accelerator")
def test_locks_released_within_a_step_cost_no_python_check(trace):
    """With the C accelerator an acquire by a task is noted in C and its release
    takes the note out: the asyncio layer's Python check runs only for locks still
    held when the loop iteration is over (it ran at every acquire and iteration,
    half of what full recording cost an asyncio server's request)."""
    import sys
    from collections import Counter

    calls: Counter = Counter()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.endswith("_aio_held.py"):
            calls[frame.f_code.co_name] += 1

    async def quick(lock, rlock):
        for _ in range(20):
            async with lock:
                with rlock:
                    with rlock:
                        pass
            await asyncio.sleep(0)

    async def main():
        lock, rlock = asyncio.Lock(), threading.RLock()
        sys.setprofile(profile)
        try:
            await asyncio.gather(asyncio.create_task(quick(lock, rlock), name="a"),
                                 asyncio.create_task(quick(lock, rlock), name="b"))
            await asyncio.create_task(_refresh(lock), name="refresher")
        finally:
            sys.setprofile(None)

    asyncio.run(main())
    assert _suspends(trace, "a") == _suspends(trace, "b") == []
    assert len(_suspends(trace, "refresher")) == 1
    # only the refresher's hold across its awaits came to Python
    assert calls["task_acquired"] == calls["_check"] == 0, calls
    assert calls["check_held"] == calls["_still_taken"] == calls["await_site"] == 1, calls


def test_more_tasks_holding_locks_at_once_than_noted_in_c(trace):
    """100 tasks each suspended while holding a lock of its own in the same loop
    iteration (per-connection write locks held across a drain): each gets its
    suspend event, past the C accelerator's 64 notes too."""
    async def holder(lock):
        async with lock:  # take
            await asyncio.sleep(0.01)  # held await

    async def main():
        await asyncio.gather(*(asyncio.create_task(holder(asyncio.Lock()), name=f"h{k}")
                               for k in range(100)))

    asyncio.run(main())
    for k in range(100):
        [ev] = _suspends(trace, f"h{k}")
        assert trace.site_of(ev) == (Path(__file__).name, _line(holder, "# held await"), "holder")
