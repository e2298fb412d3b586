"""Corrected twin of stuck_waiter_bug.py: main sets ``shutdown`` and joins the worker.

The analyzer must report no ``stalled`` wait and nothing at warning or above.

Exit status 0.
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
    shutdown.set()  # mark: main-set
    t.join(timeout=5)  # mark: main-join
    if t.is_alive():
        print("unexpected: worker did not finish", file=sys.stderr)
        return 3
    print("done: worker shut down cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
