"""What the recorder writes for real threads: exact counts, ops, sites and threads."""

from __future__ import annotations

import _thread
import queue
import sys
import threading
import time

import pytest

import recorder
from recorder import _threading as traced

THIS_FILE = __file__
BARE_LOCK = threading.Lock  # the interpreter's own (a function before 3.13, a class since)
JOIN = 10.0  # seconds: every join and wait in these tests is bounded


def next_line() -> int:
    """The line after the caller's: mark the line whose site a test expects."""
    return sys._getframe(1).f_lineno + 1


def run_threads(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN)
        assert not t.is_alive(), f"{t.name} hung"


def test_known_acquire_release_counts_from_many_threads(rec):
    rec.start()
    sessions = recorder.name(threading.Lock(), "sessions")
    users = recorder.name(threading.RLock(), "users")
    n_threads, rounds = 6, 250

    def work() -> None:
        for i in range(rounds):
            with sessions:
                with users:
                    with users:  # an inner level: neither acquire nor release recorded
                        pass
            if i % 5 == 0:
                users.acquire()
                users.release()

    threads = [threading.Thread(target=work, name=f"worker-{i}") for i in range(n_threads)]
    run_threads(threads)
    trace = rec.stop()

    lock_s = trace.one("lock", "sessions")
    lock_u = trace.one("lock", "users")
    assert (lock_s["type"], lock_s["reentrant"]) == ("threading.Lock", False)
    assert (lock_u["type"], lock_u["reentrant"]) == ("threading.RLock", True)
    per_thread_u = rounds + rounds // 5
    for t in threads:
        th = trace.thread(t.name)["id"]
        s_ops, u_ops = trace.ops(lock_s["id"], th), trace.ops(lock_u["id"], th)
        assert s_ops["acquire"] == s_ops["release"] == rounds
        assert u_ops["acquire"] == u_ops["release"] == per_thread_u
        assert set(s_ops) <= {"acquire", "release", "wait"}
        assert s_ops["wait"] <= rounds  # a wait is always followed by its acquire
    assert len(trace.evs(lock_s["id"], op="acquire")) == n_threads * rounds
    assert len(trace.evs(lock_u["id"], op="release")) == n_threads * per_thread_u
    assert not [r for r in trace.records if r["k"] == "dropped"]


def test_an_rlocks_inner_levels_are_not_recorded_however_taken(rec):
    """An RLock taken again by its owner, by ``with``, ``acquire()``, a try, a
    timeout, or given up and taken back at two levels by Condition.wait: only the
    outermost acquire and the release that frees it are recorded (inner levels
    cannot block, order nothing and end no hold); a Lock under it keeps its
    events.  (Recorded, they were half of a logging call's events.)"""
    rec.start()
    outer = recorder.name(threading.RLock(), "outer")
    under = recorder.name(threading.Lock(), "under")
    cond = threading.Condition(outer)
    line = {}

    def work() -> None:
        line["take"] = next_line()
        with outer:
            with under:
                with outer:
                    assert outer.acquire()
                    assert outer.acquire(False)
                    assert outer.acquire(timeout=1)
                    for _ in range(3):
                        outer.release()
            with cond:
                assert cond.wait(0) is False
        line["again"] = next_line()
        assert outer.acquire(blocking=False)
        outer.release()

    t = threading.Thread(target=work, name="worker")
    run_threads([t])
    trace = rec.stop()
    th = trace.thread("worker")["id"]
    evs = trace.evs(trace.one("lock", "outer")["id"], th)
    assert [e["op"] for e in evs] == ["acquire", "release", "acquire", "release",
                                      "acquire", "release"]
    assert trace.site(evs[0])[:2] == (THIS_FILE, line["take"])
    assert trace.site(evs[4])[:2] == (THIS_FILE, line["again"])
    assert [e["op"] for e in trace.evs(trace.one("lock", "under")["id"], th)] == [
        "acquire", "release"]


