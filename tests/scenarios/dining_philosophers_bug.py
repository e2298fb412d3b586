"""Dining philosophers: three forks created on one line, each philosopher left then right.

Philosopher ``i`` takes fork ``i`` then fork ``(i + 1) % 3``, so the lock-order
graph has the cycle fork-0 -> fork-1 -> fork-2 -> fork-0. The philosophers are
all alive at once but sit down 150 ms apart, so this run does not hang.

The analyzer must report exactly one ``potential-deadlock`` (error), a cycle of
three lock instances all created on line 25 (``fork-0``, ``fork-1``,
``fork-2``): each of the threads ``philosopher-0/1/2`` holds its left fork
(taken in ``philosopher`` line 33) and requests its right fork in
``philosopher`` line 34. (With ``--group-by site`` the three forks are one lock
class.)

Exit status 0; 3 if the stagger failed and the philosophers deadlocked.
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
    left, right = forks[i], forks[(i + 1) % 3]
    time.sleep(0.15 * i)  # sit down one after the other
    with left:  # mark: take-left
        with right:  # mark: take-right
            time.sleep(0.001)  # eat
    time.sleep(0.4 - 0.15 * i)  # think: everyone is still at the table


def main() -> int:
    threads = [threading.Thread(target=philosopher, args=(i,), name=f"philosopher-{i}", daemon=True)
               for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    if any(t.is_alive() for t in threads):
        print("unexpected: the philosophers deadlocked", file=sys.stderr)
        return 3
    print("done: every philosopher ate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
