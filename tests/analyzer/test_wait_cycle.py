"""wait-cycle on real recorded threads and event loops: a wait under a lock that the
signaller of the awaited resource takes first (must find), and the corrected
programs (must stay quiet)."""
from __future__ import annotations

import asyncio
import queue
import threading
import time

import recorder

from .conftest import kinds, line_of

TIMEOUT = 5


def sites(f: dict) -> set[str]:
    return {s["site"] for s in f["sites"]}


# --- asyncio: a task holds an asyncio.Lock and waits for an Event the setter sets under the lock ---

def _event_program(fixed: bool):
    state = recorder.name(asyncio.Lock(), "state")
    ready = recorder.name(asyncio.Event(), "ready")

    async def consumer():
        if fixed:
            try:
                await asyncio.wait_for(ready.wait(), timeout=0.3)
            except asyncio.TimeoutError:
                return False
            async with state:
                return True
        async with state:  # consumer: take state
            try:
                await asyncio.wait_for(ready.wait(), timeout=0.3)  # consumer: wait
            except asyncio.TimeoutError:
                return False
        return True

    async def producer():
        await asyncio.sleep(0.01)
        async with state:  # producer: take state
            ready.set()  # producer: set

    async def main():
        return await asyncio.wait_for(asyncio.gather(
            asyncio.create_task(consumer(), name="consumer"),
            asyncio.create_task(producer(), name="producer")), TIMEOUT)

    return main, consumer, producer


def test_asyncio_event_awaited_under_the_setters_lock_is_a_critical_wait_cycle(record):
    with record() as rec:
        main, consumer, producer = _event_program(fixed=False)
        got, _ = asyncio.run(main())
        assert got is False  # the consumer timed out: they waited on each other
    doc = rec.analyze()
    [f] = kinds(doc, "wait-cycle")
    assert f["severity"] == "critical"
    assert [lk["name"] for lk in f["locks"]] == ["state"]
    waiter, signaller = f["steps"]
    assert waiter["actor"]["name"] == "consumer" and waiter["actor"]["kind"] == "task"
    assert waiter["holds"] == [{"lock": f["locks"][0]["id"], "name": "state", "label": "state",
                                "acquired_at": line_of(consumer, "# consumer: take state")}]
    assert waiter["requests"]["name"] == "ready" and waiter["requests"]["type"] == "asyncio.Event"
    assert waiter["site"] == line_of(consumer, "# consumer: wait")
    # recorders that run wait_for's awaitable in a child task name it as `via`
    # (the committed sample trace of event_under_lock_async has one)
    assert waiter.get("via", {"kind": "task"})["kind"] == "task"
    assert signaller["actor"]["name"] == "producer"
    assert signaller["requests"]["name"] == "state"
    assert signaller["site"] == line_of(producer, "# producer: take state")
    assert signaller["signals"]["site"] == line_of(producer, "# producer: set")
    assert signaller["signals"]["sig"] == "set"
    assert sites(f) == {line_of(consumer, "# consumer: take state"), line_of(consumer, "# consumer: wait"),
                        line_of(producer, "# producer: take state"), line_of(producer, "# producer: set")}
    assert f["details"]["ended"] == "timeout"
    assert f["details"]["resource"]["name"] == "ready"
    assert f["details"]["held_lock"]["name"] == "state"
    assert f["details"]["blocked_ns"] > 0
    assert f["count"] == 1


def test_asyncio_event_awaited_before_taking_the_lock_is_quiet(record):
    with record() as rec:
        main, _, _ = _event_program(fixed=True)
        got, _ = asyncio.run(main())
        assert got is True
    assert kinds(rec.analyze(), "wait-cycle") == []


# --- threads: join a thread while holding the lock it needs ---

def _join_program(fixed: bool):
    registry = recorder.name(threading.Lock(), "registry")

    def report():
        time.sleep(0.01)
        with registry:  # reporter: take registry
            pass

    def main():
        t = threading.Thread(target=report, name="reporter", daemon=True)
        if fixed:
            t.start()
            t.join(TIMEOUT)
            with registry:
                return t.is_alive()
        with registry:  # main: take registry
            t.start()
            t.join(0.5)  # main: join
            alive = t.is_alive()
        t.join(TIMEOUT)
        return alive

    return main, report


def test_join_under_the_joined_threads_lock_is_a_critical_wait_cycle(record):
    with record() as rec:
        main, report = _join_program(fixed=False)
        assert main() is True  # the join timed out
    [f] = kinds(rec.analyze(), "wait-cycle")
    assert f["severity"] == "critical"
    assert [lk["name"] for lk in f["locks"]] == ["registry"]
    waiter, signaller = f["steps"]
    assert waiter["actor"]["name"] == "MainThread"
    assert waiter["holds"][0]["acquired_at"] == line_of(main, "# main: take registry")
    assert waiter["requests"] == {"lock": None, "resource": signaller["actor"]["id"], "name": "reporter",
                                  "type": "thread"}
    assert waiter["site"] == line_of(main, "# main: join")
    assert signaller["actor"]["name"] == "reporter"
    assert signaller["site"] == line_of(report, "# reporter: take registry")
    assert signaller["signals"]["sig"] == "end"
    assert f["details"]["ended"] == "timeout"


