"""Corrected twin of lock_order_threads_bug.py: one helper takes both locks.

Every code path that needs `sessions` and `users` goes through
``sessions_and_users()``, which always takes sessions (line 28) before users
(line 29). The threads run at the same time with no stagger at all.

The analyzer must report no deadlock-class finding (no ``potential-deadlock``,
``deadlock``, ``guarded-cycle``), and nothing at warning or above.

Exit status 0.
"""
import sys
import threading
from contextlib import contextmanager

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

sessions = label(threading.Lock(), "sessions")  # mark: create-sessions
users = label(threading.Lock(), "users")  # mark: create-users


@contextmanager
def sessions_and_users():
    """The one place that takes both locks, always sessions first."""
    with sessions:  # mark: helper-sessions
        with users:  # mark: helper-users
            yield


def login():
    for _ in range(20):
        with sessions_and_users():
            pass


def rename():
    for _ in range(20):
        with sessions_and_users():
            pass


def main() -> int:
    threads = [threading.Thread(target=login, name="login", daemon=True),
               threading.Thread(target=rename, name="rename", daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    if any(t.is_alive() for t in threads):
        print("unexpected: login and rename did not finish", file=sys.stderr)
        return 3
    print("done: login and rename both finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
