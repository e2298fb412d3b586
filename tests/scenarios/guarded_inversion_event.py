"""An inversion on `sessions` / `users` in two threads ordered by an Event (quiet).

As ``logging.config.listen()`` does: a ``listener`` thread sets the Event
``ready`` once it listens, and again after each request it served. The main
thread waits until it is ready, clears it, sends a request (thread ``login``,
which takes sessions then users and then sets ``ready``), and waits for
``ready`` again before it takes users then sessions itself. The threads run at
once, but the Event orders the two paths: they can never overlap.

The analyzer must not report a ``potential-deadlock``; it lists the cycle as
one ``guarded-cycle`` (info, reason: ordered by the Event ``ready``, set at line
35) on ``sessions`` (created line 25) and ``users`` (created line 26): thread
``login`` holds sessions (taken in ``login`` line 32) and requests users at
line 33; thread ``MainThread`` holds users (taken in ``main`` line 51) and
requests sessions at line 52. Nothing at warning or above. Exit status 0.
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
    # (a request: it configures, then says it is done)
    with sessions:  # mark: login-sessions
        with users:  # mark: login-users
            pass
    ready.set()  # mark: login-ready


def listen() -> None:
    ready.set()  # mark: listener-ready


def main() -> int:
    listener = threading.Thread(target=listen, name="listener", daemon=True)
    listener.start()
    if not ready.wait(timeout=5):
        return 3
    ready.clear()
    request = threading.Thread(target=login, name="login", daemon=True)
    request.start()
    if ready.wait(timeout=5):  # mark: main-wait
        with users:  # mark: rename-users
            with sessions:  # mark: rename-sessions
                pass
    for t in (listener, request):
        t.join(timeout=5)
    if listener.is_alive() or request.is_alive() or not ready.is_set():
        print("unexpected: the listener or the request did not finish", file=sys.stderr)
        return 3
    print("done: the request, then the main thread once it was done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
