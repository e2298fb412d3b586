"""A busy, correct service: thread pool, logging, queue.Queue and a Condition (quiet).

The main thread produces 60 requests into a ``queue.Queue``; two dispatcher
threads take them off the queue and run them on a ``ThreadPoolExecutor`` of
four workers; handlers log through ``logging``, bump shared counters under
``stats`` and record results under the ``results`` Condition, which the main
thread waits on until every request is done. Shutdown is orderly (one sentinel
per dispatcher, pool shut down, every thread joined), so no wait is left open.
Locks are only ever nested one way (``stats`` is never held while taking
``results`` or the reverse), and no lock is held for long.

The analyzer must report no deadlock-class finding, no ``wait-cycle``,
``stalled``, ``long-hold`` or ``acquire-timeout``: nothing at warning or above
(only ``hot-lock`` statistics).

Exit status 0.
"""
import io
import logging
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

REQUESTS = 60
DISPATCHERS = 2

log = logging.getLogger("busy-service")
stats_lock = label(threading.Lock(), "stats")  # mark: create-stats
results_ready = label(threading.Condition(label(threading.Lock(), "results")), "results-ready")  # mark: create-results
stats = {"handled": 0, "bytes": 0}
results: dict[int, int] = {}
requests: queue.Queue = label(queue.Queue(maxsize=32), "requests")  # mark: create-queue


def handle(request_id: int) -> int:
    """The request handler, run on the pool."""
    payload = f"request {request_id}".encode() * 10
    time.sleep(0.002)  # I/O
    log.info("handled request %d (%d bytes)", request_id, len(payload))
    with stats_lock:  # mark: handle-stats
        stats["handled"] += 1
        stats["bytes"] += len(payload)
    return len(payload)


def dispatch(pool: ThreadPoolExecutor) -> None:
    """Take requests off the queue, run them on the pool, publish the results."""
    while True:
        request_id = requests.get()  # mark: dispatch-get
        try:
            if request_id is None:
                return
            size = pool.submit(handle, request_id).result(timeout=5)
            with results_ready:  # mark: dispatch-results
                results[request_id] = size
                results_ready.notify_all()
        finally:
            requests.task_done()


def main() -> int:
    logging.basicConfig(stream=io.StringIO(), level=logging.INFO,
                        format="%(threadName)s %(message)s")
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="pool") as pool:
        dispatchers = [threading.Thread(target=dispatch, args=(pool,), name=f"dispatcher-{n}",
                                        daemon=True) for n in range(1, DISPATCHERS + 1)]
        for t in dispatchers:
            t.start()
        for request_id in range(REQUESTS):
            requests.put(request_id, timeout=5)  # mark: main-put
        with results_ready:  # mark: main-results
            all_done = results_ready.wait_for(lambda: len(results) == REQUESTS, timeout=10)  # mark: main-wait
        for _ in dispatchers:
            requests.put(None, timeout=5)
        requests.join()
        for t in dispatchers:
            t.join(timeout=5)
    with stats_lock:  # mark: main-stats
        handled = stats["handled"]
    if not all_done or handled != REQUESTS or any(t.is_alive() for t in dispatchers):
        print(f"unexpected: handled {handled} of {REQUESTS}", file=sys.stderr)
        return 3
    print(f"done: {handled} requests handled by a pool of 4")
    return 0


if __name__ == "__main__":
    sys.exit(main())
