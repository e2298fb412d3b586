"""queue.SimpleQueue: a blocked get is a wait on the queue, put the signal."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from recorder import _core, _simplequeue


@pytest.fixture
def blocking(monkeypatch):
    """An Event set when a traced get of thread `.who` (the main thread unless the
    test says) goes to block (it found the queue empty): the original get it calls,
    spied on (C or pure-Python recorder).  (Of that thread only: a pool's worker left
    running by another test, taking its next job, set it too, and the interrupt
    reached the main thread before the test's own get, outside pytest.raises.)"""
    event = threading.Event()
    event.who = threading.main_thread()
    orig = _simplequeue._OrigSimpleQueue

    def get(self, block=True, timeout=None):
        if block and threading.current_thread() is event.who:
            event.set()
        return orig.get(self, block, timeout)

    if _core.speedups is None:
        monkeypatch.setattr(_simplequeue, "_OrigSimpleQueue",
                            type("Spied", (), {"get": get, "put": orig.put}))
        yield event
        return
    _core.speedups.set_simplequeue_hooks(orig.put, get, queue.Empty)
    try:
        yield event
    finally:
        _core.speedups.set_simplequeue_hooks(orig.put, orig.get, queue.Empty)


def test_get_wait_ended_by_put_from_another_thread(trace, blocking):
    q = queue.SimpleQueue()
    assert type(q) is _simplequeue.SimpleQueue
    got = []

    def consumer():
        got.append(q.get(timeout=10))

    c = threading.Thread(target=consumer, name="consumer")
    blocking.who = c
    c.start()
    assert blocking.wait(10)
    q.put("x")
    c.join(10)
    assert got == ["x"]
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(ValueError):
        q.get(timeout=-1)
    q.put_nowait(1)
    assert q.get_nowait() == 1
    threads = {r["name"]: r["id"] for r in trace.defs("thread").values()}
    evs = [(e["op"], e["th"], e.get("sig") or e.get("outcome"))
           for e in sorted(trace.events(obj=q._ls_id), key=lambda e: e["ts"])]
    main, cons = threads["MainThread"], threads["consumer"]
    assert evs == [("wait-begin", cons, None), ("signal", main, "put"), ("wait-end", cons, "ok"),
                   ("wait-begin", main, None), ("wait-end", main, "timeout"),
                   ("signal", main, "put")]
    assert trace.defs("resource")[q._ls_id]["type"] == "queue.SimpleQueue"


def test_thread_pool_still_works(trace):
    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(abs, [-1, -2, -3])) == [1, 2, 3]
    puts = [e for e in trace.events(op="signal") if e.get("sig") == "put"]
    assert len(puts) >= 3


def test_get_and_put_keep_the_originals_signatures_and_errors(trace):
    import inspect

    q = queue.SimpleQueue()
    assert list(inspect.signature(type(q).put).parameters) == ["self", "item", "block", "timeout"]
    assert list(inspect.signature(type(q).get).parameters) == ["self", "block", "timeout"]
    q.put(item=1, block=True, timeout=None)
    assert q.get(block=True, timeout=5) == 1
    q.put(2, False)
    assert q.get(False) == 2
    with pytest.raises(TypeError):
        q.get(True, 1, 2)
    with pytest.raises(TypeError):
        q.get(bloc=True)
    with pytest.raises(queue.Empty):
        q.get(block=False)
    with pytest.raises(queue.Empty):
        q.get(True, 0)
    puts = [e for e in trace.events(obj=q._ls_id) if e["op"] == "signal"]
    assert [e["sig"] for e in puts] == ["put", "put"]
    waits = [(e["op"], e.get("outcome"), e.get("timeout")) for e in trace.events(obj=q._ls_id)
             if e["op"].startswith("wait")]
    assert waits == [("wait-begin", None, 0), ("wait-end", "timeout", None)]


def test_get_interrupted_by_an_exception_ends_its_wait_as_an_error(trace, blocking):
    """A signal handler's exception (KeyboardInterrupt here) ends the blocked get: the
    wait ends with outcome error and the exception reaches the program."""
    import signal
    import time

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_kill"):
        pytest.skip("needs the main thread and pthread_kill")
    q = queue.SimpleQueue()
    main = threading.main_thread().ident
    # A signal that comes after the get let go of the GIL but before it blocks is
    # handled only when the wait ends (CPython), outside pytest.raises: so it is sent
    # until its handler ran, which raises once.
    raised, stop = [], threading.Event()

    def once(signum, frame):
        if not raised:
            raised.append(signum)
            raise KeyboardInterrupt

    def interrupt():  # (a real signal: it wakes the blocked lock wait)
        if not blocking.wait(10):
            return
        while not raised and not stop.is_set():
            signal.pthread_kill(main, signal.SIGINT)
            stop.wait(0.05)

    previous = signal.signal(signal.SIGINT, once)
    t = threading.Thread(target=interrupt)
    try:
        t.start()
        with pytest.raises(KeyboardInterrupt):
            q.get(timeout=30)
    finally:
        stop.set()
        t.join(10)
        time.sleep(0.05)  # (a signal sent meanwhile is handled by `once`)
        signal.signal(signal.SIGINT, previous)
    evs = [(e["op"], e.get("outcome")) for e in trace.events(obj=q._ls_id)]
    assert evs == [("wait-begin", None), ("wait-end", "error")]
