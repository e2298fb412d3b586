"""Issue 16: what a thread or task waits on (events, queues, conditions, futures) reads
like the locks do: named from the line that made it (`ready`, `Worker.jobs`), and
distinct objects with one such name told apart (`Worker.jobs#1`, `#2`), so no two
resources of one report print the same label.

Real threads and real event loops, recorded; nothing is named by the program."""
from __future__ import annotations

import asyncio
import queue
import threading
import time

from .conftest import kinds, line_of

TIMEOUT = 5


class Worker:
    def __init__(self) -> None:
        self.jobs: queue.Queue = queue.Queue()


class Pipeline:
    def __init__(self) -> None:
        self.inbox: asyncio.Queue = asyncio.Queue()


def _threads_program(stuck: list):
    state_lock = threading.Lock()
    ready = threading.Event()
    workers = [Worker(), Worker()]

    def waiter():
        with state_lock:
            ready.wait(0.3)  # waiter: wait

    def setter():
        time.sleep(0.05)
        with state_lock:
            ready.set()

    def idle(worker: Worker):
        worker.jobs.get()  # idle: get

    def flush(worker: Worker):
        worker.jobs.put("job")
        worker.jobs.join()  # flush: join (nobody calls task_done)

    threads = [threading.Thread(target=waiter, name="waiter"), threading.Thread(target=setter, name="setter")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    for i, w in enumerate(workers):  # both wait for an item until the recording stops
        stuck.append((w, threading.Thread(target=idle, args=(w,), name=f"idle-{i}", daemon=True)))
        stuck[-1][1].start()
    time.sleep(0.1)
    third = Worker()
    stuck.append((third, threading.Thread(target=flush, args=(third,), name="flush", daemon=True)))
    stuck[-1][1].start()
    time.sleep(0.1)
    return waiter, idle, flush


def test_an_event_and_two_queues_are_named_from_their_creation_lines(record):
    stuck: list = []
    try:
        with record() as rec:
            waiter, idle, flush = _threads_program(stuck)
    finally:
        for w, t in stuck:
            w.jobs.put(None)
            while w.jobs.unfinished_tasks:
                w.jobs.task_done()
            t.join(TIMEOUT)
    doc = rec.analyze()
    [cycle] = kinds(doc, "wait-cycle")
    assert cycle["title"] == "Wait cycle: waits for ready while holding 'state_lock', which its signaller needs"
    assert cycle["message"].startswith(
        f"thread 'waiter' waits for threading.Event 'ready' at {line_of(waiter, '# waiter: wait')} "
        "while holding 'state_lock'")
    assert cycle["steps"][0]["requests"]["name"] == "ready"
    get_at = line_of(idle, "# idle: get")
    stalls = sorted(kinds(doc, "stalled"), key=lambda f: f["title"])
    assert [f["title"] for f in stalls] == [
        f"Stalled: wait for queue.Queue 'Worker.jobs#1' (for an item) at {get_at} never ended",
        f"Stalled: wait for queue.Queue 'Worker.jobs#2' (for an item) at {get_at} never ended",
        f"Stalled: wait for queue.Queue 'Worker.jobs#3' (join: until every task is done) at "
        f"{line_of(flush, '# flush: join')} never ended",
    ]
    # the first queue made is #1, and it is the one thread idle-0 waits on
    assert [[a["name"] for a in f["threads"]] for f in stalls] == [["idle-0"], ["idle-1"], ["flush"]]
    assert [f["steps"][0]["requests"]["name"] for f in stalls] == ["Worker.jobs#1", "Worker.jobs#2",
                                                                   "Worker.jobs#3"]


def _asyncio_program():
    async def main():
        lock = asyncio.Lock()
        ready = asyncio.Event()
        pipelines = [Pipeline(), Pipeline()]
        inbox = pipelines[1].inbox
        await pipelines[0].inbox.put("warm-up")
        await pipelines[0].inbox.get()

        async def consumer():
            async with lock:
                try:
                    await asyncio.wait_for(ready.wait(), 0.3)  # consumer: wait ready
                except asyncio.TimeoutError:
                    pass
                try:
                    await asyncio.wait_for(inbox.get(), 0.3)  # consumer: wait inbox
                except asyncio.TimeoutError:
                    pass

        async def producer():
            await asyncio.sleep(0.05)
            async with lock:
                ready.set()
                await inbox.put("job")

        await asyncio.gather(asyncio.create_task(consumer(), name="consumer"),
                             asyncio.create_task(producer(), name="producer"))
    return main


def test_asyncio_event_and_queue_of_the_second_pipeline(record):
    with record() as rec:
        main = _asyncio_program()
        asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    doc = rec.analyze()
    cycles = kinds(doc, "wait-cycle")
    waited = {c["steps"][0]["requests"]["name"]: c for c in cycles}
    assert sorted(waited) == ["Pipeline.inbox#2", "ready"]
    assert "task 'consumer' waits for asyncio.Event 'ready' at " in waited["ready"]["message"]
    assert ("task 'consumer' waits for asyncio.Queue 'Pipeline.inbox#2' (for an item) at "
            in waited["Pipeline.inbox#2"]["message"])
    assert waited["Pipeline.inbox#2"]["title"] == (
        "Wait cycle: waits for Pipeline.inbox#2 while holding 'lock', which its signaller needs")


def _row(run, id_, type_, *, name=None, expr=None, owner=None, lock=None, ts=0, site="a.py:1", lib=None):
    return {"run": run, "id": id_, "type": type_, "name": name, "expr": expr, "lib": lib, "owner": owner,
            "lock": lock, "ts": ts, "created_at": site, "made_by": None}


def test_labels_are_distinct_from_each_other_and_from_unrelated_locks():
    from analyzer.context import resource_labels

    rows = [
        _row("r", 10, "asyncio.Queue", expr="q", ts=1),
        _row("r", 11, "asyncio.Queue", expr="q", owner=10, ts=1),  # a side of queue 10
        _row("r", 12, "asyncio.Queue", expr="q", owner=10, ts=1),
        _row("r", 20, "threading.Condition", expr="cond", lock=5, ts=2),  # its own lock is 'cond'
        _row("r", 30, "threading.Event", expr="a", ts=3),  # an unrelated lock is 'a'
        _row("r", 40, "threading.Event", ts=4, site="app/x.py:7"),
        _row("r", 41, "threading.Event", ts=5, site="app/x.py:7"),
        _row("s", 40, "threading.Event", name="given", ts=6),
    ]
    labels = resource_labels(rows, {1: "cond", 2: "a"}, {("r", 5): 1})
    assert labels == {
        ("r", 10): "q", ("r", 11): "q", ("r", 12): "q", ("r", 20): "cond", ("r", 30): "a#1",
        ("r", 40): "Event#1@x.py:7", ("r", 41): "Event#2@x.py:7", ("s", 40): "given",
    }
