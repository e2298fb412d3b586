"""Correct programs built on the standard library must produce no warning or error."""
from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading

from analyzer.findings import at_or_above

TIMEOUT = 5


def noisy(doc: dict) -> list[dict]:
    return [f for f in doc["findings"] if at_or_above(f["severity"], "warning")]


def test_condition_producer_consumer_is_quiet(record):
    with record() as rec:
        cond = threading.Condition()
        items: list[int] = []

        def producer():
            for i in range(50):
                with cond:
                    items.append(i)
                    cond.notify()

        def consumer():
            got = 0
            while got < 50:
                with cond:
                    if not cond.wait_for(lambda: items, timeout=TIMEOUT):
                        return
                    got += len(items)
                    items.clear()

        ts = [threading.Thread(target=consumer), threading.Thread(target=producer)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(TIMEOUT)
    doc = rec.analyze()
    assert noisy(doc) == []
    assert not [f for f in doc["findings"] if f["kind"] == "guarded-cycle"]
    assert doc["trace"]["events"] > 100


def test_queue_producer_consumer_is_quiet(record):
    with record() as rec:
        q: queue.Queue = queue.Queue(maxsize=4)

        def producer():
            for i in range(100):
                q.put(i, timeout=TIMEOUT)
            q.put(None, timeout=TIMEOUT)

        def consumer():
            while q.get(timeout=TIMEOUT) is not None:
                q.task_done()

        ts = [threading.Thread(target=producer), threading.Thread(target=consumer)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(TIMEOUT)
    assert noisy(rec.analyze()) == []


def test_thread_pool_with_logging_is_quiet(record, tmp_path):
    with record() as rec:
        log = logging.getLogger("lockscope-test-pool")
        handler = logging.FileHandler(tmp_path / "pool.log")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        shared = threading.Lock()
        total = [0]

        def work(i):
            log.info("job %d", i)
            with shared:
                total[0] += i
            return i

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            assert sum(pool.map(work, range(40), timeout=TIMEOUT)) == sum(range(40))
        log.removeHandler(handler)
        handler.close()
    doc = rec.analyze()
    assert noisy(doc) == []
    assert not [f for f in doc["findings"] if f["kind"] in ("potential-deadlock", "guarded-cycle")]
