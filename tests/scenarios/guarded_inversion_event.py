"""An inversion on `sessions` / `users` in two threads ordered by an Event (quiet).

Thread ``login`` (a server starting up) takes sessions then users, then sets the
Event ``ready``; thread ``rename`` (its client) waits for ``ready`` before it takes
users then sessions. Both threads run at once, but the Event orders the two
paths: they can never overlap.

The analyzer must not report a ``potential-deadlock``; it lists the cycle as
one ``guarded-cycle`` (info, reason: ordered by the Event ``ready``, set at line
33) on ``sessions`` (created line 23) and ``users`` (created line 24): thread
``login`` holds sessions (taken in ``login`` line 30) and requests users at
line 31; thread ``rename`` holds users (taken in ``rename`` line 38) and
requests sessions at line 39. Nothing at warning or above. Exit status 0.
"""
import sys
import threading

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

sessions = label(threading.Lock(), "sessions")  # mark: create-sessions
users = label(threading.Lock(), "users")  # mark: create-users
ready = label(threading.Event(), "ready")  # mark: create-ready


def login() -> None:
    # (the server's start-up: it configures, then says it is ready)
    with sessions:  # mark: login-sessions
        with users:  # mark: login-users
            pass
    ready.set()  # mark: login-ready


def rename() -> None:
    if ready.wait(timeout=5):  # mark: rename-wait
        with users:  # mark: rename-users
            with sessions:  # mark: rename-sessions
                pass


def main() -> int:
    threads = [threading.Thread(target=rename, name="rename", daemon=True),
               threading.Thread(target=login, name="login", daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    if any(t.is_alive() for t in threads) or not ready.is_set():
        print("unexpected: login and rename did not finish", file=sys.stderr)
        return 3
    print("done: login, then rename once it was ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
