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


BARGING_DEADLOCK = """
import threading, time, recorder
recorder.start(out_dir={out!r})
a, b = threading.Lock(), threading.Lock()
recorder.name(a, "accounts")
recorder.name(b, "ledger")
ready = threading.Event()

def barger():
    with a:
        ready.set()
        time.sleep(0.2)  # the auditor waits for accounts now
    a.acquire()  # taken back before the auditor wakes up: locks are not fair
    if not {hold}:
        a.release()  # (the correct version: let go of accounts before taking ledger)
    b.acquire()  # mark: barger-blocks
    b.release()
    if {hold}:
        a.release()

def auditor():
    with b:
        ready.wait(5)
        a.acquire()  # mark: auditor-blocks

for f in (barger, auditor):
    threading.Thread(target=f, name=f.__name__, daemon=True).start()
time.sleep(0.8)
recorder.stop()
"""


def _run_barging(tmp_path, hold: bool):
    """Run BARGING_DEADLOCK until the barger takes `accounts` back before the
    auditor, which waits for it, wakes up (most runs): (the script, its analysis)."""
    import json

    for n in range(8):
        out = tmp_path / f"traces{n}"
        script = tmp_path / f"hang{n}.py"
        script.write_text(textwrap.dedent(BARGING_DEADLOCK.format(out=str(out), hold=hold)))
        subprocess.run([sys.executable, str(script)], timeout=60, check=True)
        records = [json.loads(x) for p in sorted(out.glob("*.jsonl")) for x in p.read_text().splitlines()]
        names = {r["id"]: r.get("name") for r in records if r["k"] in ("thread", "lock", "name")}
        ops = [(names[r["th"]], r["op"]) for r in sorted(records, key=lambda r: r.get("ts", 0))
               if r["k"] == "ev" and names.get(r["obj"]) == "accounts"]
        if ops[:4] == [("barger", "acquire"), ("auditor", "wait"), ("barger", "release"),
                       ("barger", "acquire")]:
            return script, analyze([out])
    raise AssertionError("the auditor took accounts first every time")


def test_a_deadlock_behind_a_lock_taken_ahead_of_its_waiter_is_found(tmp_path):
    """The auditor waits for `accounts` while the barger holds it; the barger lets it
    go, takes it back before the auditor wakes up, then waits for `ledger`, which the
    auditor holds: a deadlock. The auditor's wait was linked to the holder when it
    began (the barger's first hold, over by then): two stalls and no deadlock."""
    script, doc = _run_barging(tmp_path, hold=True)
    [d] = kinds(doc, "deadlock")
    assert d["severity"] == "critical" and d["details"]["ended"] is False
    assert sorted(lk["name"] for lk in d["locks"]) == ["accounts", "ledger"]
    assert {s["actor"]["name"] for s in d["steps"]} == {"barger", "auditor"}
    lines = script.read_text().splitlines()
    blocks = {s["actor"]["name"]: s["site"] for s in d["steps"]}
    assert blocks["barger"].endswith(f":{next(i for i, t in enumerate(lines, 1) if 'barger-blocks' in t)}")
    assert blocks["auditor"].endswith(f":{next(i for i, t in enumerate(lines, 1) if 'auditor-blocks' in t)}")
    assert not kinds(doc, "stalled")


def test_the_same_barging_with_accounts_let_go_before_ledger_is_quiet(tmp_path):
    _, doc = _run_barging(tmp_path, hold=False)
    assert not kinds(doc, "deadlock") and not kinds(doc, "stalled")
    assert not [f for f in doc["findings"] if f["severity"] in ("error", "critical")]
