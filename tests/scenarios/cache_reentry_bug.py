"""`get_or_compute` re-enters the non-reentrant cache lock via `compute_and_cache`.

``get_or_compute`` holds ``cache`` while it calls ``compute_and_cache``, which
takes ``cache`` again. With a plain ``threading.Lock`` that is a self-deadlock;
here the inner acquire carries a defensive 0.2 s timeout, so the call fails
with ``TimeoutError`` instead of hanging, and the program carries on (the
failure is caught and logged, as a service would).

The analyzer must report exactly one ``acquire-timeout`` (warning: the acquire
gave up, so nothing deadlocked; a ``self-deadlock`` is a wait that never ended)
on lock ``cache`` (created line 26), thread ``MainThread``: requested again in
``compute_and_cache`` line 45 while held since ``get_or_compute`` line 35, and
it says the waiter held the lock itself (a recursive acquire); a ``long-hold``
of ``cache`` at line 35 (held ~0.2 s) may be reported too.

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
    with cache_lock:  # mark: outer-acquire
        if key in cache:
            return cache[key]
        return compute_and_cache(key)  # mark: call-inner


def compute_and_cache(key: str) -> int:
    """Compute the value and store it. Called from get_or_compute: re-enters the lock."""
    value = expensive(key)
    # The author's defensive timeout turns a hang into an error.
    if not cache_lock.acquire(timeout=0.2):  # mark: inner-acquire
        raise TimeoutError("cache lock busy")
    try:
        cache[key] = value
    finally:
        cache_lock.release()
    return value


def main() -> int:
    try:
        get_or_compute("user:42")
    except TimeoutError as exc:
        print(f"get_or_compute failed: {exc}")
        return 0
    print("unexpected: get_or_compute succeeded", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
