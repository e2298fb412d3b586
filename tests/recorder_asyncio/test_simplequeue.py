"""queue.SimpleQueue: a blocked get is a wait on the queue, put the signal."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from recorder import _simplequeue


def test_get_wait_ended_by_put_from_another_thread(trace):
    q = queue.SimpleQueue()
    assert type(q) is _simplequeue.SimpleQueue
    got = []

    def consumer():
        got.append(q.get(timeout=10))

    c = threading.Thread(target=consumer, name="consumer")
    c.start()
    deadline = time.monotonic() + 10
    while c.is_alive() and not _waiting(c) and time.monotonic() < deadline:
        time.sleep(0.001)
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


def _waiting(t: threading.Thread) -> bool:
    """True once the consumer thread is blocked in get (its frame is in our get)."""
    import sys

    frame = sys._current_frames().get(t.ident)
    while frame is not None:
        if frame.f_code is _simplequeue.SimpleQueue.get.__code__ and "outcome" in frame.f_locals:
            return True
        frame = frame.f_back
    return False


def test_thread_pool_still_works(trace):
    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(abs, [-1, -2, -3])) == [1, 2, 3]
    puts = [e for e in trace.events(op="signal") if e.get("sig") == "put"]
    assert len(puts) >= 3