def test_holds_nest_per_thread_in_file_order(rec):
    """Within one thread, records are in program order: acquire before its release."""
    rec.start()
    a, b = recorder.name(threading.Lock(), "a"), recorder.name(threading.Lock(), "b")

    def work() -> None:
        for _ in range(100):
            with a, b:
                pass

    run_threads([threading.Thread(target=work, name=f"n{i}") for i in range(3)])
    trace = rec.stop()
    ids = {trace.one("lock", "a")["id"]: "a", trace.one("lock", "b")["id"]: "b"}
    for i in range(3):
        th = trace.thread(f"n{i}")["id"]
        seq = [(e["op"], ids[e["obj"]]) for e in trace.evs(th=th) if e["obj"] in ids
               and e["op"] in ("acquire", "release")]
        assert seq == [("acquire", "a"), ("acquire", "b"), ("release", "b"),
                       ("release", "a")] * 100
        stamps = [e["ts"] for e in trace.evs(th=th)]
        assert stamps == sorted(stamps)


def test_contended_timeout_and_nonblocking_acquires(rec):
    rec.start()
    lock = recorder.name(threading.Lock(), "contended")
    held, release_it = threading.Event(), threading.Event()
    results = {}

    def holder() -> None:
        with lock:
            held.set()
            release_it.wait(JOIN)

    def contender() -> None:
        results["try"] = lock.acquire(False); line_try = sys._getframe().f_lineno  # noqa: E702
        results["timed"] = lock.acquire(True, 0.05); line_timed = sys._getframe().f_lineno  # noqa: E702
        threading.Timer(0.1, release_it.set).start()
        results["blocking"] = lock.acquire(); line_block = sys._getframe().f_lineno  # noqa: E702
        lock.release()
        results["lines"] = (line_try, line_timed, line_block)

    h = threading.Thread(target=holder, name="holder")
    h.start()
    assert held.wait(JOIN)
    run_threads([threading.Thread(target=contender, name="contender")])
    h.join(JOIN)
    trace = rec.stop()

    assert (results["try"], results["timed"], results["blocking"]) == (False, False, True)
    lid = trace.one("lock", "contended")["id"]
    th = trace.thread("contender")["id"]
    evs = [e for e in trace.evs(lid, th)]
    assert [e["op"] for e in evs] == ["try-fail", "wait", "timeout", "wait", "acquire",
                                      "release"]
    line_try, line_timed, line_block = results["lines"]
    sites = [trace.site(e) for e in evs[:5]]
    assert sites == [(THIS_FILE, line_try, "contender"), (THIS_FILE, line_timed, "contender"),
                     (THIS_FILE, line_timed, "contender"), (THIS_FILE, line_block, "contender"),
                     (THIS_FILE, line_block, "contender")]
    # The holder's acquire precedes the contender's wait; its release precedes the acquire.
    hold = trace.evs(lid, trace.thread("holder")["id"])
    assert [e["op"] for e in hold] == ["acquire", "release"]
    assert hold[0]["ts"] < evs[1]["ts"] and hold[1]["ts"] <= evs[4]["ts"]


def test_a_zero_timeout_is_a_try_not_a_wait(rec):
    # ThreadPoolExecutor.submit calls acquire(timeout=0) on a semaphore every time:
    # a refusal is a try-fail, not a wait that timed out.
    rec.start()
    lock = recorder.name(threading.Lock(), "busy")
    sem = recorder.name(threading.Semaphore(0), "empty")
    lock.acquire()
    assert not lock.acquire(True, 0)
    assert not lock.acquire(timeout=0)
    assert not sem.acquire(timeout=0)
    assert not sem.acquire(True, -1)
    lock.release()
    trace = rec.stop()
    assert [e["op"] for e in trace.evs(trace.one("lock", "busy")["id"])] == [
        "acquire", "try-fail", "try-fail", "release"]
    assert [e["op"] for e in trace.evs(trace.one("lock", "empty")["id"])] == [
        "try-fail", "try-fail"]


