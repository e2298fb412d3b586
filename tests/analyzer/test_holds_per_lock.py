"""Holds are paired per lock: a release by any thread, task or loop callback ends
the current hold of a Lock, so lock hand-off, call_soon(lock.release) and acquires
that failed or raised are no self-deadlock, wait-cycle or held-across-await, and
never "hung". Real programs, recorded."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading

from analyzer import analyze

from .conftest import kinds

TIMEOUT = 5
SERIOUS = ("critical", "error")


def serious(doc: dict) -> list[tuple[str, str]]:
    return [(f["kind"], f["title"]) for f in doc["findings"] if f["severity"] in SERIOUS]


def run_script(tmp_path, body: str) -> dict:
    """Run `body` in a child Python under the recorder and analyze its trace."""
    script = tmp_path / "prog.py"
    script.write_text(f"import recorder\nrecorder.start(out_dir={str(tmp_path / 'traces')!r})\n"
                      + textwrap.dedent(body) + "\nrecorder.stop()\n")
    subprocess.run([sys.executable, str(script)], timeout=60, check=True)
    return analyze([tmp_path / "traces"])


def test_lock_handed_off_between_threads_is_no_self_deadlock(record):
    # CPython's test_tstate_lock: main takes `started` twice; the thread releases it in between
    with record() as rec:
        started = threading.Lock()
        started.acquire()

        def f():
            threading.Event().wait(0.2)  # (so that main is most likely waiting already)
            started.release()

        t = threading.Thread(target=f)
        t.start()
        assert started.acquire(timeout=TIMEOUT)  # waits until f released it: a hand-off
        started.release()
        t.join(TIMEOUT)
    doc = rec.analyze()
    assert serious(doc) == []
    assert not kinds(doc, "self-deadlock") and not kinds(doc, "stalled")
    assert not kinds(doc, "acquire-timeout")


def test_recursive_acquire_with_timeout_is_an_acquire_timeout_not_a_self_deadlock(record):
    # CPython's lock_tests test_state_after_timeout: the acquire gave up, nothing deadlocked
    with record() as rec:
        lock = threading.Lock()
        lock.acquire()
        assert not lock.acquire(timeout=0.01)
        lock.release()
    doc = rec.analyze()
    assert serious(doc) == []
    [f] = kinds(doc, "acquire-timeout")
    assert f["severity"] == "warning" and "recursive acquire" in f["message"]


def test_acquire_interrupted_by_an_exception_did_not_hang(tmp_path):
    # CPython's test_lock_acquire_interruption: a signal handler raises in a blocked acquire
    doc = run_script(tmp_path, """
        import signal, threading
        class Interrupted(Exception):
            pass
        def handler(signum, frame):
            raise Interrupted
        signal.signal(signal.SIGALRM, handler)
        lock = threading.Lock()
        lock.acquire()
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        try:
            lock.acquire(timeout=5)
        except Interrupted:
            pass
        lock.release()
    """)
    assert serious(doc) == []
    assert not kinds(doc, "self-deadlock") and not kinds(doc, "stalled")


def test_self_deadlock_that_never_ended_is_critical(tmp_path):
    doc = run_script(tmp_path, """
        import threading, time
        lock = threading.Lock()
        def again():
            with lock:
                lock.acquire()  # never returns
        threading.Thread(target=again, daemon=True).start()
        time.sleep(0.2)
    """)
    [f] = kinds(doc, "self-deadlock")
    assert f["severity"] == "critical" and f["details"]["ended"] is False
    assert "never ended" in f["message"] and f["partial"] is False
    assert not kinds(doc, "stalled")


def test_call_soon_release_hands_the_lock_to_the_loop(record):
    with record() as rec:
        async def main():
            lock = asyncio.Lock()
            await lock.acquire()
            asyncio.get_running_loop().call_soon(lock.release)
            await asyncio.wait_for(lock.acquire(), TIMEOUT)  # waits until the callback released it
            lock.release()

        asyncio.run(main())
    doc = rec.analyze()
    assert serious(doc) == []
    assert not kinds(doc, "self-deadlock") and not kinds(doc, "held-across-await")


def test_asyncio_condition_wait_and_notify_stay_quiet(record):
    with record() as rec:
        async def main():
            cond = asyncio.Condition()
            ready = []

            async def waiter():
                async with cond:
                    await cond.wait_for(lambda: ready)

            async def notifier():
                async with cond:
                    ready.append(1)
                    cond.notify_all()

            await asyncio.wait_for(asyncio.gather(waiter(), waiter(), notifier()), TIMEOUT)

        asyncio.run(main())
    doc = rec.analyze()
    assert serious(doc) == []
    assert not kinds(doc, "held-across-await") and not kinds(doc, "stalled")


def _resource_wait_then(tmp_path, then_acts: bool) -> dict:
    from .tracebuilder import Trace

    t = Trace()
    ev = 50
    t.records.append({"k": "resource", "id": ev, "type": "threading.Event", "name": "ready", "site": t.site(2),
                      "ts": t.tick(), "th": t.main})
    lock = t.lock("state", line=3)
    t.ev(t.main, ev, "wait-begin", 10)  # no wait-end: it raised (or it is still waiting)
    if then_acts:
        t.acquire(t.main, lock, 11)
        t.release(t.main, lock)
    return analyze([t.write(tmp_path / "t.jsonl", end=False)])


def test_resource_wait_without_end_after_which_the_thread_went_on_is_not_stalled(tmp_path):
    assert not kinds(_resource_wait_then(tmp_path, then_acts=True), "stalled")


def test_resource_wait_without_end_and_nothing_after_is_stalled(tmp_path):
    [f] = kinds(_resource_wait_then(tmp_path, then_acts=False), "stalled")
    assert f["details"]["resource"].endswith("/50")


def test_rlock_released_before_its_first_recorded_acquire_still_pairs_later_holds(tmp_path):
    # an RLock taken before recording started: its first recorded operation is a release
    from .tracebuilder import Trace

    t = Trace()
    rl = t.lock("rl", type="threading.RLock", line=3)
    t.release(t.main, rl)
    t.acquire(t.main, rl, 10)
    t.acquire(t.main, rl, 11)
    t.release(t.main, rl)
    t.release(t.main, rl, hold_ns=5000)
    holds = []
    analyze([t.write(tmp_path / "t.jsonl")], fail_on="never",
            on_result=lambda doc, con: holds.extend(con.execute(
                "SELECT actor, end_seq - seq, hold_ns FROM holds").fetchall()))
    assert holds == [(t.main, 3, 8000)]


def test_task_that_releases_the_lock_inside_condition_wait_makes_no_wait_cycle(record):
    """CPython test_asyncio.test_locks ConditionTests.test_wait_cancel: the awaited task
    releases the awaiting task's hold inside Condition.wait and later takes the lock
    back; it never went for the lock while the awaiting task held it."""
    with record() as rec:
        async def main():
            cond = asyncio.Condition()
            await cond.acquire()
            wait = asyncio.create_task(cond.wait())
            asyncio.get_running_loop().call_soon(wait.cancel)
            try:
                await asyncio.wait_for(wait, TIMEOUT)
            except asyncio.CancelledError:
                pass
            cond.release()

        asyncio.run(main())
    doc = rec.analyze()
    assert serious(doc) == []
    assert not kinds(doc, "wait-cycle")


def test_task_that_waits_for_the_held_lock_until_cancelled_is_a_wait_cycle(record):
    """The counterpart (LockTests.test_acquire_cancel): the awaited task waits for the
    lock the awaiting task holds; only the cancellation ends it."""
    with record() as rec:
        async def main():
            lock = asyncio.Lock()
            await lock.acquire()
            task = asyncio.create_task(lock.acquire())
            asyncio.get_running_loop().call_soon(task.cancel)
            try:
                await asyncio.wait_for(task, TIMEOUT)
            except asyncio.CancelledError:
                pass
            lock.release()

        asyncio.run(main())
    doc = rec.analyze()
    [f] = kinds(doc, "wait-cycle")
    assert f["severity"] == "error"
