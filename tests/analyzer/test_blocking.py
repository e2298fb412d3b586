"""deadlock, self-deadlock and stalled: real blocking, not just lock order."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from analyzer import analyze

from .conftest import kinds
from .tracebuilder import Trace

TIMEOUT = 5


def test_deadlock_broken_by_timeout_is_critical_and_replaces_the_potential_one(record):
    with record() as rec:
        a, b = threading.Lock(), threading.Lock()
        import recorder
        recorder.name(a, "accounts")
        recorder.name(b, "ledger")
        both_hold = threading.Barrier(2, timeout=TIMEOUT)

        def transfer():
            with a:
                both_hold.wait()
                if b.acquire(timeout=0.3):  # gives up: breaks the deadlock
                    b.release()

        def audit():
            with b:
                both_hold.wait()
                if a.acquire(timeout=2):
                    a.release()

        ts = [threading.Thread(target=transfer, daemon=True), threading.Thread(target=audit, daemon=True)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(TIMEOUT)
    doc = rec.analyze()
    [d] = kinds(doc, "deadlock")
    assert d["severity"] == "critical"
    assert sorted(lk["name"] for lk in d["locks"]) == ["accounts", "ledger"]
    assert d["details"]["resolved_by"] == "timeout" and d["details"]["ended"] is True
    assert d["details"]["duration_ns"] > 0
    assert {s["actor"]["name"] for s in d["steps"]} == {ts[0].name, ts[1].name}
    assert not kinds(doc, "potential-deadlock")  # the same cycle is reported once


def test_real_deadlock_left_hanging_at_exit(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text(textwrap.dedent("""
        import threading, recorder
        recorder.start(out_dir={!r})
        a, b = threading.Lock(), threading.Lock()
        barrier = threading.Barrier(2, timeout=5)
        def one():
            with a:
                barrier.wait()
                b.acquire()
        def two():
            with b:
                barrier.wait()
                a.acquire()
        for f in (one, two):
            threading.Thread(target=f, daemon=True).start()
        import time
        time.sleep(0.3)
        recorder.stop()
    """.format(str(tmp_path / "traces"))))
    subprocess.run([sys.executable, str(script)], timeout=60, check=True)
    doc = analyze([tmp_path / "traces"])
    [d] = kinds(doc, "deadlock")
    assert d["details"]["ended"] is False and d["details"]["resolved_by"] is None
    assert len(d["steps"]) == 2
    assert not kinds(doc, "stalled")


def test_no_deadlock_when_waits_are_ordinary_contention(record):
    with record() as rec:
        lock = threading.Lock()
        holding = threading.Event()

        def holder():
            with lock:
                holding.set()
                threading.Event().wait(0.05)

        def waiter():
            holding.wait(TIMEOUT)
            with lock:
                pass

        ts = [threading.Thread(target=holder), threading.Thread(target=waiter)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(TIMEOUT)
    doc = rec.analyze()
    assert not kinds(doc, "deadlock") and not kinds(doc, "self-deadlock") and not kinds(doc, "stalled")


def test_rlock_reentry_is_not_a_self_deadlock(record):
    with record() as rec:
        lock = threading.RLock()
        with lock:
            assert lock.acquire(timeout=0.05)
            lock.release()
    assert not kinds(rec.analyze(), "self-deadlock")


def test_wait_that_never_ends_outside_a_cycle_is_stalled(tmp_path):
    t = Trace()
    a = t.lock("a", line=3)
    t1 = t.thread("holder", t.main)
    t2 = t.thread("waiter", t.main)
    t.acquire(t1, a, 10)
    t.ev(t2, a, "wait", 20)
    doc = analyze([t.write(tmp_path / "t.jsonl", end=False)])
    [f] = kinds(doc, "stalled")
    assert f["sites"][0]["site"] == "app.py:20"
    assert not kinds(doc, "deadlock")
