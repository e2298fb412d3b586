"""An inversion on `sessions` / `users` inside one thread (quiet).

The main thread runs ``login`` (sessions then users) and later ``rename``
(users then sessions). Only one thread ever takes these locks, so the two
orders can never run at the same time.

The analyzer must not report a ``potential-deadlock``; it lists the cycle as
one ``guarded-cycle`` (info, reason: a single thread) on ``sessions`` (created
line 22) and ``users`` (created line 23): thread ``MainThread`` holds sessions
(taken in ``login`` line 27) and requests users at line 28, and holds users
(taken in ``rename`` line 33) and requests sessions at line 34. Nothing at
warning or above. Exit status 0.
"""
import sys
import threading

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

sessions = label(threading.Lock(), "sessions")  # mark: create-sessions
users = label(threading.Lock(), "users")  # mark: create-users


def login() -> None:
    with sessions:  # mark: login-sessions
        with users:  # mark: login-users
            pass


def rename() -> None:
    with users:  # mark: rename-users
        with sessions:  # mark: rename-sessions
            pass


def main() -> int:
    login()
    rename()
    print("done: login and rename both ran in the main thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
