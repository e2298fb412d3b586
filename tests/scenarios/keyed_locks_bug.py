"""Per-key locks taken over a dynamic set of keys, in caller order, under a semaphore.

``transfer(keys)`` admits at most two transfers at a time (``transfer-slots``, a
BoundedSemaphore(2), which is no mutual exclusion) and then locks every account
it touches, in the order the caller listed them. The per-account locks are
created on demand, all on one line (line 36). ``transfer-1`` locks
alice then bob, ``transfer-2`` bob then alice (150 ms later, so this run does
not hang), ``transfer-3`` carol then dave.

The analyzer must report exactly one ``potential-deadlock`` (error) on
``account:alice`` and ``account:bob`` (both created in ``lock_for`` line 36):
thread ``transfer-1`` holds account:alice and requests account:bob, thread
``transfer-2`` holds account:bob and requests account:alice, every acquire in
``transfer`` line 47. The semaphore does not guard it. Exit status 0; 3 if
the stagger failed.
"""
import sys
import threading
import time

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

slots = label(threading.BoundedSemaphore(2), "transfer-slots")  # mark: create-slots
registry_lock = label(threading.Lock(), "account-registry")  # mark: create-registry
account_locks: dict[str, threading.Lock] = {}


def lock_for(key: str) -> threading.Lock:
    """The lock of one account, created the first time it is needed."""
    with registry_lock:  # mark: registry-acquire
        lock = account_locks.get(key)
        if lock is None:
            lock = account_locks[key] = label(threading.Lock(), f"account:{key}")  # mark: create-account
        return lock


def transfer(keys: list[str], delay: float) -> None:
    time.sleep(delay)
    with slots:  # mark: slots-acquire
        held = []
        try:
            for key in keys:  # bug: caller order
                lock = lock_for(key)
                lock.acquire()  # mark: account-acquire
                held.append(lock)
            time.sleep(0.001)  # move the money
        finally:
            for lock in reversed(held):
                lock.release()
    time.sleep(0.3 - delay)  # stay alive: the transfers overlap in time


def main() -> int:
    plans = [(["alice", "bob"], 0.0), (["bob", "alice"], 0.15), (["carol", "dave"], 0.05)]
    threads = [threading.Thread(target=transfer, args=plan, name=f"transfer-{n}", daemon=True)
               for n, plan in enumerate(plans, start=1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    if any(t.is_alive() for t in threads):
        print("unexpected: the transfers deadlocked", file=sys.stderr)
        return 3
    print("done: three transfers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
