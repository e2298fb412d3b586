"""Corrected twin of keyed_locks_bug.py: the per-key locks are taken in sorted key order.

Same program, but ``transfer`` locks the accounts in ``sorted(keys)`` order, so
every thread takes account:alice before account:bob. All transfers start at once.

The analyzer must report no deadlock-class finding and nothing at warning or
above.

Exit status 0.
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


def transfer(keys: list[str]) -> None:
    with slots:  # mark: slots-acquire
        held = []
        try:
            for key in sorted(keys):  # one global order
                lock = lock_for(key)
                lock.acquire()  # mark: account-acquire
                held.append(lock)
            time.sleep(0.001)  # move the money
        finally:
            for lock in reversed(held):
                lock.release()


def main() -> int:
    plans = [["alice", "bob"], ["bob", "alice"], ["carol", "dave"], ["dave", "alice", "carol"]]
    threads = [threading.Thread(target=transfer, args=(keys,), name=f"transfer-{n}", daemon=True)
               for n, keys in enumerate(plans, start=1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    if any(t.is_alive() for t in threads):
        print("unexpected: the transfers did not finish", file=sys.stderr)
        return 3
    print("done: four transfers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
