"""A real deadlock: two threads hang on `sessions` and `users` until the program gives up.

``login`` takes sessions, ``rename`` takes users; a barrier makes sure both hold
their first lock before either asks for the second, so they deadlock in every
run. The threads are daemons: ``main`` waits 1 s, reports the hang and exits,
leaving both threads blocked (the trace ends with their waits open).

The analyzer must report exactly one ``deadlock`` (critical, lasted until the
end of the trace) on ``sessions`` (created line 27) and ``users`` (created
line 28): thread ``login`` holds sessions (taken in ``login`` line 33) and
waits for users at line 35; thread ``rename`` holds users (taken in ``rename``
line 40) and waits for sessions at line 42. Reported once, as ``deadlock``
(not also as ``potential-deadlock`` or ``stalled``); ``long-hold`` on the two
locks may be reported too.

Exit status 0 after printing "deadlock detected" (3 if it did not deadlock).
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
both_hold_one = threading.Barrier(2, timeout=5)  # makes the bad interleaving certain


def login() -> None:
    with sessions:  # mark: login-sessions
        both_hold_one.wait()
        with users:  # mark: login-users
            pass


def rename() -> None:
    with users:  # mark: rename-users
        both_hold_one.wait()
        with sessions:  # mark: rename-sessions
            pass


def main() -> int:
    threads = [threading.Thread(target=login, name="login", daemon=True),
               threading.Thread(target=rename, name="rename", daemon=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 1.0
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))  # mark: main-join
    if all(t.is_alive() for t in threads):
        print("deadlock detected: login and rename are stuck; giving up")
        return 0
    print("unexpected: the threads did not deadlock", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
