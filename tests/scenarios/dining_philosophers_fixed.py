"""Corrected twin of dining_philosophers_bug.py: forks are taken in index order.

Each philosopher takes the lower-numbered of its two forks first, so philosopher
2 takes fork-0 before fork-2 and the lock-order graph has no cycle. They all
sit down at once and eat three times each, without any stagger.

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

forks = [threading.Lock() for _ in range(3)]  # mark: create-forks
for i, fork in enumerate(forks):
    label(fork, f"fork-{i}")


def philosopher(i: int) -> None:
    first, second = sorted((i, (i + 1) % 3))
    for _ in range(3):
        with forks[first]:  # mark: take-first
            with forks[second]:  # mark: take-second
                time.sleep(0.001)  # eat
        time.sleep(0.001)  # think


def main() -> int:
    threads = [threading.Thread(target=philosopher, args=(i,), name=f"philosopher-{i}", daemon=True)
               for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    if any(t.is_alive() for t in threads):
        print("unexpected: the philosophers did not finish", file=sys.stderr)
        return 3
    print("done: every philosopher ate three times")
    return 0


if __name__ == "__main__":
    sys.exit(main())
