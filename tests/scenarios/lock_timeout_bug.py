"""An acquire with a timeout gives up because another thread holds the lock too long.

Thread ``migrator`` takes ``db`` and rewrites every row in one 0.4 s critical
section. Thread ``reporter`` arrives 50 ms later and tries ``db`` with a 0.1 s
timeout, gives up and skips its report. No cycle: the migrator would release
the lock eventually.

The analyzer must report:

* ``acquire-timeout`` (warning) on lock ``db`` (created line 26): thread
  ``reporter`` gave up in ``report`` line 40;
* ``long-hold`` (warning) on ``db``: thread ``migrator``, acquiring site
  ``migrate`` line 32 (~0.4 s).

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
    with db_lock:  # mark: migrate-acquire
        for i in range(len(rows)):
            rows[i] += 1
            time.sleep(0.01)  # one slow UPDATE per row, all in one transaction


def report() -> None:
    time.sleep(0.05)  # arrive while the migration runs
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
    if any(t.is_alive() for t in threads) or reports:
        print("unexpected: the reporter got the lock", file=sys.stderr)
        return 3
    print("done: migration finished, one report skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
