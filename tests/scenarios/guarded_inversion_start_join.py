"""An inversion on `sessions` / `users` in two threads ordered by start/join (quiet).

``main`` starts thread ``login`` (sessions then users) and joins it before it
starts thread ``rename`` (users then sessions). The join orders the two threads:
they can never run at the same time.

The analyzer must not report a ``potential-deadlock``; it lists the cycle as
one ``guarded-cycle`` (info, reason: ordered by start/join) on ``sessions``
(created line 22) and ``users`` (created line 23): thread ``login`` holds
sessions (taken in ``login`` line 27) and requests users at line 28; thread
``rename`` holds users (taken in ``rename`` line 33) and requests sessions at
line 34. Nothing at warning or above. Exit status 0.
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
    for target in (login, rename):
        t = threading.Thread(target=target, name=target.__name__, daemon=True)
        t.start()  # mark: main-start
        t.join(timeout=5)  # mark: main-join
        if t.is_alive():
            print(f"unexpected: {t.name} did not finish", file=sys.stderr)
            return 3
    print("done: login, then rename")
    return 0


if __name__ == "__main__":
    sys.exit(main())
