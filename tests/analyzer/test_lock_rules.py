"""long-hold, acquire-timeout and hot-lock on real recorded threads."""
from __future__ import annotations

import threading
import time

from .conftest import kinds, line_of

TIMEOUT = 5


def test_long_hold_is_reported_with_the_acquiring_site(record):
    with record() as rec:
        cache = threading.Lock()
        import recorder
        recorder.name(cache, "cache")

        def slow():
            with cache:  # slow: take cache
                time.sleep(0.15)

        slow()
    doc = rec.analyze(long_hold="100ms")
    [f] = kinds(doc, "long-hold")
    assert f["severity"] == "warning"
    assert f["locks"][0]["name"] == "cache"
    assert f["sites"][0]["site"] == line_of(slow, "# slow: take cache")
    assert f["details"]["max_hold_ns"] >= 150_000_000
    assert f["details"]["threshold_ns"] == 100_000_000


def test_short_holds_are_not_long(record):
    with record() as rec:
        cache = threading.Lock()
        for _ in range(50):
            with cache:
                pass
    assert not kinds(rec.analyze(long_hold="10s"), "long-hold")


def test_recursive_acquire_with_timeout_is_an_acquire_timeout_not_a_self_deadlock(record):
    with record() as rec:
        lock = threading.Lock()
        import recorder
        recorder.name(lock, "state")

        def again():
            with lock:  # again: outer
                got = lock.acquire(timeout=0.05)  # again: inner
                assert not got

        again()
    doc = rec.analyze()
    assert not kinds(doc, "self-deadlock")  # it gave up: nothing deadlocked
    [f] = kinds(doc, "acquire-timeout")
    assert f["severity"] == "warning" and f["locks"][0]["name"] == "state"
    assert [s["site"] for s in f["sites"]] == [line_of(again, "# again: inner"), line_of(again, "# again: outer")]
    assert "recursive acquire" in f["message"]
    assert not kinds(doc, "potential-deadlock")


def test_acquire_timeout_on_a_lock_held_by_another_thread(record):
    with record() as rec:
        lock = threading.Lock()
        import recorder
        recorder.name(lock, "state")
        holding, done = threading.Event(), threading.Event()

        def holder():
            with lock:  # holder: take state
                holding.set()
                done.wait(TIMEOUT)

        t = threading.Thread(target=holder, daemon=True)
        t.start()
        holding.wait(TIMEOUT)

        def impatient():
            assert not lock.acquire(timeout=0.05)  # impatient: give up

        impatient()
        done.set()
        t.join(TIMEOUT)
    doc = rec.analyze()
    [f] = kinds(doc, "acquire-timeout")
    assert f["locks"][0]["name"] == "state"
    assert f["sites"][0]["site"] == line_of(impatient, "# impatient: give up")
    assert f["details"]["timeouts"] == 1
    assert f["details"]["holders"] == [line_of(holder, "# holder: take state")]


def test_acquire_with_timeout_that_succeeds_is_quiet(record):
    with record() as rec:
        lock = threading.Lock()
        assert lock.acquire(timeout=1)
        lock.release()
    assert not kinds(rec.analyze(), "acquire-timeout")


def test_contended_lock_is_hot_with_lockstat_columns(record):
    with record() as rec:
        db = threading.Lock()
        import recorder
        recorder.name(db, "db")
        holding = threading.Event()

        def holder():
            with db:  # holder: take db
                holding.set()
                time.sleep(0.05)

        def waiter():
            holding.wait(TIMEOUT)
            with db:  # waiter: take db
                pass

        ts = [threading.Thread(target=holder), threading.Thread(target=waiter)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(TIMEOUT)
    doc = rec.analyze()
    [f] = kinds(doc, "hot-lock")
    assert f["locks"][0]["name"] == "db"
    stats = next(lk for lk in doc["locks"] if lk["name"] == "db")
    assert stats["acquisitions"] == 2
    assert stats["contentions"] == 1
    assert stats["wait_total_ns"] > 0 and stats["wait_max_ns"] == stats["wait_total_ns"]
    assert stats["top_wait_sites"][0]["site"] == line_of(waiter, "# waiter: take db")
    assert stats["top_hold_sites"][0]["site"] == line_of(holder, "# holder: take db")
    for key in ("hold_min_ns", "hold_avg_ns", "hold_p50_ns", "hold_p95_ns", "hold_p99_ns", "hold_max_ns",
                "hold_total_ns", "wait_avg_ns"):
        assert stats[key] is not None


def test_uncontended_lock_is_not_hot(record):
    with record() as rec:
        db = threading.Lock()
        for _ in range(10):
            with db:
                pass
    assert not kinds(rec.analyze(), "hot-lock")
