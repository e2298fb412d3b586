"""Happens-before from signals: an inversion whose halves are ordered by an event, a queue
hand-off, a condition, a barrier or an asyncio event is a guarded cycle, never a potential
deadlock; the same inversion with the signal given before the first half stays an error."""
from __future__ import annotations

import asyncio
import queue
import threading
import time

import pytest

import recorder

from .conftest import kinds, line_of

TIMEOUT = 5


def run_threads(*targets):
    threads = [threading.Thread(target=t, name=t.__name__, daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads)


def two_locks():
    return recorder.name(threading.Lock(), "sessions"), recorder.name(threading.Lock(), "users")


def only_guarded(doc: dict) -> dict:
    assert not kinds(doc, "potential-deadlock"), [f["title"] for f in doc["findings"]]
    [g] = kinds(doc, "guarded-cycle")
    assert g["details"]["reason"] == "ordered"
    assert sorted(lk["name"] for lk in g["locks"]) == ["sessions", "users"]
    return g


def event_ordered(waiter_blocks: bool, set_first: bool = False):
    sessions, users = two_locks()
    ready = recorder.name(threading.Event(), "ready")
    done = threading.Event()

    def login():
        if set_first:
            ready.set()
        if waiter_blocks:
            time.sleep(0.1)  # rename is waiting by now
        with sessions:
            with users:
                pass
        if not set_first:
            ready.set()  # login: set
        done.wait(TIMEOUT)  # both threads alive together

    def rename():
        if not waiter_blocks:
            time.sleep(0.2)  # login has set it: the wait returns at once
        ready.wait(TIMEOUT)
        with users:
            with sessions:
                pass
        done.set()

    run_threads(login, rename)
    return login


def test_inversion_ordered_by_an_event_the_waiter_blocked_on_is_guarded(record):
    with record() as rec:
        login = event_ordered(waiter_blocks=True)
    g = only_guarded(rec.analyze())
    assert g["details"]["explanation"] == f"ordered by the Event 'ready' set at {line_of(login, '# login: set')}"


def test_inversion_ordered_by_an_event_already_set_is_guarded(record):
    with record() as rec:
        login = event_ordered(waiter_blocks=False)
    trace = "".join(open(f).read() for f in rec.files)
    assert '"op":"pass"' in trace  # the wait that found the event set
    g = only_guarded(rec.analyze())
    assert g["details"]["explanation"] == f"ordered by the Event 'ready' set at {line_of(login, '# login: set')}"


def test_event_set_before_the_first_half_orders_nothing(record):
    with record() as rec:
        event_ordered(waiter_blocks=False, set_first=True)
    doc = rec.analyze()
    [f] = kinds(doc, "potential-deadlock")
    assert sorted(lk["name"] for lk in f["locks"]) == ["sessions", "users"]
    assert not kinds(doc, "guarded-cycle")


def queue_handoff(put_first: bool, getter_blocks: bool):
    sessions, users = two_locks()
    jobs: queue.Queue = queue.Queue()
    done = threading.Event()

    def producer():
        if put_first:
            jobs.put("job")
        if getter_blocks:
            time.sleep(0.1)
        with sessions:
            with users:
                pass
        if not put_first:
            jobs.put("job")  # producer: put
        done.wait(TIMEOUT)

    def consumer():
        if not getter_blocks:
            time.sleep(0.2)
        jobs.get(timeout=TIMEOUT)
        with users:
            with sessions:
                pass
        done.set()

    run_threads(producer, consumer)
    return producer


def test_inversion_ordered_by_a_queue_hand_off_is_guarded(record):
    for getter_blocks in (True, False):
        with record() as rec:
            producer = queue_handoff(put_first=False, getter_blocks=getter_blocks)
        g = only_guarded(rec.analyze())
        explanation = g["details"]["explanation"]
        assert explanation == (f"ordered by the hand-off through the queue.Queue 'jobs' "
                               f"(put at {line_of(producer, '# producer: put')})")


def test_a_put_before_the_first_half_orders_nothing(record):
    with record() as rec:
        queue_handoff(put_first=True, getter_blocks=False)
    [f] = kinds(rec.analyze(), "potential-deadlock")
    assert sorted(lk["name"] for lk in f["locks"]) == ["sessions", "users"]


def test_inversion_ordered_by_condition_notify_is_guarded(record):
    with record() as rec:
        sessions, users = two_locks()
        cond = recorder.name(threading.Condition(), "published")
        state = {"ready": False}
        done = threading.Event()

        def publisher():
            time.sleep(0.1)
            with sessions:
                with users:
                    pass
            with cond:
                state["ready"] = True
                cond.notify()  # publisher: notify
            done.wait(TIMEOUT)

        def reader():
            with cond:
                assert cond.wait_for(lambda: state["ready"], TIMEOUT)
            with users:
                with sessions:
                    pass
            done.set()

        run_threads(publisher, reader)
    g = only_guarded(rec.analyze())
    assert g["details"]["explanation"] == (
        f"ordered by the Condition 'published' notified at {line_of(publisher, '# publisher: notify')}")


def barrier_split(split: bool):
    sessions, users = two_locks()
    gate = threading.Barrier(2)

    def first():
        if split:
            with sessions:
                with users:
                    pass
        gate.wait(TIMEOUT)
        if not split:
            with sessions:
                with users:
                    pass
        time.sleep(0.2)

    def second():
        time.sleep(0.1)  # `first` waits at the barrier: second releases it
        gate.wait(TIMEOUT)
        time.sleep(0.05)
        with users:
            with sessions:
                pass

    run_threads(first, second)


@pytest.mark.parametrize("split", [True, False])
def test_inversion_split_by_a_barrier_is_guarded_and_after_it_is_not(record, split):
    with record() as rec:
        barrier_split(split)
    doc = rec.analyze()
    if split:
        g = only_guarded(doc)
        assert "Barrier" in g["details"]["explanation"]
    else:
        [f] = kinds(doc, "potential-deadlock")
        assert sorted(lk["name"] for lk in f["locks"]) == ["sessions", "users"]


def asyncio_inversion(ordered: bool):
    async def main():
        a = recorder.name(asyncio.Lock(), "sessions")
        b = recorder.name(asyncio.Lock(), "users")
        ready = asyncio.Event()
        done = asyncio.Event()

        async def login():
            if not ordered:
                ready.set()
            async with a:
                await asyncio.sleep(0)
                async with b:
                    pass
            if ordered:
                ready.set()
            await done.wait()

        async def rename():
            await ready.wait()
            if not ordered:
                await asyncio.sleep(0.05)  # after login's section: this run does not hang
            async with b:
                await asyncio.sleep(0)
                async with a:
                    pass
            done.set()

        await asyncio.wait_for(asyncio.gather(login(), rename()), TIMEOUT)

    asyncio.run(main())


def test_asyncio_inversion_ordered_by_an_event_is_guarded_and_unordered_is_not(record):
    with record() as rec:
        asyncio_inversion(ordered=True)
    doc = rec.analyze()
    assert not kinds(doc, "potential-deadlock")
    [g] = kinds(doc, "guarded-cycle")
    assert g["details"]["reason"] == "ordered"
    with record() as rec:
        asyncio_inversion(ordered=False)
    [f] = kinds(rec.analyze(), "potential-deadlock")
    assert sorted(lk["name"] for lk in f["locks"]) == ["sessions", "users"]