def test_join_before_taking_the_lock_is_quiet(record):
    with record() as rec:
        main, _ = _join_program(fixed=True)
        assert main() is False
    assert kinds(rec.analyze(), "wait-cycle") == []


# --- threads: queue.get under a lock the producer takes before put ---

def _queue_program(fixed: bool):
    books = recorder.name(threading.Lock(), "books")
    q: queue.Queue = queue.Queue()

    def producer():
        time.sleep(0.02)  # the consumer holds books by now (or soon: it waits 0.5 s)
        with books:  # producer: take books
            item = 1
        q.put(item)  # producer: put

    def consumer():
        if fixed:
            item = q.get(timeout=TIMEOUT)
            with books:
                return item
        with books:  # consumer: take books
            try:
                return q.get(timeout=0.5)  # consumer: get
            except queue.Empty:
                return None

    return producer, consumer, q


def test_queue_get_under_the_producers_lock_is_a_critical_wait_cycle(record):
    with record() as rec:
        producer, consumer, q = _queue_program(fixed=False)
        t = threading.Thread(target=producer, name="producer", daemon=True)
        t.start()
        assert consumer() is None
        t.join(TIMEOUT)
    [f] = kinds(rec.analyze(), "wait-cycle")
    assert f["severity"] == "critical"
    assert [lk["name"] for lk in f["locks"]] == ["books"]  # not the queue's own mutex
    waiter, signaller = f["steps"]
    assert waiter["site"] == line_of(consumer, "# consumer: get")
    assert waiter["requests"]["type"] == "queue.Queue"
    assert signaller["actor"]["name"] == "producer"
    assert signaller["site"] == line_of(producer, "# producer: take books")
    assert signaller["signals"]["site"] == line_of(producer, "# producer: put")
    # the recorder writes a threading queue's put as the notify of its not_empty condition
    assert signaller["signals"]["sig"] in ("put", "notify")


def test_queue_get_before_taking_the_lock_is_quiet(record):
    with record() as rec:
        producer, consumer, q = _queue_program(fixed=True)
        t = threading.Thread(target=producer, name="producer", daemon=True)
        t.start()
        assert consumer() == 1
        t.join(TIMEOUT)
    assert kinds(rec.analyze(), "wait-cycle") == []


# --- threads: Condition.wait under another lock the notifier takes first ---

def test_condition_wait_under_the_notifiers_lock_is_a_wait_cycle(record):
    with record() as rec:
        config = recorder.name(threading.Lock(), "config")
        changed = recorder.name(threading.Condition(), "changed")

        def notifier():
            time.sleep(0.02)
            with config:  # notifier: take config
                with changed:
                    changed.notify_all()  # notifier: notify

        def waiter():
            with config:  # waiter: take config
                with changed:
                    return changed.wait(timeout=0.5)  # waiter: wait

        t = threading.Thread(target=notifier, name="notifier", daemon=True)
        t.start()
        assert waiter() is False
        t.join(TIMEOUT)
    [f] = kinds(rec.analyze(), "wait-cycle")
    # the condition's own lock is released by wait(): only `config` closes the cycle
    assert [lk["name"] for lk in f["locks"]] == ["config"]
    assert f["severity"] == "critical"
    waiter_step, signal_step = f["steps"]
    assert waiter_step["requests"]["name"] == "changed"
    assert waiter_step["site"] == line_of(waiter, "# waiter: wait")
    assert signal_step["site"] == line_of(notifier, "# notifier: take config")
    assert signal_step["signals"]["site"] == line_of(notifier, "# notifier: notify")


def test_wait_cycle_not_observed_blocked_is_an_error(record):
    """This run got through because a first set() needed no lock; the worker's second
    set() comes only after taking the lock the waiter holds while waiting."""
    with record() as rec:
        books = recorder.name(threading.Lock(), "books")
        done = recorder.name(threading.Event(), "done")
        waiting = threading.Event()

        def worker():
            assert waiting.wait(TIMEOUT)
            time.sleep(0.01)
            done.set()
            time.sleep(0.02)
            with books:  # worker: take books
                done.set()  # worker: set again

        t = threading.Thread(target=worker, name="worker", daemon=True)
        t.start()
        with books:  # main: take books
            waiting.set()
            assert done.wait(TIMEOUT)  # main: wait
        t.join(TIMEOUT)
    [f] = kinds(rec.analyze(), "wait-cycle")
    assert f["severity"] == "error"
    assert f["details"]["ended"] is None
    assert [s["actor"]["name"] for s in f["steps"]] == ["MainThread", "worker"]
    assert f["steps"][0]["requests"]["name"] == "done"
    assert f["steps"][1]["site"] == line_of(worker, "# worker: take books")
    assert f["steps"][1]["signals"]["site"] == line_of(worker, "# worker: set again")