def test_a_library_lock_created_at_import_is_sited_at_the_import(rec, tmp_path, monkeypatch):
    # Like logging's module lock: created by library code while a user module imports
    # it, so the site is the user's import line, not importlib's frozen frames.
    from recorder import _core

    lib = tmp_path / "lockscope_lib_with_lock.py"
    lib.write_text("import threading\nLOCK = threading.Lock()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rec.start()
    monkeypatch.setattr(_core, "_SKIP_FILES", _core._SKIP_FILES | {str(lib)})
    _core._skip_by_file.clear()
    _core.code_sites.clear()
    _core._forget_c_sites()  # (the C accelerator keeps what it read of code_sites)
    line = next_line()
    import lockscope_lib_with_lock  # noqa: F401
    with lockscope_lib_with_lock.LOCK:
        pass
    trace = rec.stop()
    sys.modules.pop("lockscope_lib_with_lock", None)
    _core._skip_by_file.clear()
    _core.code_sites.clear()
    _core._forget_c_sites()  # (the C accelerator keeps what it read of code_sites)
    (lock,) = [r for r in trace.records if r.get("k") == "lock" and r.get("site")
               and trace.site(r)[1] == line]
    assert trace.site(lock) == (THIS_FILE, line,
                                "test_a_library_lock_created_at_import_is_sited_at_the_import")


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_condition_wait_is_release_wait_reacquire_never_one_hold(rec, kind):
    rec.start()
    lock = recorder.name(getattr(threading, kind)(), "cond-lock")
    cond = recorder.name(threading.Condition(lock), "cond")
    items: list[int] = []
    lines = {}

    def consumer() -> None:
        with cond:
            lines["wait"] = next_line()
            cond.wait_for(lambda: items, JOIN)
            items.pop()

    c = threading.Thread(target=consumer, name="consumer")
    c.start()
    # Let the consumer block in wait() (bounded; the test holds either way).
    deadline = time.monotonic() + JOIN
    while not cond._waiters and time.monotonic() < deadline:
        time.sleep(0.001)
    with cond:
        items.append(1)
        lines["notify"] = next_line()
        cond.notify()
    c.join(JOIN)
    assert not c.is_alive()
    trace = rec.stop()

    lid = trace.one("lock", "cond-lock")["id"]
    res = trace.one("resource", "cond")
    assert res["type"] == "threading.Condition" and res["lock"] == lid
    th = trace.thread("consumer")["id"]
    seq = [(e["op"], "L" if e["obj"] == lid else "C") for e in trace.evs(th=th)
           if e["obj"] in (lid, res["id"])]
    assert seq[0] == ("acquire", "L")
    assert seq[-1] == ("release", "L")
    i = seq.index(("wait-begin", "C"))
    assert seq[i - 1] == ("release", "L"), seq
    assert seq[i + 1] == ("wait-end", "C"), seq
    assert seq[i + 2:i + 3] == [("acquire", "L")] or seq[i + 2:i + 4] == [("wait", "L"),
                                                                           ("acquire", "L")]
    # Holds of L never span the wait: acquires and releases alternate around it.
    depth = 0
    for op, obj in seq:
        if obj == "L" and op in ("acquire", "release"):
            depth += 1 if op == "acquire" else -1
        if op in ("wait-begin", "wait-end"):
            assert depth == 0, seq
    begin = trace.evs(res["id"], th, "wait-begin")[0]
    end = trace.evs(res["id"], th, "wait-end")[0]
    assert end["outcome"] == "ok" and begin["timeout"] == JOIN
    assert trace.site(begin) == (THIS_FILE, lines["wait"], "consumer")
    sig = trace.evs(res["id"], op="signal")
    assert [(s["sig"], s["n"]) for s in sig] == [("notify", 1)]
    assert trace.site(sig[0])[1] == lines["notify"]


def test_condition_wait_timeout_outcome(rec):
    rec.start()
    cond = recorder.name(threading.Condition(), "lonely")
    with cond:
        assert cond.wait(0.01) is False
    trace = rec.stop()
    res = trace.one("resource", "lonely")
    ends = trace.evs(res["id"], op="wait-end")
    assert [e["outcome"] for e in ends] == ["timeout"]


def test_semaphores_record_acquire_release_try_fail_and_timeout(rec):
    rec.start()
    sem = recorder.name(threading.Semaphore(2), "pool")
    bsem = recorder.name(threading.BoundedSemaphore(1), "one")
    with sem:
        with sem:
            assert not sem.acquire(False)
            assert not sem.acquire(timeout=0.01)
    with bsem:
        pass
    with pytest.raises(ValueError):
        bsem.release()
    trace = rec.stop()
    s = trace.one("lock", "pool")
    assert (s["type"], s["value"], s["reentrant"]) == ("threading.Semaphore", 2, False)
    assert [e["op"] for e in trace.evs(s["id"])] == [
        "acquire", "acquire", "try-fail", "wait", "timeout", "release", "release"]
    b = trace.one("lock", "one")
    assert b["type"] == "threading.BoundedSemaphore"
    assert [e["op"] for e in trace.evs(b["id"])] == ["acquire", "release"]


def test_threads_start_end_join_and_unique_ids(rec):
    rec.start()
    main_name = threading.current_thread().name
    lines = {}

    def child() -> None:
        with threading.Lock():
            pass

    threads = []
    for i in range(5):
        t = threading.Thread(target=child, name="same-name", daemon=(i % 2 == 0))
        lines["start"] = next_line()
        t.start()
        lines["join"] = next_line()
        t.join(JOIN)  # sequential: OS thread idents are likely reused
        threads.append(t)
    # A thread that ends before join() is called: still a join record, no wait.
    trace = rec.stop()

    kids = trace.objects("thread", "same-name")
    assert len(kids) == 5
    assert len({k["id"] for k in kids}) == 5
    main = trace.thread(main_name)
    assert main["parent"] is None
    for k, t in zip(sorted(kids, key=lambda d: d["id"]), threads, strict=True):
        assert k["parent"] == main["id"]
        assert k["daemon"] == t.daemon
        assert k["native_id"] == t.native_id and k["ident"] == t.ident
        start = trace.evs(k["id"], op="start")
        assert len(start) == 1 and start[0]["th"] == main["id"]
        assert trace.site(start[0]) == (THIS_FILE, lines["start"],
                                        "test_threads_start_end_join_and_unique_ids")
        end = trace.evs(k["id"], op="end")
        assert len(end) == 1 and end[0]["th"] == k["id"]
        join = trace.evs(k["id"], op="join")
        assert len(join) == 1 and join[0]["th"] == main["id"]
        assert trace.site(join[0])[1] == lines["join"]
        assert start[0]["ts"] < end[0]["ts"] <= join[0]["ts"]
        waits = trace.evs(k["id"], op="wait-end")
        assert all(w["outcome"] == "ok" for w in waits)


def test_a_thread_defined_while_it_starts_has_its_ident_and_native_id(rec, monkeypatch):
    """The writer defines a thread when it meets the first event that names it:
    the parent's ``start``. Appended before the original Thread.start, that event
    could be written while the thread had not run yet (a busy machine: the writer
    woke in between), and its record said ``ident`` and ``native_id`` null. It is
    appended once the original start returned (stamped when it was called); here
    the writer drains inside the original start, before the thread runs."""
    _threading = traced
    real_start = _threading._orig_start

    def start_after_a_drain(thread: threading.Thread) -> None:
        recorder.flush()  # (the writer's drain, in the window)
        real_start(thread)

    if recorder._core.speedups is not None:
        recorder._core.speedups.set_thread_start(start_after_a_drain, _threading._jobs.install,
                                                 _threading._orig_bootstrap_inner)
    else:
        monkeypatch.setattr(_threading, "_orig_start", start_after_a_drain)
    try:
        rec.start()
        before = time.monotonic_ns()
        t = threading.Thread(target=lambda: None, name="drained-at-start")
        line = next_line()
        t.start()
        t.join(JOIN)
        trace = rec.stop()
    finally:
        if recorder._core.speedups is not None:
            recorder._core.speedups.set_thread_start(real_start, _threading._jobs.install,
                                                     _threading._orig_bootstrap_inner)
    (kid,) = trace.objects("thread", "drained-at-start")
    assert kid["ident"] == t.ident and kid["native_id"] == t.native_id
    (start,) = trace.evs(kid["id"], op="start")
    (end,) = trace.evs(kid["id"], op="end")
    assert trace.site(start)[1] == line and before <= start["ts"] < end["ts"]


def test_join_timeout_records_no_join(rec):
    rec.start()
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, args=(JOIN,), name="sleeper", daemon=True)
    t.start()
    t.join(0.01)
    stop.set()
    t.join(JOIN)
    trace = rec.stop()
    tid = trace.thread("sleeper")["id"]
    assert [e["outcome"] for e in trace.evs(tid, op="wait-end")][0] == "timeout"
    assert len(trace.evs(tid, op="join")) == 1


