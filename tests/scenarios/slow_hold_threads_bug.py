"""A threading lock held across a slow blocking call while other threads want it.

Thread ``flusher`` takes ``stats`` and, still holding it, sends the counters
over a slow (simulated, 0.3 s) network call. Three ``worker-N`` threads that
only want to bump a counter queue up on ``stats`` for the whole call.

The analyzer must report ``long-hold`` (warning) on lock ``stats`` (created
line 21), acquiring site ``flush_stats`` line 30 (~0.3 s). The contention shows
in the ``hot-lock`` statistics (info; waiting site ``record`` line 37).
Nothing deadlock-class. Exit status 0.
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
        send_to_collector(counters)  # mark: slow-call
        counters["requests"] = 0


def record(i: int) -> None:
    time.sleep(0.02)  # arrive while the flusher is sending
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
