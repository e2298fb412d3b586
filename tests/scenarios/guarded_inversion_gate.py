"""An inversion on `sessions` / `users` protected by a common gate lock (quiet).

``login`` takes sessions then users and ``rename`` users then sessions, both
running at once and repeatedly, but each path first takes ``gate``, so the two
inner orders can never interleave and the program cannot deadlock.

The analyzer must not report a ``potential-deadlock``; it lists the cycle as
one ``guarded-cycle`` (info, reason: gate lock ``gate``, created line 22) on
``sessions`` (line 23) and ``users`` (line 24): thread ``login`` holds gate and
sessions (taken in ``login`` lines 29 and 30) and requests users at line 31;
thread ``rename`` holds gate and users (taken in ``rename`` lines 37 and 38) and
requests sessions at line 39. Nothing at warning or above. Exit status 0.
"""
import sys
import threading

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

gate = label(threading.Lock(), "gate")  # mark: create-gate
sessions = label(threading.Lock(), "sessions")  # mark: create-sessions
users = label(threading.Lock(), "users")  # mark: create-users


def login() -> None:
    for _ in range(20):
        with gate:  # mark: login-gate
            with sessions:  # mark: login-sessions
                with users:  # mark: login-users
                    pass


def rename() -> None:
    for _ in range(20):
        with gate:  # mark: rename-gate
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
        print("unexpected: login and rename did not finish", file=sys.stderr)
        return 3
    print("done: login and rename both finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