def test_threads_started_outside_threading_get_their_own_id(rec):
    rec.start()
    lock = recorder.name(threading.Lock(), "raw")
    done = _thread.allocate_lock()
    done.acquire()

    def raw() -> None:
        with lock:
            pass
        done.release()

    _thread.start_new_thread(raw, ())
    assert done.acquire(True, JOIN)
    with lock:
        pass
    trace = rec.stop()
    ths = {e["th"] for e in trace.evs(trace.one("lock", "raw")["id"], op="acquire")}
    assert len(ths) == 2


def test_sites_through_queue_and_event_point_at_user_code(rec):
    rec.start()
    q: queue.Queue = queue.Queue()
    ev = threading.Event()
    lines = {}

    def producer() -> None:
        lines["put"] = next_line()
        q.put("x")
        lines["set"] = next_line()
        ev.set()

    def consumer() -> None:
        lines["get"] = next_line()
        q.get(timeout=JOIN)
        lines["wait"] = next_line()
        ev.wait(JOIN)

    c = threading.Thread(target=consumer, name="consumer")
    p = threading.Thread(target=producer, name="producer")
    c.start()
    time.sleep(0.02)
    p.start()
    p.join(JOIN)
    c.join(JOIN)
    trace = rec.stop()

    prod, cons = trace.thread("producer")["id"], trace.thread("consumer")["id"]
    for th, func, keys in ((prod, "producer", ("put", "set")),
                           (cons, "consumer", ("get", "wait"))):
        seen = {trace.site(e) for e in trace.evs(th=th) if e.get("site")}
        assert seen <= {(THIS_FILE, lines[k], func) for k in keys}, seen
        assert {(THIS_FILE, lines[k], func) for k in keys} & seen
    qmutex = [d for d in trace.objects("lock") if d.get("type") == "threading.Lock"
              and any(r.get("lock") == d["id"] and r.get("type") == "queue.Queue"
                      for r in trace.objects("resource"))]
    assert len(qmutex) == 1
    roles = {r["role"] for r in trace.objects("resource", type_="queue.Queue")}
    assert roles <= {"not_empty", "not_full", "all_tasks_done"} and "not_empty" in roles
    signals = [e for e in trace.evs(th=prod, op="signal")]
    assert {trace.site(e)[1] for e in signals} == {lines["put"], lines["set"]}
    assert {"notify", "notify_all"} <= {e["sig"] for e in signals}


