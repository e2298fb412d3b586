"""Corrected twin of event_under_lock_async_bug.py: wait first, then take the lock.

``consumer`` waits for ``ready`` with no lock held and takes ``state`` only
afterwards; ``producer`` takes ``state``, updates and sets ``ready``.

The analyzer must report no ``wait-cycle``, no ``held-across-await``, no
``long-hold`` and no deadlock-class finding.

Exit status 0.
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
    try:
        await asyncio.wait_for(ready.wait(), timeout=0.5)  # mark: consumer-wait
    except asyncio.TimeoutError:
        print("consumer: gave up waiting for ready")
        return False
    async with state_lock:  # mark: consumer-acquire
        return True


async def producer() -> None:
    await asyncio.sleep(0.01)
    async with state_lock:  # mark: producer-acquire
        ready.set()  # mark: producer-set


async def amain() -> int:
    tasks = [asyncio.create_task(consumer(), name="consumer"),
             asyncio.create_task(producer(), name="producer")]
    got_ready, _ = await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    if not got_ready:
        print("unexpected: consumer timed out", file=sys.stderr)
        return 3
    print("done: the consumer saw ready")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
