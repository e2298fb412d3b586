"""Corrected twin of deadlock_threads_bug.py: both threads take sessions before users.

Same program and the same barrier, but ``rename`` now takes sessions first too:
whoever gets sessions first finishes, the other follows. (The barrier is
passed before the second lock is requested, so it cannot be part of a hang.)

The analyzer must report no deadlock-class finding and nothing at warning or
above.

Exit status 0.
"""
import sys
import threading

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

sessions = label(threading.Lock(), "sessions")  # mark: create-sessions
users = label(threading.Lock(), "users")  # mark: create-users
both_started = threading.Barrier(2, timeout=5)


def login() -> None:
    both_started.wait()
    with sessions:  # mark: login-sessions
        with users:  # mark: login-users
            pass


def rename() -> None:
    both_started.wait()
    with sessions:  # mark: rename-sessions
        with users:  # mark: rename-users
            pass


def main() -> int:
    threads = [threading.Thread(target=login, name="login", daemon=True),
               threading.Thread(target=rename, name="rename", daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)  # mark: main-join
    if any(t.is_alive() for t in threads):
        print("unexpected: login and rename did not finish", file=sys.stderr)
        return 3
    print("done: login and rename both finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