def test_lock_creation_site_and_names(rec):
    rec.start()
    line = next_line()
    lock = threading.Lock()
    later = threading.RLock()
    with lock, later:
        pass
    recorder.name(later, "renamed")
    with later:
        pass
    trace = rec.stop()
    created = [d for d in trace.objects("lock") if d.get("site")
               and trace.site(d) == (THIS_FILE, line, "test_lock_creation_site_and_names")]
    assert len(created) == 1 and created[0]["name"] is None
    assert trace.one("lock", "renamed")["type"] == "threading.RLock"


def test_stacks_are_recorded_once_per_site(rec):
    rec.start(stacks=4)
    lock = threading.Lock()

    def inner() -> None:
        with lock:
            pass

    def outer() -> None:
        for _ in range(50):
            inner()

    outer()
    outer()
    trace = rec.stop()
    site_records = [r for r in trace.records if r["k"] == "site"]
    assert len({s["id"] for s in site_records}) == len(site_records)
    acq = trace.evs(op="acquire")
    assert len(acq) == 100 and len({e["site"] for e in acq}) == 1
    site = trace.sites[acq[0]["site"]]
    assert site["func"] == "inner"
    stack = site["stack"]
    assert 1 <= len(stack) <= 4
    assert stack[0] == [site["file"], site["line"], site["func"]]
    assert [f[2] for f in stack[:3]] == ["inner", "outer",
                                         "test_stacks_are_recorded_once_per_site"]


