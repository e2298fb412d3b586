"""Corrected twin of join_under_lock_threads_bug.py: join first, then take the lock.

``main`` starts and joins ``reporter`` with no lock held, then takes
``registry`` to read the result.

The analyzer must report no ``wait-cycle``, no ``long-hold`` and no
deadlock-class finding.

Exit status 0.
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
    reporter.start()
    reporter.join(timeout=5)  # mark: main-join
    with registry_lock:  # mark: main-acquire
        ok = results == ["report ready"]
    if not ok:
        print("unexpected: reporter did not finish", file=sys.stderr)
        return 3
    print("done: reporter finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
