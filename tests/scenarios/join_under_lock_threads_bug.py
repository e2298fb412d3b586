"""A thread is joined by a joiner that holds the lock the thread needs.

``main`` takes ``registry``, starts thread ``reporter`` and, still holding
``registry``, joins it. ``reporter`` must take ``registry`` to publish its
result before it can finish. They wait on each other until the join times out
(0.5 s); then ``main`` releases ``registry`` and ``reporter`` finishes.

The analyzer must report exactly one ``wait-cycle`` (critical: it was observed
blocked until the timeout) on lock ``registry`` (created line 24) and thread
``reporter``: thread ``MainThread`` holds registry (taken in ``main`` line 36)
and joins reporter at line 38; thread ``reporter`` takes registry in ``report``
line 30 before it ends. A ``long-hold`` of ``registry`` (line 36) may be
reported too. Exit status 0.
"""
import sys
import threading
import time

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

registry_lock = label(threading.Lock(), "registry")  # mark: create-registry
results: list[str] = []


def report() -> None:
    time.sleep(0.02)  # do the work
    with registry_lock:  # mark: reporter-acquire
        results.append("report ready")


def main() -> int:
    reporter = threading.Thread(target=report, name="reporter", daemon=True)
    with registry_lock:  # mark: main-acquire
        reporter.start()
        reporter.join(timeout=0.5)  # mark: main-join
        timed_out = reporter.is_alive()
    reporter.join(timeout=5)
    if not timed_out or reporter.is_alive():
        print("unexpected: the join did not time out once and then succeed", file=sys.stderr)
        return 3
    print("done: reporter could finish only after the join timed out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
