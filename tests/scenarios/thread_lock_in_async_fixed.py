"""Corrected twin of thread_lock_in_async_bug.py: never await while holding the threading lock.

``flush`` swaps the counters out under ``metrics`` with no await inside the
critical section, then awaits the (simulated) send with no lock held.
``collect`` gets the lock at once.

The analyzer must report no ``held-across-await``, no ``acquire-timeout``, no
``long-hold`` and nothing at warning or above.

Exit status 0.
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
        snapshot = dict(metrics)
        metrics["requests"] = 0
    await asyncio.sleep(0.05)  # mark: flush-await
    del snapshot  # sent


async def collect() -> bool:
    await asyncio.sleep(0.01)
    if not metrics_lock.acquire(timeout=0.2):  # mark: collect-acquire
        print("collector: gave up")
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
    if not collected:
        print("unexpected: the collector did not get the lock", file=sys.stderr)
        return 3
    print("done: the collector got the lock at once")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
