"""A task waits on an event while holding the lock the setter needs (asyncio).

Task ``consumer`` takes ``state`` and, still holding it, waits for the event
``ready``. Task ``producer`` can only set ``ready`` after taking ``state``.
They wait on each other in a circle until the consumer's ``asyncio.wait_for``
gives up after 0.5 s; then the producer gets the lock and sets the event.

The analyzer must report exactly one ``wait-cycle`` (critical: it was observed
blocked until the timeout) on asyncio lock ``state`` (created line 24) and the
asyncio.Event ``ready`` (created line 25): task ``consumer`` holds state (taken
in ``consumer`` line 29) and waits for ready at line 31; task ``producer``
takes state in ``producer`` line 40 before it sets ready at line 41.
``held-across-await`` and ``long-hold`` on ``state`` (line 29) may be reported
too. Exit status 0.
"""
import asyncio
import sys

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

state_lock = label(asyncio.Lock(), "state")  # mark: create-state
ready = label(asyncio.Event(), "ready")  # mark: create-ready


async def consumer() -> bool:
    async with state_lock:  # mark: consumer-acquire
        try:
            await asyncio.wait_for(ready.wait(), timeout=0.5)  # mark: consumer-wait
        except asyncio.TimeoutError:
            print("consumer: gave up waiting for ready")
            return False
    return True


async def producer() -> None:
    await asyncio.sleep(0.01)  # the consumer is already waiting
    async with state_lock:  # mark: producer-acquire
        ready.set()  # mark: producer-set


async def amain() -> int:
    tasks = [asyncio.create_task(consumer(), name="consumer"),
             asyncio.create_task(producer(), name="producer")]
    got_ready, _ = await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    if got_ready:
        print("unexpected: consumer saw the event", file=sys.stderr)
        return 3
    print("done: the producer could set ready only after the consumer timed out")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
