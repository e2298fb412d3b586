"""A small service with lock problems, for the HTML report tests: opposite lock
order in two threads that overlap but do not hang (potential deadlock), a slow
hold (long-hold), a busy lock (contention) and an acquire that times out."""
import threading
import time

import recorder

sessions = recorder.name(threading.Lock(), "sessions")
users = recorder.name(threading.Lock(), "users")
cache = recorder.name(threading.Lock(), "cache")
stats = threading.RLock()


def touch_user():
    if users.acquire(timeout=5):  # the timeout only guards this test program
        time.sleep(0.0005)
        users.release()


def login(n):
    for _ in range(n):
        with sessions:
            time.sleep(0.001)
            touch_user()
        time.sleep(0.002)
    time.sleep(0.08)  # still running while rename() works: nothing orders the two threads


def rename(n):
    time.sleep(0.06)  # after login's loop, so this run does not actually hang
    for _ in range(n):
        with users:
            time.sleep(0.001)
            if sessions.acquire(timeout=5):
                time.sleep(0.0005)
                sessions.release()
        time.sleep(0.01)


def worker(i):
    for j in range(15):
        with cache:
            with stats:
                time.sleep(0.0005)
            if i == 0 and j == 5:
                time.sleep(0.15)  # slow work under the lock
        time.sleep(0.001)


def impatient():
    time.sleep(0.03)
    for _ in range(3):
        if cache.acquire(timeout=0.005):
            cache.release()
        time.sleep(0.01)


def main():
    threads = [threading.Thread(target=login, args=(3,), name="login"),
               threading.Thread(target=rename, args=(1,), name="rename"),
               threading.Thread(target=impatient, name="impatient")]
    threads += [threading.Thread(target=worker, args=(i,), name=f"worker-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)


if __name__ == "__main__":
    main()