def test_a_stack_is_recorded_for_each_site_by_default_without_recorder_frames(rec):
    rec.start()
    lock = threading.Lock()

    def take() -> None:
        with lock:
            pass

    t = threading.Thread(target=take)
    t.start()
    t.join(JOIN)
    trace = rec.stop()
    assert trace.header["settings"]["stacks"] == 8
    [acq] = trace.evs(op="acquire", obj=lock._ls_id)
    stack = trace.sites[acq["site"]]["stack"]
    assert [f[2] for f in stack] == ["take", "run", "_bootstrap_inner", "_bootstrap"]
    assert all(f[0] == THIS_FILE or f[0] == threading.__file__ for f in stack), stack


def test_no_stacks_with_stacks_0(rec):
    rec.start(stacks=0)
    with threading.Lock():
        pass
    trace = rec.stop()
    assert all("stack" not in r for r in trace.records if r["k"] == "site")


def test_stop_restores_the_originals_and_traced_objects_keep_working(rec):
    originals = {name: getattr(threading, name) for name in traced.ORIGINALS}
    start, join = threading.Thread.start, threading.Thread.join
    rec.start()
    # (threading.Lock is a factory where the original is one, before 3.13)
    assert threading.Lock is traced._PATCHED["Lock"] and threading.Thread.start is not start
    lock, cond = threading.Lock(), threading.Condition()
    assert type(lock) is traced.Lock
    rec.stop()
    for name, orig in originals.items():
        assert getattr(threading, name) is orig
    assert threading.Lock is BARE_LOCK is traced.ORIGINALS["Lock"]
    assert threading.Thread.start is start and threading.Thread.join is join
    assert not recorder.is_recording()
    # Objects made while recording behave as plain primitives afterwards.
    with lock:
        assert lock.locked()
    with cond:
        assert cond.wait(0.001) is False
    assert type(threading.Lock()) is not traced.Lock


def test_start_twice_and_context_manager(rec):
    with rec.start() as first:
        again = recorder.start(rec.out_dir)
        assert again.active and recorder.is_recording()
        with threading.Lock():
            pass
        assert len(first.files) == 1
    assert not recorder.is_recording()
    assert threading.Lock is BARE_LOCK


def test_segment_marks_a_span(rec):
    rec.start()
    with recorder.segment("tests/x.py::test_a", kind="test"):
        with threading.Lock():
            pass
    trace = rec.stop()
    seg = trace.one("segment", "tests/x.py::test_a")
    assert seg["kind"] == "test"
    assert [e["op"] for e in trace.evs(seg["id"])] == ["segment-begin", "segment-end"]


def test_name_labels_threads_queues_and_events(rec):
    rec.start()
    q = recorder.name(queue.Queue(), "jobs")
    ev = recorder.name(threading.Event(), "ready")
    t = threading.Thread(target=lambda: (q.put(1), ev.set()), name="t0")
    t.start()
    recorder.name(t, "producer-thread")
    t.join(JOIN)
    q.get(timeout=JOIN)
    assert ev.wait(JOIN)
    trace = rec.stop()
    assert trace.one("thread", "producer-thread")
    assert trace.objects("resource", "jobs") or trace.objects("lock", "jobs")
    named_ev = trace.one("resource", "ready")
    assert named_ev["type"] == "threading.Event"


def test_a_traced_rlock_is_locked_for_its_owner_and_for_others(rec):
    """RLock.locked() (which the recorder gives RLock before Python 3.13 too): taken
    is locked, also when the owner asks (before 3.13 it tried to take it, which
    the owner's reentrant try does: a task's RLock held across an await was
    judged free, and its await site never written)."""
    rec.start()
    lock = threading.RLock()
    seen = []

    def other():
        seen.append(lock.locked())

    assert not lock.locked()
    with lock:
        assert lock.locked()
        with lock:
            assert lock.locked()
        t = threading.Thread(target=other)
        t.start()
        t.join(10)
    assert seen == [True] and not lock.locked()
