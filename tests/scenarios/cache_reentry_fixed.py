"""Corrected twin of cache_reentry_bug.py: check, compute unlocked, then cache.

``get_or_compute`` looks the key up under ``cache``, releases it, computes the
value with no lock held, and takes ``cache`` again only to store the result
(``setdefault``, so a concurrent computation of the same key is harmless).
Two threads call it for overlapping keys.

The analyzer must report no ``self-deadlock``, no deadlock-class finding and
nothing at warning or above.

Exit status 0.
"""
import sys
import threading

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

cache_lock = label(threading.Lock(), "cache")  # mark: create-cache
cache: dict[str, int] = {}


def expensive(key: str) -> int:
    return sum(ord(c) for c in key) * 1000


def get_or_compute(key: str) -> int:
    with cache_lock:  # mark: check
        if key in cache:
            return cache[key]
    value = expensive(key)  # no lock held while computing
    with cache_lock:  # mark: store
        return cache.setdefault(key, value)


def worker(keys: list[str]) -> None:
    for key in keys:
        get_or_compute(key)


def main() -> int:
    threads = [threading.Thread(target=worker, args=(["user:1", "user:2", "user:3"],), name="worker-1", daemon=True),
               threading.Thread(target=worker, args=(["user:3", "user:2", "user:1"],), name="worker-2", daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    if any(t.is_alive() for t in threads) or len(cache) != 3:
        print("unexpected: workers did not finish", file=sys.stderr)
        return 3
    print(f"done: {len(cache)} values cached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
