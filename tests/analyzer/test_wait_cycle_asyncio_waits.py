"""wait-cycle end to end through asyncio.wait, as_completed and shield: a task holds
an asyncio.Lock while it waits (through one of them) for a task that must take that
lock before it can finish. Recorded from real event loops, then analyzed: the exact
finding (must find), and nothing for the corrected program (must stay quiet)."""
from __future__ import annotations

import asyncio

import pytest

import recorder

from .conftest import kinds, line_of

TIMEOUT = 5
HOWS = ["wait", "wait-first-completed", "as_completed", "shield"]


async def _wait_for(how: str, task: asyncio.Task, timeout: float) -> bool:
    """Wait for ``task`` through ``how``; True if it finished in time."""
    if how == "wait":
        _, pending = await asyncio.wait([task], timeout=timeout)  # waiter: wait
        return not pending
    if how == "wait-first-completed":
        done, _ = await asyncio.wait([task], timeout=timeout,  # waiter: wait
                                     return_when=asyncio.FIRST_COMPLETED)
        return bool(done)
    try:
        if how == "as_completed":
            for aw in asyncio.as_completed([task], timeout=timeout):
                await aw  # waiter: wait
        else:
            await asyncio.wait_for(asyncio.shield(task), timeout)  # waiter: wait
        return True
    except asyncio.TimeoutError:
        return False


def _program(how: str, fixed: bool):
    cache = recorder.name(asyncio.Lock(), "cache")

    async def fill():
        async with cache:  # fill: take cache
            return 1

    async def refresh():
        task = asyncio.create_task(fill(), name="fill")
        if fixed:
            finished = await _wait_for(how, task, TIMEOUT)
            async with cache:
                return finished
        async with cache:  # refresh: take cache
            finished = await _wait_for(how, task, 0.3)
        await asyncio.wait_for(task, TIMEOUT)  # fill gets the lock now
        return finished

    async def main():
        return await asyncio.create_task(refresh(), name="refresh")

    return main, refresh, fill


@pytest.mark.parametrize("how", HOWS)
def test_waiting_for_a_task_that_needs_the_held_lock_is_a_critical_wait_cycle(record, how):
    with record() as rec:
        main, refresh, fill = _program(how, fixed=False)
        assert asyncio.run(main()) is False  # the wait timed out: they waited on each other
    [f] = kinds(rec.analyze(), "wait-cycle")
    assert f["severity"] == "critical"
    assert [lk["name"] for lk in f["locks"]] == ["cache"]
    waiter, signaller = f["steps"]
    assert waiter["actor"]["name"] == "refresh" and waiter["actor"]["kind"] == "task"
    assert waiter["holds"] == [{"lock": f["locks"][0]["id"], "name": "cache", "label": "cache",
                                "acquired_at": line_of(refresh, "# refresh: take cache")}]
    assert waiter["requests"] == {"lock": None, "resource": signaller["actor"]["id"],
                                  "name": "fill", "type": "task"}
    assert waiter["site"] == line_of(_wait_for, f"{_marker(how)}# waiter: wait")
    assert signaller["actor"]["name"] == "fill"
    assert signaller["requests"]["name"] == "cache"
    assert signaller["site"] == line_of(fill, "# fill: take cache")
    assert signaller["signals"]["sig"] == "end"
    assert f["details"]["ended"] == "timeout"
    assert f["details"]["held_lock"]["name"] == "cache"
    assert f["count"] == 1


def _marker(how: str) -> str:
    # the source line of each way of waiting starts with its own call
    return {"wait": "await asyncio.wait([task], timeout=timeout)  ",
            "wait-first-completed": "await asyncio.wait([task], timeout=timeout,  ",
            "as_completed": "await aw  ",
            "shield": "shield(task), timeout)  "}[how]


@pytest.mark.parametrize("how", HOWS)
def test_waiting_for_the_task_before_taking_the_lock_is_quiet(record, how):
    with record() as rec:
        main, _, _ = _program(how, fixed=True)
        assert asyncio.run(main()) is True
    assert kinds(rec.analyze(), "wait-cycle") == []
