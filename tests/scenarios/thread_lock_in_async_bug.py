"""A threading lock held across an await freezes the whole event loop.

Task ``flusher`` takes the *threading* lock ``metrics`` and awaits while holding
it. Task ``collector`` then wants ``metrics`` on the same event-loop thread: a
threading lock blocks the thread, so the loop stops and ``flusher`` can never
run to release it. Only the 0.2 s timeout on the acquire un-freezes the loop
(with a plain ``with metrics_lock:`` the program would hang forever).

The analyzer must report ``held-across-await`` with severity error (a threading
lock, and another task on the same loop thread blocked on it: the loop froze) on
lock ``metrics`` (created line 25): task ``flusher`` took it in ``flush`` line
30; task ``collector`` blocked on it in ``collect`` line 37. The timed-out
acquire and the long hold may be reported too (``acquire-timeout``,
``long-hold``). Exit status 0.
"""
import asyncio
import sys
import threading

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

metrics_lock = label(threading.Lock(), "metrics")  # mark: create-metrics
metrics: dict[str, int] = {"requests": 7}


async def flush() -> None:
    with metrics_lock:  # mark: flush-acquire
        await asyncio.sleep(0.05)  # mark: flush-await
        metrics["requests"] = 0


async def collect() -> bool:
    await asyncio.sleep(0.01)  # the flusher is at its await
    if not metrics_lock.acquire(timeout=0.2):  # mark: collect-acquire
        print("collector: the event loop was frozen for 0.2 s; gave up")
        return False
    try:
        metrics["requests"] += 1
    finally:
        metrics_lock.release()
    return True


async def amain() -> int:
    tasks = [asyncio.create_task(flush(), name="flusher"),
             asyncio.create_task(collect(), name="collector")]
    _, collected = await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    if collected:
        print("unexpected: the collector got the lock", file=sys.stderr)
        return 3
    print("done: the loop recovered after the collector's timeout")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
