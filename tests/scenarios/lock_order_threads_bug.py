"""Two code paths take `sessions` and `users` in opposite orders (threads).

``login`` takes sessions then users; ``rename`` takes users then sessions. Both
threads are alive at the same time and nothing orders them, but ``rename`` starts
its critical section 200 ms after ``login`` finished its own, so this run does
not hang. A different schedule would deadlock.

The analyzer must report exactly one ``potential-deadlock`` (error) on the locks
``sessions`` (created line 27) and ``users`` (created line 28):

* thread ``login``: holds sessions (taken in ``login`` line 33), requests users
  in ``login`` line 35;
* thread ``rename``: holds users (taken in ``rename`` line 42), requests sessions
  in ``rename`` line 43.

Exit status 0; 3 if the stagger failed and the threads really deadlocked.
"""
import sys
import threading
import time

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

sessions = label(threading.Lock(), "sessions")  # mark: create-sessions
users = label(threading.Lock(), "users")  # mark: create-users


def login():
    """Open a session for a user, then touch the user's record."""
    with sessions:  # mark: login-sessions
        time.sleep(0.001)
        with users:  # mark: login-users
            pass
    time.sleep(0.3)  # keep working: the thread is still alive when rename runs


def rename():
    time.sleep(0.2)  # arrive after login's critical section
    with users:  # mark: rename-users
        with sessions:  # mark: rename-sessions
            pass


def main() -> int:
    threads = [threading.Thread(target=login, name="login", daemon=True),
               threading.Thread(target=rename, name="rename", daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    if any(t.is_alive() for t in threads):
        print("unexpected: login and rename deadlocked", file=sys.stderr)
        return 3
    print("done: login and rename both finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
