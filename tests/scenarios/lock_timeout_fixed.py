"""Corrected twin of lock_timeout_bug.py: the migration works in short batches.

``migrate`` takes ``db`` once per batch of rows (a few ms each) and releases it
in between, so ``reporter`` gets the lock well within its 0.1 s timeout.

The analyzer must report no ``acquire-timeout``, no ``long-hold`` and nothing at
warning or above.

Exit status 0.
"""
import sys
import threading
import time

try:
    from recorder import name as label
except ImportError:
    def label(obj, _name): return obj

db_lock = label(threading.Lock(), "db")  # mark: create-db
rows = list(range(40))
reports: list[int] = []


def migrate() -> None:
    for start in range(0, len(rows), 4):
        with db_lock:  # mark: migrate-acquire
            for i in range(start, start + 4):
                rows[i] += 1
                time.sleep(0.001)  # one UPDATE per row, a batch per transaction
        time.sleep(0.005)


def report() -> None:
    time.sleep(0.02)  # arrive while the migration runs
    if not db_lock.acquire(timeout=0.1):  # mark: report-acquire
        print("reporter: database busy, report skipped")
        return
    try:
        reports.append(sum(rows))
    finally:
        db_lock.release()


def main() -> int:
    threads = [threading.Thread(target=migrate, name="migrator", daemon=True),
               threading.Thread(target=report, name="reporter", daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    if any(t.is_alive() for t in threads) or not reports:
        print("unexpected: the reporter did not get the lock", file=sys.stderr)
        return 3
    print("done: migration finished, report taken")
    return 0


if __name__ == "__main__":
    sys.exit(main())