def test_lock_taken_by_the_signaller_before_it_let_the_waiter_in_is_quiet(record):
    """The worker's only use of the lock happens before it tells main to go ahead, so it
    can never need the lock while main holds it: no cycle."""
    with record() as rec:
        books = recorder.name(threading.Lock(), "books")
        done = recorder.name(threading.Event(), "done")
        took = threading.Event()

        def worker():
            with books:
                pass
            took.set()
            time.sleep(0.03)
            done.set()

        t = threading.Thread(target=worker, name="worker", daemon=True)
        t.start()
        assert took.wait(TIMEOUT)
        with books:
            assert done.wait(TIMEOUT)
        t.join(TIMEOUT)
    assert kinds(rec.analyze(), "wait-cycle") == []


# --- asyncio: a task awaits a task that needs the lock it holds ---

def test_awaiting_a_task_that_needs_the_held_lock_is_a_wait_cycle(record):
    with record() as rec:
        cache = recorder.name(asyncio.Lock(), "cache")

        async def fill():
            async with cache:  # fill: take cache
                return 1

        async def refresh():
            async with cache:  # refresh: take cache
                await asyncio.create_task(fill(), name="fill")  # refresh: await fill

        async def main():
            task = asyncio.create_task(refresh(), name="refresh")
            await asyncio.sleep(0.05)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

        asyncio.run(main())
    [f] = kinds(rec.analyze(), "wait-cycle")
    assert f["severity"] == "critical"
    assert f["details"]["ended"] == "cancelled"
    waiter, signaller = f["steps"]
    assert waiter["actor"]["name"] == "refresh"
    assert waiter["requests"] == {"lock": None, "resource": signaller["actor"]["id"], "name": "fill",
                                  "type": "task"}
    assert waiter["site"] == line_of(refresh, "# refresh: await fill")
    assert signaller["site"] == line_of(fill, "# fill: take cache")


# --- correct producer/consumer programs stay quiet ---

def test_asyncio_queue_and_condition_producer_consumer_are_quiet(record):
    with record() as rec:
        async def main():
            q: asyncio.Queue = asyncio.Queue(maxsize=2)
            cond = asyncio.Condition()
            lock = asyncio.Lock()
            items: list[int] = []

            async def produce():
                for i in range(20):
                    async with lock:
                        n = i
                    await q.put(n)
                    async with cond:
                        items.append(n)
                        cond.notify()

            async def consume():
                got = 0
                while got < 20:
                    await q.get()
                    q.task_done()
                    async with cond:
                        await cond.wait_for(lambda: items)
                        items.pop()
                    async with lock:
                        got += 1

            await asyncio.wait_for(asyncio.gather(produce(), consume()), TIMEOUT)
            await asyncio.wait_for(q.join(), TIMEOUT)

        asyncio.run(main())
    assert kinds(rec.analyze(), "wait-cycle") == []


def test_threading_condition_and_queue_producer_consumer_are_quiet(record):
    with record() as rec:
        cond = threading.Condition()
        q: queue.Queue = queue.Queue(maxsize=1)
        items: list[int] = []

        def producer():
            for i in range(30):
                q.put(i, timeout=TIMEOUT)
                with cond:
                    items.append(i)
                    cond.notify()

        def consumer():
            for _ in range(30):
                q.get(timeout=TIMEOUT)
                q.task_done()
                with cond:
                    cond.wait_for(lambda: items, timeout=TIMEOUT)
                    items.pop()

        ts = [threading.Thread(target=consumer), threading.Thread(target=producer)]
        for t in ts:
            t.start()
        q.join()
        for t in ts:
            t.join(TIMEOUT)
    assert kinds(rec.analyze(), "wait-cycle") == []


def test_wait_cycle_fingerprint_is_stable_across_runs(record):
    fingerprints = []
    for _ in range(2):
        with record() as rec:
            main, _ = _join_program(fixed=False)
            assert main() is True
        [f] = kinds(rec.analyze(), "wait-cycle")
        fingerprints.append(f["fingerprint"])
        for p in rec.out.glob("*.jsonl"):
            p.unlink()
    assert fingerprints[0] == fingerprints[1]


def test_wait_cycle_is_found_with_segment_and_thread_actors(record):
    """The pytest plugin analyzes with --actors segment; tasks are ignored with --actors thread."""
    with record() as rec:
        main, _ = _join_program(fixed=False)
        assert main() is True
    for actors in ("segment", "thread"):
        [f] = kinds(rec.analyze(actors=actors), "wait-cycle")
        assert [s["actor"]["name"] for s in f["steps"]] == ["MainThread", "reporter"]
        assert f["severity"] == "critical"
