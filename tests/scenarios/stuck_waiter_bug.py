"""A thread waits for an event nobody ever sets: the wait is still open when the program exits.

Thread ``worker`` finishes its job and then waits for ``shutdown`` before it
cleans up, but ``main`` forgets to set ``shutdown``. The worker is a daemon, so
``main`` waits 0.3 s for it and exits anyway, leaving the wait open. No lock is
involved, so it is no cycle.

The analyzer must report exactly one ``stalled`` (warning) on the
threading.Event ``shutdown`` (created line 21): thread ``worker`` waits for it in
``worker`` line 27 until the end of the trace. Exit status 0.
"""
import sys
import threading
import time

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

shutdown = label(threading.Event(), "shutdown")  # mark: create-shutdown
jobs_done: list[int] = []


def worker() -> None:
    jobs_done.append(1)
    shutdown.wait()  # mark: worker-wait
    jobs_done.clear()  # clean up


def main() -> int:
    t = threading.Thread(target=worker, name="worker", daemon=True)
    t.start()
    time.sleep(0.05)
    # bug: main never calls shutdown.set()
    t.join(timeout=0.3)  # mark: main-join
    if not t.is_alive():
        print("unexpected: worker finished", file=sys.stderr)
        return 3
    print("done: exiting with the worker still waiting for shutdown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
