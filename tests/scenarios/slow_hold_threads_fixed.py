"""Corrected twin of slow_hold_threads_bug.py: snapshot under the lock, send outside.

``flush_stats`` copies and resets the counters under ``stats`` and makes the
slow call with no lock held; the workers never wait behind it.

The analyzer must report no ``long-hold`` and no deadlock-class finding.

Exit status 0.
"""
import sys
import threading
import time

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

stats_lock = label(threading.Lock(), "stats")  # mark: create-stats
counters: dict[str, int] = {"requests": 0}


def send_to_collector(snapshot: dict[str, int]) -> None:
    time.sleep(0.3)  # a slow blocking network call


def flush_stats() -> None:
    with stats_lock:  # mark: flush-acquire
        snapshot = dict(counters)
        counters["requests"] = 0
    send_to_collector(snapshot)  # mark: slow-call


def record(i: int) -> None:
    time.sleep(0.02)
    with stats_lock:  # mark: record-acquire
        counters["requests"] += 1


def main() -> int:
    threads = [threading.Thread(target=flush_stats, name="flusher", daemon=True)]
    threads += [threading.Thread(target=record, args=(i,), name=f"worker-{i}", daemon=True)
                for i in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    if any(t.is_alive() for t in threads):
        print("unexpected: threads did not finish", file=sys.stderr)
        return 3
    print(f"done: {counters['requests']} requests recorded since the flush")
    return 0


if __name__ == "__main__":
    sys.exit(main())
