"""The C accelerator (recorder/_speedups.c) against the pure-Python recorder.

The C hot path must record exactly what the Python one does: same events, same
sites, same bytes on disk.  The recorder suites (threading and asyncio) also run
once more with LOCKSCOPE_PURE_PYTHON=1, so the fallback stays tested wherever the
C one is built.
"""

from __future__ import annotations

import asyncio
import dis
import gc
import importlib
import inspect
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from lockscope_tracecheck import Trace, check_part

import recorder
from recorder import _core

# (recorder._sink, the attribute, is the running Sink: take the module itself)
_sink = importlib.import_module("recorder._sink")

THIS_FILE = __file__
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PURE = bool(os.environ.get("LOCKSCOPE_PURE_PYTHON"))
needs_c = pytest.mark.skipif(_core.speedups is None, reason="the C accelerator is not built")


def _can_compile() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    header = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return shutil.which(cc) is not None and header.exists()


@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_the_accelerator_is_built_and_used_where_a_compiler_is(rec):
    if not _can_compile():
        pytest.skip("no C compiler or Python headers here: pure Python is expected")
    assert _core.speedups is not None, "pip install should have compiled recorder/_speedups.c"
    rec.start()
    lock = threading.Lock()
    assert isinstance(lock, _core.speedups.LockCore)
    from recorder import _aio_sync
    assert _aio_sync._c_aio_event is not None  # asyncio's async-with path too
    with lock:
        pass
    trace = rec.stop()
    assert trace.header["settings"]["accelerator"] == "c"


def test_pure_python_is_reported_in_the_header(rec, monkeypatch):
    rec.start()
    trace = rec.stop()
    expected = "python" if _core.speedups is None else "c"
    assert trace.header["settings"]["accelerator"] == expected


def _acquire_every_way(lock: threading.Lock, cond: threading.Condition, lines: dict) -> None:
    for _ in range(2):  # the second round finds every site in the cache
        with lock:
            lines["with"] = sys._getframe().f_lineno - 1
        lock.acquire(); lines["acquire()"] = sys._getframe().f_lineno  # noqa: E702
        lock.release()
        lock.acquire(True); lines["acquire(True)"] = sys._getframe().f_lineno  # noqa: E702
        lock.release()
        lock.acquire(blocking=True, timeout=5); lines["acquire(kw)"] = sys._getframe().f_lineno  # noqa: E702
        lock.release()
        assert lock.acquire(False); lines["acquire(False)"] = sys._getframe().f_lineno  # noqa: E702
        lock.release()
        with cond:  # Condition.__enter__ (library code) takes the lock: the site is here
            lines["cond"] = sys._getframe().f_lineno - 1


def test_every_way_of_acquiring_is_sited_at_the_user_line(rec):
    rec.start()
    lock = recorder.name(threading.Lock(), "l")
    rlock = recorder.name(threading.RLock(), "r")
    lines: dict = {}
    _acquire_every_way(lock, threading.Condition(lock), lines)
    rlines: dict = {}
    _acquire_every_way(rlock, threading.Condition(rlock), rlines)
    trace = rec.stop()
    for name, where in (("l", lines), ("r", rlines)):
        evs = trace.evs(trace.one("lock", name)["id"])
        acquires = [trace.site(e) for e in evs if e["op"] == "acquire"]
        order = ["with", "acquire()", "acquire(True)", "acquire(kw)", "acquire(False)", "cond"]
        expected = [(THIS_FILE, where[k], "_acquire_every_way") for k in order] * 2
        assert acquires == expected, name
        assert [e["op"] for e in evs] == ["acquire", "release"] * 12
        assert all("site" not in e for e in evs if e["op"] == "release")


def test_contention_from_the_c_path_is_a_wait_at_the_user_line(rec):
    rec.start()
    lock = recorder.name(threading.Lock(), "c")
    held, go = threading.Event(), threading.Event()

    def holder() -> None:
        with lock:
            held.set()
            go.wait(10)

    h = threading.Thread(target=holder)
    h.start()
    assert held.wait(10)
    threading.Timer(0.05, go.set).start()
    with lock:
        line = sys._getframe().f_lineno
    h.join(10)
    trace = rec.stop()
    main = trace.thread("MainThread")["id"]
    evs = trace.evs(trace.one("lock", "c")["id"], main)
    assert [e["op"] for e in evs] == ["wait", "acquire", "release"]
    me = "test_contention_from_the_c_path_is_a_wait_at_the_user_line"
    assert [trace.site(e) for e in evs[:2]] == [(THIS_FILE, line - 1, me)] * 2


def _wait_three_ways(kind: str, lines: dict) -> None:
    """On a Condition over a named Lock or RLock (held twice): a wait that times
    out, one that a notify ends while the notifier still holds the lock, one whose
    timeout is no number (TypeError, as the original; a trace holds no such
    timeout: the schema wants a number there)."""
    lock = recorder.name(getattr(threading, kind)(), kind)
    cond = recorder.name(threading.Condition(lock), "cond " + kind)
    with cond:
        if kind == "RLock":
            lock.acquire()
        assert cond.wait(0) is False; lines["timeout"] = sys._getframe().f_lineno  # noqa: E702
        waiting = threading.Event()

        def notifier() -> None:
            assert waiting.wait(10)
            with cond:
                cond.notify()
                time.sleep(0.2)  # (the waiter finds the lock taken when it takes it back)

        t = threading.Thread(target=notifier)
        t.start()
        waiting.set()
        assert cond.wait(10) is True; lines["notified"] = sys._getframe().f_lineno  # noqa: E702
        t.join(10)
        with pytest.raises(TypeError):
            cond.wait("soon")
        lines["error"] = sys._getframe().f_lineno - 1
        assert cond._is_owned() and not cond._waiters
        if kind == "RLock":
            lock.release()


def test_a_condition_wait_is_recorded_at_the_user_line_over_either_lock(rec):
    """Condition.wait (C when built, Python without): wait-begin once the lock is
    given up, wait-end with its outcome before it is taken back, the lock's
    release and acquire (one each: an RLock held at two levels gives up and takes
    back both, but its inner levels are not recorded), a ``wait`` when another
    thread holds it then, all at the caller's line; an error ends the wait as the
    original's."""
    rec.start()
    lines: dict = {}
    for kind in ("Lock", "RLock"):
        lines[kind] = {}
        _wait_three_ways(kind, lines[kind])
    trace = rec.stop()
    main = trace.thread("MainThread")["id"]
    me = "_wait_three_ways"
    for kind in ("Lock", "RLock"):
        at = {k: (THIS_FILE, line, me) for k, line in lines[kind].items()}
        cond = trace.evs(trace.one("resource", "cond " + kind)["id"], main)
        assert [(e["op"], e.get("timeout"), e.get("outcome"), e.get("error"), trace.site(e))
                for e in cond] == [
            ("wait-begin", 0, None, None, at["timeout"]),
            ("wait-end", None, "timeout", None, at["timeout"]),
            ("wait-begin", 10, None, None, at["notified"]),
            ("wait-end", None, "ok", None, at["notified"]),
            ("wait-begin", None, None, None, at["error"]),  # (no number: no field)
            ("wait-end", None, "error", "TypeError", at["error"])]
        lock = [(e["op"], trace.site(e) if "site" in e else None)
                for e in trace.evs(trace.one("lock", kind)["id"], main)]
        back = {k: [("acquire", at[k])] for k in at}
        gone = [("release", None)]
        assert lock == (
            [("acquire", lock[0][1])]
            + gone + back["timeout"]
            + gone + [("wait", at["notified"])] + back["notified"]
            + gone + back["error"] + gone), kind


@needs_c
def test_a_condition_wait_runs_no_python_frame_of_the_recorder(rec):
    """The traced Condition.wait and the traced RLock's _release_save and
    _acquire_restore are C: their Python frames cost each wait about 12k
    instructions (full mode: 32k against the original's 10.7k for a wait(0) on a
    Condition(), 20k in C)."""
    rec.start(flush_interval=3600)
    calls: list = []

    def profile(frame, event, arg):  # noqa: ANN001, ANN202
        if event == "call" and "recorder" in frame.f_code.co_filename:
            calls.append(frame.f_code.co_name)

    conds = [threading.Condition(), threading.Condition(threading.Lock())]
    for watched in (False, True):  # (the first round puts the sites in the cache)
        sys.setprofile(profile if watched else None)
        try:
            for cond in conds:
                with cond:
                    cond.wait(0)
                    cond.wait(timeout=0.001)
        finally:
            sys.setprofile(None)
    assert calls == []


class _Exploding:
    """A buffer that refuses every event."""

    def __len__(self) -> int:
        return 0

    def append(self, item: object) -> None:
        raise ValueError("boom")


def test_a_failure_while_recording_never_reaches_the_program(rec):
    rec.start()
    lock = threading.Lock()
    rlock = threading.RLock()
    st = _core.current_state()
    saved = st.buf
    st.buf = _Exploding()
    try:
        for lk in (lock, rlock):
            with lk:
                assert lk.locked() if lk is lock else True
            assert lk.acquire()
            lk.release()
    finally:
        st.buf = saved
    assert not lock.locked()
    rec.stop()
    # The lock's own errors still reach the program, as with the original.
    with pytest.raises(RuntimeError):
        lock.release()


def test_a_full_buffer_counts_drops_on_the_c_path(rec):
    rec.start(max_buffer_events=64, flush_interval=3600)
    lock = threading.Lock()
    st = _core.current_state()
    before = st.dropped
    io = recorder._sink._io
    assert io.acquire(True, 5)  # the writer cannot drain: the buffer stays full
    try:
        for _ in range(200):
            with lock:
                pass
    finally:
        io.release()
    assert len(st.buf) <= 64
    assert st.dropped - before >= 400 - 64
    trace = rec.stop()
    assert sum(r["count"] for r in trace.records if r["k"] == "dropped") >= 400 - 64


def _mixed_events() -> list:
    """Events of every shape the writer meets: locks, sites, waits with extras,
    names, threads, and events by asyncio tasks."""
    lock = recorder.name(threading.Lock(), "mixed \"quoted\" \u00e9")
    ev = threading.Event()
    for _ in range(150):
        with lock:
            pass
    ev.set()
    ev.wait(1)
    cond = threading.Condition(lock)
    for _ in range(3):  # (signals: the encoder copies the text of fields it just wrote)
        with cond:
            cond.notify()
            cond.notify_all()

    async def task_work() -> None:
        alock = asyncio.Lock()
        for _ in range(3):
            async with alock:
                await asyncio.sleep(0)
        with lock:
            pass

    asyncio.run(task_work())
    t = threading.Thread(target=lambda: lock.acquire() and lock.release(), name="t\n1")
    t.start()
    t.join(10)
    from concurrent.futures import ThreadPoolExecutor

    def job_é() -> None:  # (a job whose name JSON must escape: Python writes it)
        pass

    with ThreadPoolExecutor(1) as pool:  # (submissions name each job's segment)
        for fn in (abs, abs, job_é):
            pool.submit(fn, *([1] if fn is abs else [])).result()
    st = _core.current_state()
    return list(st.buf)


@needs_c
@pytest.mark.parametrize("max_file_mb", [0, 0.004])
def test_c_and_python_encoders_write_the_same_bytes(rec, monkeypatch, max_file_mb):
    rec.start(flush_interval=3600)
    events = _mixed_events()
    assert any(len(e) == 5 and e[4] is not None for e in events)  # by a task
    assert any(len(e) == 6 for e in events)  # with extra fields
    assert sum(e[1] == "acquire" for e in events) >= 8
    assert sum(type(e[2]).__name__ == "Job" for e in events) >= 2  # (pool job segments)
    st = _core.current_state()
    outputs = []
    for fast in (_sink._encode_fast, None):
        monkeypatch.setattr(_sink, "_encode_fast", fast)
        sink = _sink.Sink(str(rec.out_dir / ("c" if fast else "py")), {}, 3600, max_file_mb)
        sink.open()
        sink._write_header()
        out = bytearray()
        sink._encode(st, events, out)
        sink._write(bytes(out))
        os.close(sink.fd)
        outputs.append([Path(f).read_bytes() for f in sink.files])
    c_parts, py_parts = outputs
    if not max_file_mb:  # identical after the header (which holds clock readings)
        assert [p.split(b"\n", 1)[1] for p in c_parts] == \
            [p.split(b"\n", 1)[1] for p in py_parts]
    else:
        # Both rotate (the C encoder checks the size after every event, the Python one
        # every 64): the same events, every part self-contained.
        assert len(c_parts) > 1 and len(py_parts) > 1
        for parts in outputs:
            for i, data in enumerate(parts):
                check_part([orjson.loads(line) for line in data.splitlines()], f"part {i}")

        def ev_lines(parts: list[bytes]) -> list[bytes]:
            return [line for data in parts for line in data.splitlines()
                    if line.startswith(b'{"k":"ev"')]

        assert ev_lines(c_parts) == ev_lines(py_parts)
    rec.stop()


@needs_c
def test_definitions_from_a_prototype_are_written_as_field_by_field(rec, monkeypatch):
    """The C writer copies the text a definition shares with its place's prototype
    while the definition is as define_c made it: the same bytes as the Python
    encoder's, for every kind of primitive (keyword fields: owners, locks, roles);
    one changed since it was made (named here) is written field by field."""
    import queue

    rec.start(flush_interval=3600)

    def make(i: int) -> tuple:
        lk, rl, cond = threading.Lock(), threading.RLock(), threading.Condition()
        ev, sem, q = threading.Event(), threading.BoundedSemaphore(2), queue.Queue()
        if i % 3 == 0:
            recorder.name(lk, f'lock "{i}"')
        with lk, rl, cond:
            cond.notify()
        ev.set()
        sem.acquire()
        sem.release()
        q.put(i)
        q.get()
        return lk, rl, cond, ev, sem, q

    kept = [make(i) for i in range(12)]
    st = _core.current_state()
    events = list(st.buf)
    outputs = []
    for fast in (_sink._encode_fast, None):
        monkeypatch.setattr(_sink, "_encode_fast", fast)
        sink = _sink.Sink(str(rec.out_dir / ("c" if fast else "py")), {}, 3600, 0)
        sink.open()
        out = bytearray()
        texts0 = _core.speedups.encoder_stats()[3]
        sink._encode(st, events, out)
        if fast:
            texts = _core.speedups.encoder_stats()[3] - texts0
        os.close(sink.fd)
        outputs.append(bytes(out))
    rec.stop()
    assert outputs[0] == outputs[1]
    records = [orjson.loads(line) for line in outputs[0].splitlines()]
    named = [r for r in records if r["k"] == "lock" and (r["name"] or "").startswith('lock "')]
    assert len(named) == 4  # (written field by field: renamed after they were made)
    assert {r["k"] for r in records} >= {"lock", "resource"}
    # every primitive but the first of each place, and the renamed locks
    assert texts >= 11 * 6 - 4, texts
    assert len(kept) == 12


def _encode_in_c(rec, st, events: list) -> tuple[bytearray, int]:
    """The lines a new sink's C writer makes of ``events`` (of thread state ``st``),
    and how many definitions it wrote from their prototype's text."""
    sink = _sink.Sink(str(rec.out_dir / "c"), {}, 3600, 0)
    sink.open()
    out = bytearray()
    before = _core.speedups.encoder_stats()[3]
    try:
        sink._encode(st, events, out)
    finally:
        os.close(sink.fd)
    return out, _core.speedups.encoder_stats()[3] - before


@needs_c
def test_a_conditions_own_rlock_is_written_from_its_prototype_too(rec):
    """A Condition's own RLock gets its ``owner`` field once the Condition is
    defined: a field added at the end, which the writer writes after the text the
    lock shares with its prototype (as a Future's two primitives, each job)."""
    rec.start(flush_interval=3600)
    conds = [threading.Condition() for _ in range(21)]
    for cond in conds:
        with cond:
            pass
    st = _core.current_state()
    events = [e for e in st.buf if e[1] == "acquire"][-20:]  # (not the first's)
    out, texts = _encode_in_c(rec, st, events)
    rec.stop()
    locks = [orjson.loads(x) for x in out.splitlines() if x.startswith(b'{"k":"lock"')]
    assert len(locks) == 20 and all(lk["owner"] for lk in locks)
    assert list(locks[0])[-1] == "owner"
    assert texts == 20, texts  # each RLock (the events name it, not its Condition)


@needs_c
def test_a_lock_defined_in_c_is_written_without_its_definition_dict(rec):
    """A traced Lock, RLock or Condition made where one was made before keeps its
    definition lazy: the writer writes it from its prototype's text and its own
    fields, and the dict is made only when something reads ``_ls_def`` -- the
    same record, key for key, either way: a program's Lock and RLock, a
    Condition's own RLock (with its ``owner``), a library's lock (expr, lib,
    user_site), a Condition (its ``lock``), a Future's, a queue's (lock, owner, role)."""
    import concurrent.futures
    import logging
    import queue

    rec.start(flush_interval=3600)
    made = []
    for _ in range(6):
        lk, rl, cond, handler = threading.Lock(), threading.RLock(), threading.Condition(), \
            logging.Handler()
        fut, q = concurrent.futures.Future(), queue.Queue()
        for lock in (lk, rl, handler.lock):
            with lock:
                pass
        for c in (cond, fut._condition, q.not_empty):
            with c:
                c.notify()
        made.append((lk, rl, cond._lock, handler.lock, cond, fut._condition, q.mutex, q.not_empty))
        assert "_ls_def" not in vars(cond)
    st = _core.current_state()
    out, texts = _encode_in_c(rec, st, list(st.buf))
    written = {r["id"]: r for r in map(orjson.loads, out.splitlines())
               if r["k"] in ("lock", "resource")}
    later = [obj for objs in made[1:] for obj in objs]
    assert texts >= len(later), texts  # (none went to the Python writer)
    for obj in later:  # (read only now: written while lazy)
        assert list(written[obj._ls_id].items()) == list(obj._ls_def.items())
        assert obj._ls_def is obj._ls_ref._ls_def is obj._ls_def  # (made once)
    rl_def, own_def, lib_def, cond_def, fut_def = (written[made[-1][i]._ls_id] for i in (1, 2, 3, 4, 5))
    assert rl_def["reentrant"] is True and "owner" not in rl_def
    assert own_def["owner"] == made[-1][4]._ls_id and list(own_def)[-1] == "owner"
    assert lib_def["lib"] == "logging" and lib_def["user_site"] and lib_def["expr"]
    assert cond_def["k"] == "resource" and cond_def["lock"] == made[-1][2]._ls_id
    assert fut_def["expr"] == "Future._condition" and fut_def["lib"] == "concurrent.futures"
    q_def = written[made[-1][7]._ls_id]
    assert list(q_def)[7:10] == ["lock", "owner", "role"] and q_def["role"] == "not_empty"
    rec.stop()


@needs_c
def test_a_queues_conditions_keep_their_definitions_on_their_refs(rec):
    """A Condition defined in C with more keyword fields than a lazy definition
    keeps (a queue's: lock, owner, role) still has its dict on its Ref alone: no
    attribute of its own for it (a first version stored it as ``_ls_def_early``,
    each after an AttributeError raised and caught: Queue() cost 13k more)."""
    import queue

    rec.start(flush_interval=3600)
    qs = [queue.Queue() for _ in range(3)]  # (the first: Python's define)
    for q in qs[1:]:
        for role, cond in (("not_empty", q.not_empty), ("not_full", q.not_full),
                           ("all_tasks_done", q.all_tasks_done)):
            assert not [a for a in vars(cond) if a.startswith("_ls_def")]
            assert cond._ls_def is cond._ls_ref._ls_def
            assert cond._ls_def["role"] == role and cond._ls_def["owner"] == q._ls_id
    rec.stop()


@needs_c
def test_a_traced_lock_takes_no_definition_dict_until_read(rec):
    """Memory per traced lock: its definition dict and time stamp were 300 of the
    530 bytes a traced Lock added to the original's 100 (a table of per-key locks
    pays it per key), and a Future paid it twice (its Condition, its RLock); now
    made only when read.  Setting ``_ls_def`` (Python's define()) still works, and
    reading it back gives what was set."""
    import concurrent.futures
    import tracemalloc

    def per_object(make) -> float:
        keep = [make() for _ in range(10)]  # (the place's first: Python's define)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            keep = [make() for _ in range(2000)]
            return (tracemalloc.get_traced_memory()[0] - base) / len(keep)
        finally:
            tracemalloc.stop()

    rec.start(flush_interval=3600)
    per_lock = per_object(threading.Lock)
    assert per_lock < 450, per_lock  # (627 with the dict; about 360 without)
    per_future = per_object(concurrent.futures.Future)
    assert per_future < 2400, per_future  # (3,049 with two dicts; about 2,130 without)
    keep = [threading.Lock() for _ in range(11)]
    lk = keep[0]
    assert lk._ls_def["type"] == "threading.Lock" and lk._ls_def["id"] == lk._ls_id
    lk._ls_def = {"k": "lock", "id": lk._ls_id}
    assert lk._ls_def == {"k": "lock", "id": lk._ls_id}
    del lk._ls_def
    assert lk._ls_def["type"] == "threading.Lock"  # (its Ref's again)
    rec.stop()


def _events_as_both_encoders_write(rec, monkeypatch, st, events) -> list[dict]:
    """`events` of `st` written by the C encoder and by the Python one, which must
    write the same bytes: the ``ev`` records."""
    lines = []
    for fast in (_sink._encode_fast, None):
        monkeypatch.setattr(_sink, "_encode_fast", fast)
        sink = _sink.Sink(str(rec.out_dir / ("c" if fast else "py")), {}, 3600, 0)
        sink.open()
        out = bytearray()
        sink._encode(st, events, out)
        os.close(sink.fd)
        lines.append([x for x in out.splitlines() if x.startswith(b'{"k":"ev"')])
    assert lines[0] == lines[1]
    return [orjson.loads(x) for x in lines[0]]


@needs_c
def test_the_c_encoder_writes_every_time_stamp_digit(rec, monkeypatch):
    """The C encoder copies the digits above the last 8 from the previous stamp's:
    stamps crossing such a boundary, with zeros below it, under 10**8 and of more
    digits come out as the Python encoder writes them."""
    rec.start(flush_interval=3600)
    lock = threading.Lock()
    for _ in range(12):
        with lock:
            pass
    st = _core.current_state()
    base = [tuple(e) for e in st.buf if e[1] in ("acquire", "release")][-12:]
    stamps = [99_999_999, 100_000_000, 100_000_001, 1_699_999_999, 1_700_000_000,
              1_700_000_000, 1_800_000_007, 12_345_678_901_234_567, 12_345_678_900_000_000,
              5, 10**17, 10**17 + 99]
    events = [(ts,) + e[1:] for ts, e in zip(stamps, base, strict=True)]
    written = _events_as_both_encoders_write(rec, monkeypatch, st, events)
    assert [e["ts"] for e in written] == stamps
    rec.stop()


@needs_c
def test_the_c_encoder_writes_ops_of_any_length(rec, monkeypatch):
    """The C encoder copies an op's text of up to 24 bytes whole, padded, and a
    longer one by its length: ops of every length around that, escaped ones too,
    come out as the Python encoder writes them."""
    rec.start(flush_interval=3600)
    lock = threading.Lock()
    with lock:
        pass
    st = _core.current_state()
    base = [tuple(e) for e in st.buf if e[1] == "acquire"][-1]
    ops = ["acquire", "x" * 23, "y" * 24, "z" * 25, "w" * 60, 'q"uote\\' * 4, "release"]
    events = [(1_700_000_000 + i,) + (op,) + base[2:] for i, op in enumerate(ops)]
    assert [e["op"] for e in _events_as_both_encoders_write(rec, monkeypatch, st, events)] == ops
    rec.stop()


@needs_c
def test_encode_batches_looks_shared_locks_sites_and_ops_up_once_a_call(rec, monkeypatch):
    """A thread per request gives the writer one small batch per thread: encode_batches
    writes them as the Python encoder does batch by batch, and looks up the locks,
    sites and ops they share once for the whole call, not once a batch (with 40
    batches: 80 op, 120 site and 120 object lookups before)."""
    rec.start(flush_interval=3600)
    a, b = threading.Lock(), threading.RLock()

    def request() -> None:
        with a:
            pass
        with b:
            with a:
                pass

    for _ in range(40):
        t = threading.Thread(target=request)
        t.start()
        t.join(10)
    batches = [(st, list(st.buf)) for st in list(_core.states) if st.buf]
    assert len(batches) >= 40
    outputs = []
    for fast in (True, False):
        sink = _sink.Sink(str(rec.out_dir / ("c" if fast else "py")), {}, 3600, 0)
        sink.open()
        out = bytearray()
        if fast:
            before = _core.speedups.encoder_stats()
            done = _sink._encode_batches(batches, 0, sink.written, sink.written_sites,
                                         _sink._OPS, out, -1, sink._define, sink._define_site)
            assert done == (len(batches), 0)
            ops, sites, objs, _texts = (x - y for x, y in zip(_core.speedups.encoder_stats(),
                                                               before, strict=True))
        else:
            monkeypatch.setattr(_sink, "_encode_fast", None)
            for st, events in batches:
                sink._encode(st, events, out)
        os.close(sink.fd)
        outputs.append(bytes(out))
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b'"op":"acquire"') >= 120
    assert ops <= 8, ops  # acquire, release, start, end ... once each
    assert sites <= 12, sites  # the 3 sites of `request`, Thread.start's, the main's
    # a thread's state is looked up once, in the main thread's start events (its own
    # batch defines it first, and its `end` names it); the two locks about once
    assert objs <= len(batches) + 12, objs
    rec.stop()


@pytest.mark.skipif(PURE or _core.speedups is None,
                    reason="already pure Python (or no C accelerator to compare with)")
@pytest.mark.timeout(900)
def test_the_recorder_suite_passes_in_pure_python():
    env = dict(os.environ, LOCKSCOPE_PURE_PYTHON="1")

    def run(targets: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider",
             "-p", "no:xdist", *targets],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=800)

    proc = run([str(HERE), str(HERE.parent / "recorder_asyncio")])
    if proc.returncode != 0:
        # Some of these tests run real processes under a deadline: on a loaded machine
        # give the failed ones one more try, and show what failed either way.
        failed = [line.split()[1] for line in proc.stdout.splitlines()
                  if line.startswith("FAILED ")]
        assert failed, proc.stdout[-4000:] + proc.stderr[-2000:]
        print("failed once in pure Python, retried:", failed)
        proc = run(failed)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout


def test_locks_taken_while_threads_are_torn_down(rec):
    # A thread-local connection returned to its pool by __del__ when the thread
    # exits: the lock is taken after the thread's recording state has ended, while
    # Python clears the thread's locals.  It must neither crash nor be lost.
    rec.start()
    pool = recorder.name(threading.Lock(), "pool")
    local = threading.local()
    returned: list[int] = []

    class Conn:
        def __del__(self) -> None:
            with pool:
                returned.append(1)

    def work() -> None:
        local.conn = Conn()
        with pool:
            pass

    for _ in range(20):
        t = threading.Thread(target=work)
        t.start()
        t.join(10)
        recorder.flush()  # the writer drains, then forgets, the ended threads
    assert len(returned) == 20
    trace = rec.stop()
    acquires = trace.evs(trace.one("lock", "pool")["id"], op="acquire")
    assert len(acquires) == 40


def test_a_lock_used_again_in_a_later_recording_names_that_recordings_sites(rec, tmp_path):
    # Every start rebuilds the site caches (and each part defines what it uses): what
    # a lock remembers of its last call site must still be defined in the new file.
    def take(lock: threading.Lock) -> int:
        with lock:
            return sys._getframe().f_lineno - 1

    rec.start()
    lock = recorder.name(threading.Lock(), "reused")
    for _ in range(3):
        line = take(lock)
    rec.stop()
    again = type(rec)(tmp_path / "second")
    again.start()
    threading.Lock()  # (intern a few other sites first, so the ids differ)
    for _ in range(3):
        assert take(lock) == line
    trace = again.stop()
    evs = trace.evs(lock._ls_id, op="acquire")
    assert [trace.site(e) for e in evs] == [(THIS_FILE, line, "take")] * 3


@needs_c
def test_the_c_encoder_writes_plain_extra_fields_as_python_does(rec, monkeypatch):
    """Events with extra fields (signals, wait outcomes) are encoded in C when every
    field is plain; anything else (a float, a string to escape, a huge int, a key
    of the common fields, a name event) goes to the Python encoder: same bytes."""
    rec.start(flush_interval=3600)
    lock = threading.Lock()
    with lock:
        pass
    st = _core.current_state()
    site = st.buf[-2][3]
    ts = 1_000_000_000_123
    plain = [{"sig": "notify", "n": 3}, {"outcome": "ok"}, {"flag": True, "none": None},
             {"off": False, "neg": -5}, {},
             # ints of 0, 1, 2 and 3 digits of 30 bits (read in place up to 2)
             {"a": 0, "b": 2 ** 30 - 1, "c": -(2 ** 30), "d": 2 ** 60 - 1, "e": -(2 ** 60) + 1,
              "f": 2 ** 60, "g": -(2 ** 63), "h": 2 ** 63 - 1, "i": 33_000_000_000_000}]
    other = [{"timeout": 0.5}, {"error": 'Weird"Name'}, {"error": "caf\u00e9"},
             {"k": "x"}, {"sig": "a\nb"}]
    events = [(ts + i, "signal", lock, site if i % 2 else 0, None, extra)
              for i, extra in enumerate(plain)]
    sink = _sink.Sink(str(rec.out_dir / "probe"), {}, 3600, 0)
    sink.written.add(lock._ls_id)
    sink.written_sites.add(site)
    out = bytearray()
    reached = _sink._encode_fast(events, 0, st.tid, sink.written, sink.written_sites,
                                 _sink._OPS, out, -1)
    assert reached == len(events)  # all of them in C
    for extra in [*other, {"n": 2 ** 70}]:  # (orjson itself refuses the last one)
        probe = [(ts, "signal", lock, 0, None, extra)]
        assert _sink._encode_fast(probe, 0, st.tid, sink.written, sink.written_sites,
                                  _sink._OPS, bytearray(), -1) == 0, extra
    name_ev = [(ts, "name", lock, 0, None, {"name": "n"})]
    assert _sink._encode_fast(name_ev, 0, st.tid, sink.written, sink.written_sites,
                              _sink._OPS, bytearray(), -1) == 0
    events += [(ts, "signal", lock, 0, None, extra) for extra in other] + name_ev
    outputs = []
    for fast in (_sink._encode_fast, None):
        monkeypatch.setattr(_sink, "_encode_fast", fast)
        sink = _sink.Sink(str(rec.out_dir / ("c" if fast else "py")), {}, 3600, 0)
        out = bytearray()
        sink._encode(st, events, out)
        outputs.append(bytes(out))
    assert outputs[0] == outputs[1]
    lines = [orjson.loads(line) for line in outputs[0].splitlines()]
    assert [d for d in lines if d["k"] == "ev"][0] == {
        "k": "ev", "ts": ts, "th": st.tid, "obj": lock._ls_id, "op": "signal",
        "sig": "notify", "n": 3}
    rec.stop()


@needs_c
def test_event_buffers_are_not_scanned_by_the_cyclic_gc(rec):
    """A thread's buffer and a batch the writer took hold only untracked event
    tuples: a full collection must not visit each of them (it often holds a
    million).  Events name an object's Ref, not the object: a condition (and its
    lock) is freed as soon as the program drops it, its events still buffered, and
    they are written with its definition and its lock's."""
    import gc
    import weakref

    rec.start(flush_interval=3600)
    lock = threading.Lock()
    with lock:
        pass
    st = _core.current_state()
    assert not gc.is_tracked(st.buf)
    assert len(st.buf) >= 2 and not any(gc.is_tracked(ev) for ev in st.buf)
    batch = _core.speedups.take(st.buf, 2)
    assert not gc.is_tracked(batch)
    cond = threading.Condition(threading.Lock())
    with cond:
        cond.notify()
    alive, lock_alive = weakref.ref(cond), weakref.ref(cond._lock)
    cond_id, lock_id = cond._ls_id, cond._lock._ls_id
    del cond
    assert alive() is None and lock_alive() is None  # freed at once: no cycle, no event holds them
    trace = rec.stop()
    assert trace.defs[cond_id]["type"] == "threading.Condition"
    assert trace.defs[cond_id]["lock"] == lock_id
    assert trace.defs[lock_id]["type"] == "threading.Lock"
    assert [e["op"] for e in trace.evs(obj=cond_id)] == ["signal"]
    assert [e["op"] for e in trace.evs(obj=lock_id)] == ["acquire", "release"]


def _gc_objects_made_by(make, n: int = 200) -> int:
    """How many objects the cyclic GC tracks per call of ``make`` (kept alive)."""
    import gc

    gc.collect()
    gc.disable()
    try:
        before = {id(o) for o in gc.get_objects()}
        keep = [make() for _ in range(n)]
        made = sum(1 for o in gc.get_objects() if id(o) not in before)
        del keep
    finally:
        gc.enable()
    return round(made / n)


@needs_c
@pytest.mark.skipif(sys.version_info >= (3, 13), reason="threading.Lock is the lock type")
def test_threading_lock_is_a_c_factory_that_presents_itself_as_the_original(rec):
    """Before 3.13 ``threading.Lock`` is a function, ``_thread.allocate_lock``.  The
    traced one is the accelerator's LockFactory, called by vectorcall: an instance
    of a Python class with ``__call__`` paid a type lookup and a slot call at each
    ``Lock()`` (~330 instructions; a Thread makes one for its ``_started`` Event).
    It names, documents, shows and pickles itself as the original."""
    import _thread
    import pickle

    rec.start(flush_interval=3600)
    factory = threading.Lock
    assert type(factory) is _core.speedups.LockFactory
    for attr in ("__name__", "__qualname__", "__module__", "__doc__", "__text_signature__"):
        assert getattr(factory, attr) == getattr(_thread.allocate_lock, attr), attr
    assert repr(factory) == repr(_thread.allocate_lock)
    assert pickle.loads(pickle.dumps(factory)) is _thread.allocate_lock
    lock = factory()
    assert type(lock).__name__ == "lock" and isinstance(lock._ls_id, int)
    with pytest.raises(TypeError, match="takes no arguments"):
        factory(1)
    with pytest.raises(AttributeError):
        _ = factory.no_such_attribute


@needs_c
def test_a_traced_condition_keeps_its_attributes_inline_as_the_original(tmp_path):
    """The traced Condition's __new__ (C) made the instance with tp_alloc, without
    the inline values object.__new__ gives it before 3.13: its first attribute then
    made it a __dict__, a dict per Condition (a Future's too) for the GC to count
    and walk (ThreadPoolExecutor.map, full mode: ~10k instructions a job).  In a
    fresh process: a class whose instances were given 30 different attribute names
    in all gives its next ones a __dict__ (CPython's shared keys are full), the
    original's as ours, and this suite's process gets there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSCOPE_")}
    env["LOCKSCOPE_OUT"] = str(tmp_path / "traces")
    res = subprocess.run([sys.executable, "-c", _INLINE_PROGRAM], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert res.stdout.split() == ["False"] * 5


_INLINE_PROGRAM = """
import gc, threading
from concurrent.futures import Future

def has_dict(cond):
    # (inline values: the GC sees its attributes, as its lock; a __dict__: only that)
    return not any(r is cond._lock for r in gc.get_referents(cond))

class MyCondition(threading.Condition):
    pass

made = [threading.Condition(), threading.Condition(threading.Lock()),
        threading.Condition(threading.RLock()), Future()._condition, MyCondition()]
assert all(isinstance(c._ls_id, int) for c in made)
with made[0]:
    made[0].notify()
print(*[has_dict(c) for c in made])
"""


@needs_c
def test_traced_locks_are_not_gc_objects(rec):
    """A traced Lock or RLock can be part of no reference cycle (slots holding the
    inner lock, ints, its Ref and plain fields), so the cyclic GC need not walk
    it: it was four GC objects a lock (itself, the inner lock and the inner
    lock's bound acquire/release) where the original is at most one, and a pool
    making a Future per job paid for them in full collections
    (ThreadPoolExecutor.map of 30k jobs: 0.9 s of its 2.3 s of CPU).  A
    Condition then costs at most 3 GC objects more than the original's (its
    lock's bound Python methods), a Future as much."""
    import gc
    import weakref
    from concurrent.futures import Future

    original = {name: _gc_objects_made_by(make) for name, make in (
        ("Condition", threading.Condition), ("Future", Future))}
    rec.start(flush_interval=3600)
    assert _gc_objects_made_by(threading.Lock) == 0
    assert _gc_objects_made_by(threading.RLock) == 0
    assert _gc_objects_made_by(threading.Condition) <= original["Condition"] + 3
    assert _gc_objects_made_by(Future) <= original["Future"] + 3
    lock, rlock = threading.Lock(), threading.RLock()
    assert not gc.is_tracked(lock) and not gc.is_tracked(lock._lock)
    assert not gc.is_tracked(rlock) and not gc.is_tracked(rlock._lock)
    conds = [threading.Condition() for _ in range(2)]  # (the second one: the C path)
    assert not gc.is_tracked(conds[1]._ls_deps) and not gc.is_tracked(conds[1]._ls_def)
    from concurrent.futures import ThreadPoolExecutor

    from recorder import _jobs

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(abs, -1).result() == 1
    job = _jobs.Job(abs)
    assert not gc.is_tracked(job) and not gc.is_tracked(job._ls_record())
    with lock, rlock, rlock:  # the inner locks' methods are called unbound
        assert lock.locked() and not lock.acquire(False) and rlock.acquire(timeout=0.1)
        rlock.release()
    assert not lock.locked()

    class Mine(type(rlock)):  # a subclass may hold anything: the GC keeps it
        pass

    mine = Mine()
    mine.me = mine
    assert gc.is_tracked(mine)
    gone = weakref.ref(mine)
    del mine
    gc.collect()
    assert gone() is None
    del lock, rlock  # (untracked objects are freed as usual)
    trace = rec.stop()
    assert trace.evs(op="acquire")


@needs_c
def test_site_id_in_c_names_the_sites_the_python_one_names(rec):
    """_speedups.site_id(depth) against the Python site_id (from user frames, and
    through a library frame: threading.py's), for every depth including none left."""
    rec.start(flush_interval=3600)

    def both(depth: int) -> tuple[int, int]:
        return _core.site_id(depth), _core._py_site_id(depth)

    def level2(depth: int) -> tuple[int, int]:
        return both(depth)

    def level3(depth: int) -> tuple[int, int]:
        return level2(depth)

    for depth in (-1, 0, 1, 2, 3, 4, 5, 500):
        c_sid, py_sid = level3(depth)
        assert c_sid == py_sid, depth
    assert level3(2)[0] != level3(3)[0] != 0  # different lines of this file
    assert level3(500) == (0, 0)
    # a frame of threading.py (a library) is skipped to its caller: this line
    found = []
    ev = threading.Event()
    threading.Thread(target=lambda: (found.append(both(3)), ev.set())).start()
    assert ev.wait(10)
    assert found[0][0] == found[0][1]
    rec.stop()


class _Account:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rlock = threading.RLock()


def _make_everything() -> list:
    import concurrent.futures
    import queue

    registry_lock = threading.Lock()
    made = [registry_lock, threading.RLock(), threading.Condition(), threading.Event(),
            threading.Semaphore(2), queue.Queue(), concurrent.futures.Future(), _Account()]
    return made


def _definitions(objs: list) -> list:
    """Every definition the objects (and what they made inside) carry, without the
    fields that differ from one creation to the next."""
    return [{k: v for k, v in d.items() if k not in ("id", "ts", "owner", "lock")}
            for d in _raw_definitions(objs)]


def _raw_definitions(objs: list) -> list:
    """Every definition dict the objects (and what they made inside) carry."""
    found, todo = [], list(objs)
    while todo:
        o = todo.pop(0)
        d = getattr(o, "_ls_def", None)
        if d is not None and not any(d is f for f in found):
            found.append(d)
        if isinstance(o, _Account):
            todo += [o.lock, o.rlock]
        for attr in ("_cond", "_condition", "mutex", "not_empty", "not_full", "all_tasks_done",
                     "_lock"):
            inner = getattr(o, attr, None)
            if inner is not None and inner is not o:
                todo.append(inner)
    return found


@needs_c
def test_definitions_made_again_at_one_place_copy_its_prototype(rec):
    """A definition made again where one was made (a lock per item) is a copy of that
    place's prototype with its id, time stamp, thread and keyword fields set; a
    library's primitive made from two lines of the program, in turn, keeps the
    user site of each (the place includes it)."""
    import queue

    rec.start(flush_interval=3600)
    made0 = _core.speedups.definition_prototypes()
    locks = [threading.Lock() for _ in range(300)]
    made1 = _core.speedups.definition_prototypes()
    queues_a, queues_b = [], []
    for _ in range(20):
        queues_a.append(queue.Queue())
        queues_b.append(queue.Queue())
    made2 = _core.speedups.definition_prototypes()
    defs = [lk._ls_def for lk in locks]
    rec.stop()
    assert made1 - made0 <= 2  # (the first lock goes through Python's define())
    assert len({d["id"] for d in defs}) == 300
    assert all(d["th"] == defs[0]["th"] for d in defs)
    assert [d["ts"] for d in defs] == sorted(d["ts"] for d in defs)
    strip = ("id", "ts")
    assert all({k: v for k, v in d.items() if k not in strip}
               == {k: v for k, v in defs[1].items() if k not in strip} for d in defs[1:])
    assert all(list(d) == list(defs[1]) for d in defs)  # the fields in their order
    # each queue makes 1 lock and 3 conditions: a few prototypes per line, not per queue
    assert made2 - made1 <= 8
    for queues in (queues_a, queues_b):
        users = {q.mutex._ls_def["user_site"] for q in queues[1:]}
        assert len(users) == 1 and None not in users
    assert queues_a[5].mutex._ls_def["user_site"] != queues_b[5].mutex._ls_def["user_site"]
    assert queues_a[5].mutex._ls_def["expr"] == "queue.Queue.mutex"


_PLACES_IN_TURN = r"""
import sys, tempfile, threading
import recorder
from recorder import _core
src = ("def make():\n"
       + "".join(f"    lock{i} = threading.Lock()\n" for i in range(24))
       + "    return [" + ", ".join(f"lock{i}" for i in range(24)) + "]\n")
ns = {"threading": threading}
exec(compile(src, "<twenty-four places>", "exec"), ns)
recorder.start(tempfile.mkdtemp(), flush_interval=3600)
ns["make"]()  # (the first lock at each place is defined by Python's define())
made0 = _core.speedups.definition_prototypes()
kept = [ns["make"]() for _ in range(10)]
made = _core.speedups.definition_prototypes() - made0
recorder.stop()
print(made, len({lk._ls_def["site"] for lk in kept[-1]}))
"""


@needs_c
def test_places_used_in_turn_keep_their_prototypes(tmp_path):
    """Prototypes are kept in sets of 8, the last used first: 24 places used in turn
    make one each (kept in one slot each, two that fell in the same slot replaced each
    other at every use: about one place in five did, each round).  (In a process of
    its own: the count is the process's, so a lock another thread makes at a new
    place meanwhile, such as one an earlier test left running, counts too; it failed
    once so on a loaded machine.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSCOPE_")}
    env["PYTHONPATH"] = str(ROOT)
    res = subprocess.run([sys.executable, "-c", _PLACES_IN_TURN], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["24", "24"], res.stdout


@needs_c
def test_creation_at_a_site_seen_before_is_defined_in_c_with_the_same_record(rec):
    # The first creation at each site goes through the Python define() (it works
    # out the site and the name); the next ones are built in C from its caches and
    # must carry the same record: type, site, expr, lib, user_site, fields, in order.
    rec.start()
    first = _definitions(_make_everything())
    fast0, slow0 = _core.speedups.define_stats()
    second = _definitions(_make_everything())
    fast1, slow1 = _core.speedups.define_stats()
    rec.stop()
    assert [list(d) for d in second] == [list(d) for d in first]  # same keys, same order
    assert second == first
    assert {d.get("expr") for d in first} >= {"registry_lock", "_Account.lock", "_Account.rlock",
                                              "queue.Queue.mutex"}
    assert all(d["site"] is not None for d in first)
    assert any(d.get("user_site") for d in first)  # library-made objects name the user's line
    assert slow1 == slow0, "a creation at a site seen before fell back to Python"
    assert fast1 - fast0 == len(second)


@needs_c
def test_definitions_made_in_c_take_no_more_memory_than_the_python_ones(rec):
    # A definition stays on its object as long as it lives: on every lock, and two
    # on each Future.  Built in C field by field, it took a table presized for 16
    # fields of any key type (568 bytes, where a traced Lock's other parts take
    # about 400); the Python define()'s dict literal takes 208 for a Lock's 8.
    rec.start()
    first = _raw_definitions(_make_everything())  # (the Python define's)
    fast0, _slow = _core.speedups.define_stats()
    second = _raw_definitions(_make_everything())
    fast1, _slow = _core.speedups.define_stats()
    rec.stop()
    assert fast1 - fast0 == len(second) == len(first) >= 10
    assert [list(d) for d in second] == [list(d) for d in first]
    sizes = [(d.get("expr"), sys.getsizeof(d), sys.getsizeof(f))
             for d, f in zip(second, first, strict=True)]
    assert all(c_size <= py_size for _expr, c_size, py_size in sizes), sizes


@needs_c
def test_conditions_and_locks_made_in_c_name_each_other_as_python_does(rec):
    """Lock, RLock and Condition initialisation in C (init_lock, init_condition):
    a condition names its lock, its own RLock names it as owner, its definition is
    written after its lock's (_ls_deps, on it and on its Ref), both after each
    creation site was seen once (the C path) -- and a Thread's own _started
    Event is still not traced, nor are an Event's or a Queue's owned primitives
    made on the C path (they take the Python one, which names the owner)."""
    import concurrent.futures
    import queue

    rec.start(flush_interval=3600)
    made = []
    for _ in range(3):  # the first creation at a site is the Python define's
        own, given_lock = threading.Condition(), threading.Lock()
        given = threading.Condition(given_lock)
        fut = concurrent.futures.Future()
        made.append((own, given_lock, given, fut))
        for cond in (own, given, fut._condition):
            with cond:
                cond.notify()
    fast, _slow = _core.speedups.define_stats()
    assert fast > 0
    ev, q = threading.Event(), queue.Queue()
    t = threading.Thread(target=lambda: None)
    assert not hasattr(t._started._cond, "_ls_id")
    t.start()
    t.join()
    own, given_lock, given, fut = made[-1]
    for cond, lock in ((own, own._lock), (given, given_lock), (fut._condition, fut._condition._lock)):
        assert cond._ls_def["lock"] == lock._ls_id
        assert cond._ls_deps == (lock,)
        assert cond._ls_ref._ls_deps == (lock._ls_ref,)
        assert cond._ls_def["type"] == "threading.Condition" and cond._ls_def["site"]
    assert own._lock._ls_def["owner"] == own._ls_id
    assert fut._condition._lock._ls_def["owner"] == fut._condition._ls_id
    assert "owner" not in given_lock._ls_def
    assert ev._cond._ls_def["type"] == "threading.Event"
    assert q.not_empty._ls_def["role"] == "not_empty" and q.mutex._ls_def["owner"] == q._ls_id
    cond_id, lock_id = fut._condition._ls_id, fut._condition._lock._ls_id
    rec.stop()
    files = recorder.trace_files()
    kinds = [orjson.loads(line) for f in files for line in Path(f).read_bytes().splitlines()]
    order = [r["id"] for r in kinds if r.get("k") in ("lock", "resource")]
    assert order.index(lock_id) < order.index(cond_id)
    cond_def = next(r for r in kinds if r.get("id") == cond_id and r.get("k") == "resource")
    assert cond_def["lock"] == lock_id
    assert next(r for r in kinds if r.get("id") == lock_id and r.get("k") == "lock")["owner"] == cond_id


@needs_c
def test_thread_definitions_written_in_c_are_the_python_ones(rec, monkeypatch):
    """The writer defines threads in C (define_state): byte for byte what its Python
    _define writes -- parents first, a parent not defined in the part named null,
    a renamed thread under its new name, at most MAX_ANCESTORS generations -- and a
    name JSON must escape is left to Python."""
    rec.start(flush_interval=3600)
    states = []
    done = threading.Event()

    def chain(k: int) -> None:
        states.append(_core.current_state())
        if k:
            t = threading.Thread(target=chain, args=(k - 1,), name=f"link-{k}")
            t.start()
            t.join()
        else:
            threading.current_thread().name = "renamed"
            done.set()

    leaf = b""
    for depth, name in ((3, "short"), (20, "long")):  # (20 generations: more than 16)
        states.clear()
        t = threading.Thread(target=chain, args=(depth,), name=name)
        t.start()
        t.join()
        assert done.wait(10)
        done.clear()
        for st in [states[-1], states[0], states[len(states) // 2]]:
            by = {}
            for impl in ("c", "python"):
                monkeypatch.setattr(_sink, "_define_state",
                                    _core.speedups.define_state if impl == "c" else None)
                sink = _sink.Sink(str(rec.out_dir / ("probe-" + impl)), {}, 3600, 0)
                out = bytearray()
                sink.written.add(states[0].tid)  # (a parent defined earlier in the part)
                assert sink._define(st, out) == st.tid
                by[impl] = bytes(out)
            assert by["c"] == by["python"]
            assert (by["c"].count(b'"k":"thread"') >= 1) == (st is not states[0])
            leaf = by["c"] if st is states[-1] else leaf
    # the renamed leaf of 21 generations: itself and 16 ancestors
    assert b'"name":"renamed"' in leaf and leaf.count(b'"k":"thread"') == 17
    non_plain = states[-1]
    non_plain.name = "caf\u00e9"  # (its Thread is gone: the state's name is the last word)
    written: set = set()
    out = bytearray()
    assert _core.speedups.define_state(non_plain, written, out) == -2
    assert non_plain.tid not in written  # (its parents are written: Python names them)
    assert out.count(b'"k":"thread"') == len(written) == 16
    rec.stop()


@needs_c
def test_the_c_writer_leaves_every_name_json_must_escape_to_python(rec):
    """A thread's name goes into its record as it is only when JSON needs no escape
    in it (printable ASCII but " and \\, and not DEL): the C test reads eight
    characters at a time, so each such character is tried at every place of a
    block and of the tail; their neighbours in the ASCII table stay plain."""
    rec.start(flush_interval=3600)
    st = _core.current_state()
    me = threading.current_thread()
    old_name = me.name
    escaped = ['"', "\\", "\x00", "\x1f", "\n", "\x7f", "\u00e9"]
    plain = [" ", "!", "#", "[", "]", "~", "/", "A"]
    base = "abcdefghijklmnopqrstuvw"  # (23: two blocks of eight and a tail of seven)
    try:
        for ch in escaped + plain:
            for at in range(len(base) + 1):
                me.name = base[:at] + ch + base[at:]  # (read again from the running thread)
                out = bytearray()
                got = _core.speedups.define_state(st, set(), out)
                if ch in plain:
                    assert got == st.tid, (ch, at)
                    assert orjson.loads(out.splitlines()[-1])["name"] == me.name
                else:
                    assert got == -2 and not out, (ch, at)
    finally:
        me.name = old_name
        rec.stop()


@needs_c
def test_a_thread_state_holds_its_thread_only_while_it_runs(rec):
    """The C hooks give a thread's state its Thread while it runs (no weak
    reference a thread) and take it back at its end: an ended Thread nobody else
    holds is freed at once, its record still complete; a Thread class that runs
    its own _bootstrap_inner (ours never runs: no begin, no end) gets a weak
    reference and its record's fields when its start returns."""
    import weakref

    from recorder import _threading

    rec.start(flush_interval=3600)
    seen = {}

    def work() -> None:
        seen["during"] = _core.current_state().thread_ref is threading.current_thread()

    t = threading.Thread(target=work, name="held-while-running", daemon=True)
    t.start()
    t.join(10)
    st = t._ls_state
    assert seen["during"] is True and st.thread_ref is None and st.ended
    gone = weakref.ref(t)
    del t
    assert gone() is None  # (no cycle through its state: freed by its last reference)

    class OwnBootstrap(threading.Thread):
        def _bootstrap_inner(self) -> None:
            _threading._orig_bootstrap_inner(self)

    own = OwnBootstrap(target=lambda: None, name="own-bootstrap")
    own.start()
    own.join(10)
    ost = own._ls_state
    assert type(ost.thread_ref) is weakref.ref and ost.thread_ref() is own
    assert (ost.name, ost.daemon, ost.ident) == ("own-bootstrap", False, own.ident)
    trace = rec.stop()
    for name, daemon in (("held-while-running", True), ("own-bootstrap", False)):
        d = trace.thread(name)
        assert d["daemon"] is daemon and d["ident"] and d["native_id"], d
        assert len(trace.evs(obj=d["id"], op="start")) == 1


_FORK_WHILE_RUNNING = r"""
import os, sys, threading
import recorder
recorder.start(sys.argv[1], flush_interval=3600)
go = threading.Event()
t = threading.Thread(target=go.wait, args=(10,), name="runs-in-parent", daemon=True)
t.start()
pid = os.fork()
if pid == 0:
    ref = t._ls_state.thread_ref
    os.write(1, b"child %s\n" % (b"none" if ref is None else b"held"))
    os._exit(0)
os.waitpid(pid, 0)
print("parent", "held" if t._ls_state.thread_ref is t else "other")
go.set()
t.join(10)
recorder.stop()
"""


@needs_c
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_lets_go_of_the_threads_it_did_not_inherit(tmp_path):
    """A thread running in the parent when it forks never ends in the child: the
    child lets go of the Thread its state holds (it would live as long as the
    child, with its state)."""
    script = tmp_path / "prog.py"
    script.write_text(_FORK_WHILE_RUNNING)
    res = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", str(script),
                          str(tmp_path / "traces")], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    assert sorted(res.stdout.split("\n")[:2]) == ["child none", "parent held"]


@needs_c
def test_a_running_threads_definition_reads_its_new_name(rec):
    """A thread still running when the writer defines it is read again first: its
    name may have changed (its ident, native id and daemon flag cannot)."""
    rec.start(flush_interval=3600)
    ready, go = threading.Event(), threading.Event()
    states = []

    def work() -> None:
        states.append(_core.current_state())
        ready.set()
        go.wait(10)

    t = threading.Thread(target=work, name="before", daemon=True)
    t.start()
    assert ready.wait(10)
    records = []
    for name in ("before", "after"):
        t.name = name
        out = bytearray()
        assert _core.speedups.define_state(states[0], set(), out) == states[0].tid
        records.append(orjson.loads(out.splitlines()[-1]))
    go.set()
    t.join(10)
    rec.stop()
    assert [r["name"] for r in records] == ["before", "after"]
    assert records[1] == {**records[0], "name": "after"}
    assert (records[1]["ident"], records[1]["native_id"], records[1]["daemon"]) == (
        t.ident, t.native_id, True)


@needs_c
def test_buffered_events_do_not_count_as_allocations_for_the_cyclic_gc(rec):
    """Every tuple counts towards the GC's next collection until it is freed, tracked
    or not: a buffer of events made the program's collections several times more
    frequent.  Events are not GC objects: buffering 2,000 of them does not move the
    count (the loop's own frame may be materialised once)."""
    import gc

    rec.start(flush_interval=3600)
    lock = threading.Lock()
    with lock:  # the site is seen once
        pass
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        before = gc.get_count()[0]
        for _ in range(1000):
            with lock:
                pass
        grown = gc.get_count()[0] - before
    finally:
        if was_enabled:
            gc.enable()
    st = _core.current_state()
    assert len(st.buf) >= 2000
    assert st.buf[-1][1] == "release" and st.buf[-1][2]._ls_id == lock._ls_id
    rec.stop()
    assert grown < 50


@needs_c
def test_the_accelerator_reads_frames_raw_where_the_interpreter_allows():
    """On CPython 3.11 to 3.13 the accelerator walks the calling code's frames as
    the interpreter keeps them: the public API makes a frame object for each frame
    it returns (on 3.13 that was 2.1k instructions of a thread's 13k in summary
    mode, its _started Event's primitives being made through Thread.__init__).
    The walk itself is what every site and owner test here checks."""
    raw = sys.implementation.name == "cpython" and (3, 11) <= sys.version_info[:2] <= (3, 13)
    assert _core.speedups.FRAMES == ("raw" if raw else "public")


_SLOTS = ("gap", "dropped", "dropped_reported", "name", "parent", "ident", "native_id",
          "daemon", "aio", "ended")


def _start_and_join(name: str) -> tuple[threading.Thread, _core.ThreadState]:
    def work() -> None:
        threading.current_thread().name = name + "-renamed"

    t = threading.Thread(target=work, name=name, daemon=True)
    t.start()  # (the line both ``start`` events must name)
    t.join(10)
    return t, t._ls_state


@needs_c
def test_thread_lifecycle_in_c_is_the_python_one(rec, monkeypatch):
    """Thread start, run and end are recorded in C (thread_start/_begin/_end): the
    same ThreadState, bound the same way, and the same events at the same sites as
    the Python hooks record."""
    from recorder import _threading

    assert _threading._record_start is _core.speedups.thread_start
    rec.start(flush_interval=3600)
    parent = _core.current_state()
    got = {}
    hooks = (threading.Thread.start, threading.Thread._bootstrap_inner)
    for impl in ("c", "python"):
        if impl == "python":  # (the Python hooks, calling the Python versions)
            monkeypatch.setattr(_threading, "_record_start", _threading._py_record_start)
            monkeypatch.setattr(_threading, "_thread_begin", _threading._py_thread_begin)
            monkeypatch.setattr(_threading, "_thread_end", _threading._py_thread_end)
            threading.Thread.start = _threading._thread_start
            threading.Thread._bootstrap_inner = _threading._thread_bootstrap_inner
        try:
            t, st = _start_and_join(impl)
        finally:
            threading.Thread.start, threading.Thread._bootstrap_inner = hooks
        assert type(st) is _core.ThreadState
        assert st.parent == parent.tid and st.parent_ref() is parent
        # (the C hooks hold the Thread itself while it runs and let go at its end;
        # the Python ones keep a weak reference)
        assert st.thread_ref is None if impl == "c" else st.thread_ref() is t
        assert st.tid > parent.tid and st.ts > parent.ts
        assert len(st.buf) == 0 or st.buf[-1][1] == "end"
        assert st in _core.states or st.ended
        got[impl] = {k: getattr(st, k) for k in _SLOTS}, st.tid
    (c_slots, c_tid), (py_slots, py_tid) = got["c"], got["python"]
    assert c_slots["name"] == "c-renamed" and py_slots["name"] == "python-renamed"
    assert c_slots["ended"] is True
    for slots in (c_slots, py_slots):
        assert isinstance(slots["ident"], int) and isinstance(slots["native_id"], int)
    for k in _SLOTS:
        if k not in ("name", "ident", "native_id"):
            assert c_slots[k] == py_slots[k], k
    trace = rec.stop()
    by = {}
    for impl, tid in (("c", c_tid), ("python", py_tid)):
        d = trace.defs[tid]
        assert d["k"] == "thread" and d["parent"] == parent.tid and d["daemon"] is True
        assert d["name"] == impl + "-renamed"
        start = trace.evs(obj=tid, op="start")
        assert len(start) == 1 and start[0]["th"] == parent.tid
        end = trace.evs(th=tid, op="end")
        assert len(end) == 1 and end[0]["obj"] == tid and "site" not in end[0]
        by[impl] = trace.site(start[0])
    assert by["c"] == by["python"]
    assert by["c"][0] == THIS_FILE and by["c"][2] == "_start_and_join"


def _joins() -> dict:
    """Joins of each kind, by role: a join that times out, one that waits a thread
    out, one of a thread that had ended, and one the original raises from."""
    from recorder import _threading

    go = threading.Event()
    slow = threading.Thread(target=go.wait, args=(10,), name="slow")
    ended = threading.Thread(target=lambda: None, name="ended")
    for t in (slow, ended):
        t.start()
    _threading._orig_join(ended, 10)  # (not recorded: it has ended for the next one)
    slow.join(0.01)  # times out
    with pytest.raises(TypeError):
        slow.join("soon")  # the original raises (comparing the timeout)
    threading.Timer(0.2, go.set).start()
    slow.join(10)  # waits it out
    ended.join()  # had ended
    return {slow._ls_state.tid: "slow", ended._ls_state.tid: "ended"}


@needs_c
def test_thread_join_in_c_records_what_the_python_hook_records(rec, monkeypatch):
    """Thread.join is recorded in C (thread_join_method): the same events, fields
    and sites as the Python hook, for a join that times out, one the original
    raises from, one that waits the thread out, and one of an ended thread."""
    from recorder import _threading

    rec.start(flush_interval=3600)
    join = threading.Thread.__dict__["join"]
    assert join is _threading._join_hook and type(join) is type(str.join)  # (the C one)
    roles = {"c": _joins()}
    monkeypatch.setattr(threading.Thread, "join", _threading._thread_join)
    roles["python"] = _joins()
    trace = rec.stop()
    seen = {}
    for impl, by_tid in roles.items():
        seen[impl] = [
            (by_tid[e["obj"]], e["op"], trace.site(e)[1:],
             {k: v for k, v in e.items() if k in ("timeout", "outcome", "error")})
            for e in trace.evs(th=_core.current_state().tid)
            if e["op"] in ("join", "wait-begin", "wait-end") and e["obj"] in by_tid]
    assert seen["c"] == seen["python"]
    line = [site for _, _, site, _ in seen["c"]]
    assert [(role, op, extra) for role, op, _, extra in seen["c"]] == [
        ("slow", "wait-begin", {"timeout": 0.01}),
        ("slow", "wait-end", {"outcome": "timeout"}),
        ("slow", "wait-begin", {}),  # (a timeout that is no number: no field)
        ("slow", "wait-end", {"outcome": "error", "error": "TypeError"}),
        ("slow", "wait-begin", {"timeout": 10}),
        ("slow", "wait-end", {"outcome": "ok"}),
        ("slow", "join", {}),
        ("ended", "join", {}),
    ]
    assert all(site[1] == "_joins" for site in line)


@needs_c
def test_a_new_thread_leaves_the_other_threads_cached_states_alone(rec):
    """Binding a new thread's state updates that thread's entry only: the calling
    thread still finds its own state, and so does the new one."""
    rec.start(flush_interval=3600)
    mine = _core.current_state()
    seen = []
    lock = threading.Lock()

    def work() -> None:
        with lock:
            seen.append(_core.current_state())

    for _ in range(3):
        t = threading.Thread(target=work)
        t.start()
        t.join(10)
        with lock:
            pass
    assert _core.current_state() is mine
    assert len({id(s) for s in seen}) == 3 and mine not in seen
    trace = rec.stop()
    lk = [e["obj"] for e in trace.evs(th=mine.tid, op="acquire")]
    assert len(lk) == 3
    for st in seen:
        assert [e["op"] for e in trace.evs(obj=lk[0], th=st.tid)] == ["acquire", "release"]


@needs_c
def test_a_thread_whose_own_dict_changes_still_records_to_its_state(rec):
    """The C lookup of the calling thread's state is answered from its last one
    while the thread's dict is unchanged: a threading.local first used between
    two events changes that dict, and the events still go to the thread's state."""
    rec.start(flush_interval=3600)
    lock = threading.Lock()
    states = []

    def work() -> None:
        with lock:
            pass
        local = threading.local()  # (an entry in this thread's dict)
        local.x = 1
        with lock:
            states.append(_core.current_state())

    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    with lock:
        pass
    trace = rec.stop()
    (st,) = states
    lk = trace.evs(th=st.tid, op="acquire")[0]["obj"]
    assert [e["op"] for e in trace.evs(obj=lk, th=st.tid)] == ["acquire", "release"] * 2
    assert [e["op"] for e in trace.evs(obj=lk)][-2:] == ["acquire", "release"]


@needs_c
def test_an_ended_threads_state_lives_no_longer_than_its_thread_and_the_writer(rec):
    """A thread started through Thread.start is bound to its state in C, not in
    its thread-state dict: that binding goes when its run ends, so once the
    writer has taken its events and dropped it, and the Thread is gone, the state
    is freed (a binding kept would leak a state a thread)."""
    import gc
    import weakref

    rec.start(flush_interval=3600)
    lock = threading.Lock()
    refs = []

    def work() -> None:
        with lock:
            pass
        refs.append(weakref.ref(_core.current_state()))

    for _ in range(3):
        t = threading.Thread(target=work)
        t.start()
        t.join(10)
    del t
    recorder.flush()  # (their events taken)
    recorder.flush()  # (then the ended states, drained, dropped)
    gc.collect()
    assert len(refs) == 3
    assert [r() for r in refs] == [None] * 3
    trace = rec.stop()
    assert len(trace.evs(lock._ls_id, op="acquire")) == 3


@needs_c
def test_a_thread_running_across_two_recordings_records_into_both(rec, tmp_path):
    """A thread bound to its state in C in one recording and still running in the
    next keeps its state (as every recorded thread does) and records into the new
    recording's file, which defines it again."""
    first_done, second_started, finished = (threading.Event() for _ in range(3))
    states = []
    rec.start(flush_interval=3600)
    lock = recorder.name(threading.Lock(), "across")

    def work() -> None:
        with lock:
            states.append(_core.current_state())
        first_done.set()
        if second_started.wait(10):
            with lock:
                states.append(_core.current_state())
        finished.set()

    t = threading.Thread(target=work, name="across-worker", daemon=True)
    t.start()
    assert first_done.wait(10)
    first = rec.stop()
    again = type(rec)(tmp_path / "second")
    again.start(flush_interval=3600)
    second_started.set()
    assert finished.wait(10)
    t.join(10)
    second = again.stop()
    assert len(states) == 2 and states[0] is states[1]
    for trace in (first, second):
        (acq,) = trace.evs(lock._ls_id, op="acquire")
        assert acq["th"] == trace.thread("across-worker")["id"] == states[0].tid


@needs_c
def test_events_stamped_in_c_read_as_ints_in_python(rec):
    """The C paths keep an event's time stamp as a C integer; Python readers
    still see the int (the same each time), in order."""
    rec.start(flush_interval=3600)
    lock = threading.Lock()
    for _ in range(3):
        with lock:
            pass
    evs = [e for e in _core.current_state().buf if e[1] in ("acquire", "release")][-6:]
    stamps = [e[0] for e in evs]
    assert all(type(t) is int for t in stamps)
    assert stamps == sorted(stamps) and stamps == [tuple(e)[0] for e in evs]
    assert [e[0] for e in evs] == stamps
    rec.stop()


@needs_c
@pytest.mark.skipif(sys.version_info >= (3, 14), reason="the inner lock layouts of 3.10-3.13")
def test_inner_locks_are_driven_directly_with_their_own_semantics(rec):
    """The traced locks try and release their inner _thread locks in C: the
    inner lock's own methods see every state that makes, and the errors stay
    the originals'."""
    assert _core.speedups.raw_locks() == (True, True)
    rec.start()
    lock = recorder.name(threading.Lock(), "raw")
    rlock = recorder.name(threading.RLock(), "rraw")
    with lock:
        assert lock._lock.locked()
    assert not lock._lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()
    assert lock._lock.acquire(False)  # (taken by the inner method, released in C)
    lock.release()
    assert not lock._lock.locked()
    errors = []

    def release_from_elsewhere() -> None:
        try:
            rlock.release()
        except RuntimeError as exc:
            errors.append(exc)

    with rlock:
        with rlock:
            assert rlock._lock._is_owned()
        assert rlock._lock._is_owned()
        t = threading.Thread(target=release_from_elsewhere)
        t.start()
        t.join(10)
        assert rlock._lock._is_owned()
    assert not rlock._lock._is_owned() and len(errors) == 1
    with pytest.raises(RuntimeError):
        rlock.release()
    trace = rec.stop()
    main = trace.thread("MainThread")["id"]
    assert [e["op"] for e in trace.evs(trace.one("lock", "raw")["id"])] == [
        "acquire", "release", "release"]
    assert [e["op"] for e in trace.evs(trace.one("lock", "rraw")["id"], main)] == [
        "acquire", "release"]  # (its inner level is not recorded)
    assert {e["th"] for e in trace.evs(trace.one("lock", "rraw")["id"])} == {main}


@needs_c
def test_pool_jobs_add_no_allocation_the_cyclic_gc_counts(rec):
    """A queued work item's segment (and its submission's fields) are not GC
    objects: 30k queued items used to add two GC allocations each, which made the
    program's full collections more frequent."""
    import gc

    from recorder import _jobs

    rec.start(flush_interval=3600)
    gc.collect()
    gc.disable()
    try:
        c0 = gc.get_count()[0]
        jobs = [_jobs.Job(abs) for _ in range(1000)]
        grown = gc.get_count()[0] - c0
    finally:
        gc.enable()
    assert grown < 50, grown  # (not 2 per Job: the list and what start-up left)
    assert len({j._ls_id for j in jobs}) == 1000 and jobs[0].name == "abs"
    assert jobs[0]._ls_record() == {"k": "segment", "id": jobs[0]._ls_id, "kind": "job",
                                    "name": "abs"}
    rec.stop()


def _states_to_take() -> list:
    """Thread states in every shape the writer's take meets: events buffered, ended
    with and without events, a gap open (ended or not), events dropped."""
    states = []
    for name, n, ended, gap, dropped in (("busy", 3, False, False, 0),
                                         ("done", 2, True, False, 0),
                                         ("gone", 0, True, False, 0),
                                         ("idle", 0, False, False, 0),
                                         ("lossy", 1, False, True, 5),
                                         ("lost-end", 0, True, True, 2),
                                         ("reported", 0, True, False, 4)):
        st = _core.ThreadState(name, None)
        for k in range(n):
            st.buf.append((k, "acquire", st, 0, None))
        st.ended = ended
        st.dropped = dropped
        st.dropped_reported = 4 if name == "reported" else 0
        if gap:
            st.gap = _core.Gap(7)
        states.append(st)
    return states


@needs_c
@pytest.mark.parametrize("final", [False, True])
def test_the_writer_takes_thread_states_in_c_as_in_python(tmp_path, monkeypatch, final):
    """Sink._take in C (take_states) against its Python loop: the same batches in
    the same order, the same states left, gaps closed and drops reported alike."""
    sink = _sink.Sink(str(tmp_path / "probe"), {}, 3600, 0)
    got = {}
    for impl in ("c", "python"):
        monkeypatch.setattr(_sink, "_take_states", _core.speedups.take_states if impl == "c" else None)
        states = _states_to_take()
        monkeypatch.setattr(_core, "states", list(states))
        batches = sink._take(final)
        got[impl] = (
            [(st.name, [(e[1], e[2] if e[1] == "dropped" else None) for e in events])
             for st, events in batches],
            [st.name for st in _core.states],
            [(st.name, len(st.buf), st.gap is None, st.dropped_reported) for st in states])
    assert got["c"] == got["python"]
    batches, left, _after = got["c"]
    names = [name for name, _ in batches]
    assert names[:2] == ["busy", "done"] and "gone" not in left and "idle" in left
    assert ("lossy", [("dropped", 5)]) in batches
    assert ("lost-end", [("resync", None)]) in batches
    assert (("lossy", [("resync", None)]) in batches) == final


@needs_c
@pytest.mark.parametrize("changed", [False, True], ids=["as-taken", "changed-meanwhile"])
def test_the_writer_takes_ended_states_off_at_once_and_keeps_the_others_in_order(
        tmp_path, monkeypatch, changed):
    """Every ended, drained state goes in one drain (in one pass over the list, not
    one search each); the others stay, in their order.  When Python code run by the
    take changes the list meanwhile (a buffer whose len() is Python), the ended
    ones are still found, and what was added stays."""
    sink = _sink.Sink(str(tmp_path / "probe"), {}, 3600, 0)
    monkeypatch.setattr(_sink, "_take_states", _core.speedups.take_states)
    states = []
    for i in range(40):
        st = _core.ThreadState(f"t{i}", None)
        st.ended = i % 3 != 0
        states.append(st)
    newcomer = _core.ThreadState("newcomer", None)
    live = list(states)
    monkeypatch.setattr(_core, "states", live)
    if changed:
        class Buffer(list):
            def __len__(self):
                if newcomer not in live:
                    live.insert(0, newcomer)
                return 0

        states[5].buf = Buffer()
    assert sink._take() == []
    kept = [st.name for st in states if not st.ended]
    assert [st.name for st in _core.states] == (["newcomer"] if changed else []) + kept


def _put_twice(q, i: int) -> None:
    q.put(i)  # (line A)
    q.put(-i)  # (line B)


@needs_c
def test_sites_reached_through_library_frames_are_remembered_exactly(rec):
    """A lock taken in library code (a queue's mutex) is sited at the user's line;
    the lock remembers the library frames in between with that line, and a call
    from another line, or through other library code, is not taken for it."""
    import queue

    rec.start(flush_interval=3600)
    q = queue.Queue()
    recorder.name(q.mutex, "qmutex")
    for i in range(20):
        _put_twice(q, i)
        if i % 3 == 0:
            q.get()  # (line C: through Queue.get, another library chain)
    trace = rec.stop()
    mutex = trace.one("lock", "qmutex")["id"]
    lines = [trace.site(e)[1] for e in trace.evs(obj=mutex, op="acquire")]
    first = _put_twice.__code__.co_firstlineno
    get_line = next(ln for ln in set(lines) if ln not in (first + 1, first + 2))
    expected = []
    for i in range(20):
        expected += [first + 1, first + 2]
        if i % 3 == 0:
            expected.append(get_line)
    assert lines == expected
    assert all(trace.site(e)[0] == THIS_FILE for e in trace.evs(obj=mutex, op="acquire"))


def _log_at_two_lines(log, log2, i: int) -> None:
    log.info("first %d", i)  # (line A)
    log2.info("second %d", i)  # (line B)


@needs_c
def test_a_lock_taken_from_several_deep_library_paths_is_sited_from_its_memos(rec):
    """logging's handler lock is taken through 6 library frames by a logger's
    handle(), and through 10 by a MemoryHandler's flush (another logger's, whose
    target the handler is), for each record: both chains and the user's two lines
    are remembered by the lock, so a record costs no frame walk once each was seen
    (a memo that spanned 6 frames and one site walked for every other record), and
    every acquire is still sited at the user's line.  (The handler takes its lock
    again in flush() inside emit(): an inner level, not recorded.)"""
    import io
    import logging
    import logging.handlers

    rec.start(flush_interval=3600)
    log = logging.getLogger("lockscope.test.memos")
    log2 = logging.getLogger("lockscope.test.memos.buffered")
    handler = logging.StreamHandler(io.StringIO())
    buffered = logging.handlers.MemoryHandler(1, target=handler)
    for lg, h in ((log, handler), (log2, buffered)):
        lg.propagate = False
        lg.setLevel(logging.INFO)
        lg.addHandler(h)
    try:
        recorder.name(handler.lock, "handler_lock")
        for i in range(5):  # (each path seen once)
            _log_at_two_lines(log, log2, i)
        hits0, _, walks0 = _core.speedups.site_stats()
        for i in range(50):
            _log_at_two_lines(log, log2, i)
        hits1, _, walks1 = _core.speedups.site_stats()
    finally:
        log.removeHandler(handler)
        log2.removeHandler(buffered)
    trace = rec.stop()
    first = _log_at_two_lines.__code__.co_firstlineno
    lock = trace.one("lock", "handler_lock")["id"]
    sites = [trace.site(e)[:2] for e in trace.evs(obj=lock, op="acquire")]
    assert sites == [(THIS_FILE, first + k) for _ in range(55) for k in (1, 2)]
    assert walks1 - walks0 == 0, f"{walks1 - walks0} frame walks for 100 acquires seen before"
    assert hits1 - hits0 >= 100


def _square(x: int) -> int:
    return x * x


def _map(ex, n: int) -> list:
    return list(ex.map(_square, range(n)))  # (line A)


@needs_c
def test_locks_made_per_item_are_sited_from_the_walks_remembered_globally(rec):
    """Each Future has a lock of its own, taken through Condition.__enter__ from
    each of its methods, so no lock's memo is ever used twice; and a pool's worker
    takes them through library frames down to the bottom of its stack (no site).
    A walk's result is remembered by the two innermost frames too: once each path
    was seen, a new Future's acquires walk no frame (each walked 4 times a job: the
    memo of its own was empty, and one entry per innermost frame held one of the
    Future's methods), and every one is still sited exactly."""
    rec.start(flush_interval=3600)
    with_line = sys._getframe().f_lineno + 1  # (its end joins the workers)
    with ThreadPoolExecutor(2) as ex:
        assert _map(ex, 50) == [x * x for x in range(50)]
        _, _, walks0 = _core.speedups.site_stats()
        assert _map(ex, 300) == [x * x for x in range(300)]
        _, _, walks1 = _core.speedups.site_stats()
    trace = rec.stop()
    # (a path first taken late, as a wait that only contention makes, walks once:
    # 4 in one loaded CI run; a walk each acquire would be well over 1,000)
    assert walks1 - walks0 <= 10, f"{walks1 - walks0} frame walks for 300 jobs like the 50 before"
    main = trace.thread(threading.main_thread().name)["id"]
    acquires = trace.evs(op="acquire")
    by_main = [trace.site(e)[:2] for e in acquires if e["th"] == main]
    assert set(by_main) == {(THIS_FILE, _map.__code__.co_firstlineno + 1), (THIS_FILE, with_line)}
    by_workers = [e for e in acquires if e["th"] != main]
    assert len(by_workers) >= 350  # (each job's set_result, at least)
    assert all("site" not in e for e in by_workers)  # (no user frame: no site)


def _path_a(lock) -> None:
    with lock:
        pass


def _path_b(lock) -> None:
    with lock:
        pass


@needs_c
def test_two_paths_that_hash_alike_keep_their_walks_remembered(rec):
    """The global table of walks keeps two paths whose frames hash alike (it had one
    entry a hash: taken in turn, each evicted the other, and every acquire of a lock
    used once walked the frames; the addresses of code objects decided, so a pool's
    Future did so in some processes and not in others)."""
    rec.start(flush_interval=3600)
    locks = [threading.Lock() for _ in range(202)]  # (one use each: no memo of their own)
    _core.speedups._gsite_one_set(True)
    try:
        for i in (0, 2):  # (a path's first acquires may walk twice)
            _path_a(locks[i])
            _path_b(locks[i + 1])
        _, _, walks0 = _core.speedups.site_stats()
        for i in range(4, 202, 2):
            _path_a(locks[i])
            _path_b(locks[i + 1])
        _, _, walks1 = _core.speedups.site_stats()
    finally:
        _core.speedups._gsite_one_set(False)
    trace = rec.stop()
    assert walks1 - walks0 == 0, f"{walks1 - walks0} frame walks for 198 acquires on 2 paths seen before"
    line_a, line_b = _path_a.__code__.co_firstlineno + 1, _path_b.__code__.co_firstlineno + 1
    for i, lock in enumerate(locks):
        (acquire,) = trace.evs(lock._ls_id, op="acquire")
        assert trace.site(acquire)[:2] == (THIS_FILE, line_b if i % 2 else line_a)


def _take(lock) -> None:
    with lock:  # (the only site)
        pass


def _take_all(locks: list) -> None:
    for lock in locks:
        _take(lock)


@needs_c
def test_a_lock_whose_memo_went_stale_takes_its_site_back_from_the_table(rec):
    """Thread states forgotten make every lock's memo stale (a new recording, a
    thread bound by Python): the first lock taken at a site walks the frames
    again, and another lock taken there then finds the site in the table of
    walks -- and remembers it, so its acquires after that are answered by its
    own memo (128 threads on 16 locks taken at one line went through the table
    at each of their 256k acquires: 60 instructions more each)."""
    rec.start(flush_interval=3600)
    first, other = threading.Lock(), threading.Lock()
    _take_all([first, other])
    _core.speedups.invalidate()
    memo0, table0, walks0 = _core.speedups.site_stats()
    _take_all([first] + [other] * 100)
    memo1, table1, walks1 = _core.speedups.site_stats()
    trace = rec.stop()
    assert (memo1 - memo0, table1 - table0, walks1 - walks0) == (99, 1, 1)
    line = _take.__code__.co_firstlineno + 1
    for lock in (first, other):
        acquires = trace.evs(obj=lock._ls_id, op="acquire")
        assert {trace.site(e)[:2] for e in acquires} == {(THIS_FILE, line)}


class _NoModule:
    """A thread's target whose ``__module__`` cannot be read."""

    @property
    def __module__(self):  # noqa: PLW3201
        raise RuntimeError("no module here")

    def __call__(self) -> None:
        pass


def test_a_target_the_recorder_cannot_inspect_still_starts(rec):
    """Thread.start looks at its target (is it a pool's worker?): what that raises
    is the recorder's problem, never the program's."""
    rec.start(flush_interval=3600)
    t = threading.Thread(target=_NoModule(), name="odd-target")
    t.start()
    t.join(10)
    trace = rec.stop()
    assert not t.is_alive()
    assert trace.ops(trace.thread("odd-target")["id"])["start"] == 1


def _profiled_calls(fn, key) -> tuple[object, list]:
    """fn()'s result and key(frame) of each Python call it made, in any thread it
    starts, in order (calls whose key is None left out)."""
    calls = []

    def profile(frame, event, arg):
        if event == "call" and (k := key(frame)) is not None:
            calls.append(k)

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        result = fn()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return result, calls


def _recorder_calls(fn, *files: str) -> tuple[object, dict]:
    """fn()'s result and the calls it made, in any thread it starts, into the
    recorder's Python `files` (by function name)."""
    from collections import Counter

    result, calls = _profiled_calls(
        fn, lambda f: f.f_code.co_name if Path(f.f_code.co_filename).name in files else None)
    return result, dict(Counter(calls))


def _pool_jobs(n: int, fail: bool = False) -> list:
    # (concurrent.futures.thread is imported at the top: its hooks are in from the start,
    # not from the first worker's, which comes after the first submission)

    def boom(x):
        raise KeyError(x)

    with ThreadPoolExecutor(1) as pool:  # (started here: its worker is profiled too)
        futures = [pool.submit(boom if fail else abs, -i) for i in range(n)]  # submit line
        if fail:
            return [type(f.exception(5)).__name__ for f in futures]
        for f in futures:
            f.exception(5)  # done now: result() below is a pass on each
        return [f.result(5) for f in futures]  # result line


def _passes_at_result_line(trace) -> int:
    lines = Path(THIS_FILE).read_text().splitlines()
    return sum(e["op"] == "pass" and "# result line" in lines[trace.site(e)[1] - 1]
               for e in trace.events)


def test_pool_jobs_record_their_segment_submission_run_and_pass(rec):
    """Each job: a segment, its submission signalled at the user's submit line, its
    run between segment-begin and -end in the worker, and a pass for each read of
    its done result (C and pure Python alike)."""
    rec.start()
    assert _pool_jobs(5) == [0, 1, 2, 3, 4]
    trace = rec.stop()
    jobs = trace.objects("segment")
    assert len(jobs) == 5 and {j["kind"] for j in jobs} == {"job"}
    assert {j["name"] for j in jobs} == {"abs"}
    for job in jobs:
        [submit] = trace.evs(job["id"], op="signal")
        assert submit["sig"] == "submit"
        file, line, func = trace.site(submit)
        assert Path(file).name == Path(THIS_FILE).name and func in ("_pool_jobs", "<listcomp>")
        assert "# submit line" in Path(THIS_FILE).read_text().splitlines()[line - 1]
        run = [e["op"] for e in trace.evs(job["id"]) if e["op"] != "signal"]
        assert run == ["segment-begin", "segment-end"]
        assert submit["th"] != trace.evs(job["id"], op="segment-begin")[0]["th"]
    assert _passes_at_result_line(trace) == 5  # result() of each done future


def test_a_failing_pool_job_still_ends_its_segment_and_keeps_its_error(rec):
    rec.start()
    assert _pool_jobs(3, fail=True) == ["KeyError"] * 3
    trace = rec.stop()
    for job in trace.objects("segment"):
        assert [e["op"] for e in trace.evs(job["id"])] == ["signal", "segment-begin", "segment-end"]


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_pool_jobs_run_no_python_code_of_the_recorder(rec):
    """The job hooks are C: the Python wrappers (_traced_init, _traced_run, _passed,
    _name_of, Job) ran about 145 bytecodes a job, a quarter of what a tiny job costs
    bare; Future.result/exception (13 more, and a frame) too, keeping a signature
    users may inspect."""
    import inspect
    from concurrent.futures import Future

    rec.start()
    result, calls = _recorder_calls(lambda: _pool_jobs(20), "_jobs.py")
    assert Future.result.__doc__.endswith("(lockscope).")  # (still installed here)
    for method in (Future.result, Future.exception):
        assert list(inspect.signature(method).parameters) == ["self", "timeout"]
    done = Future()
    done.set_exception(KeyError("k"))
    with pytest.raises(KeyError):
        done.result(timeout=0)
    assert isinstance(done.exception(0), KeyError)
    with pytest.raises(TypeError):
        done.result(1, 2)
    trace = rec.stop()
    assert result == list(range(20))
    assert calls.pop("install", 1) == 1  # (once a worker thread: not per job)
    assert calls.pop("_name_of", 1) == calls.pop("job_name", 1) == 1  # (first sight of abs)
    assert calls == {}
    assert len(trace.objects("segment")) == 20
    assert _passes_at_result_line(trace) == 20


def test_pool_jobs_submitted_while_off_are_not_recorded_and_still_run(rec):
    rec.start()
    with ThreadPoolExecutor(1) as pool:
        _core.ON = False
        try:
            off = pool.submit(abs, -7)
            assert off.result(5) == 7
        finally:
            _core.ON = True
        assert pool.submit(abs, -8).result(5) == 8
    trace = rec.stop()
    [job] = trace.objects("segment")
    assert [e["op"] for e in trace.evs(job["id"])] == ["signal", "segment-begin", "segment-end"]


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_simplequeue_put_and_get_run_no_python_code_of_the_recorder(rec):
    """ThreadPoolExecutor hands each job over a SimpleQueue: its Python put and get
    ran about 50 bytecodes a job.  In C, with the same events."""
    import queue
    rec.start()
    q = queue.SimpleQueue()

    def hand_over():
        for i in range(10):
            q.put(i)
        return [q.get() for _ in range(5)] + [q.get(block=True, timeout=5) for _ in range(5)]

    got, calls = _recorder_calls(hand_over, "_simplequeue.py")
    trace = rec.stop()
    assert got == list(range(10)) and calls == {}
    assert [e.get("sig") for e in trace.evs(q._ls_id)] == ["put"] * 10


def test_simplequeue_get_nowait_is_the_originals_and_records_nothing(rec):
    """3.13's ThreadPoolExecutor worker tries get_nowait() before each job: the
    Python wrapper ran a frame and a get each time, for a get that records nothing
    (C and pure Python alike)."""
    import queue
    rec.start()
    q = queue.SimpleQueue()

    def drain() -> list:
        q.put(1)
        q.put(2)
        got = [q.get_nowait(), q.get_nowait()]
        with pytest.raises(queue.Empty):
            q.get_nowait()
        return got

    got, calls = _recorder_calls(drain, "_simplequeue.py")
    trace = rec.stop()
    assert got == [1, 2]
    assert not {"get_nowait", "get"} & set(calls), calls
    assert [e["op"] for e in trace.evs(q._ls_id)] == ["signal", "signal"]


def _semaphore_rounds(sem, n: int) -> list:
    """n rounds on a semaphore of value 1: a try that gets it, one that does not, a
    release; then a with block."""
    got = []
    for _ in range(n):
        got.append(sem.acquire(timeout=0))  # acquire line
        got.append(sem.acquire(blocking=False))  # try line
        sem.release(n=1)
    with sem:  # with line
        pass
    return got


@pytest.mark.parametrize("kind", ["Semaphore", "BoundedSemaphore"])
def test_semaphore_events_and_sites(rec, kind):
    """acquire (also as a try with timeout 0), try-fail, release n times: at the
    user's lines, C and pure Python alike."""
    rec.start()
    sem = recorder.name(getattr(threading, kind)(1), "sem")
    got = _semaphore_rounds(sem, 3)
    if kind == "Semaphore":
        sem.release(2)
        assert sem.acquire() and sem.acquire(True, 5) and sem.acquire(False)
    trace = rec.stop()
    assert got == [True, False] * 3
    evs = trace.evs(trace.one("lock", "sem")["id"])
    assert [e["op"] for e in evs] == (["acquire", "try-fail", "release"] * 3 + ["acquire", "release"]
                                      + (["release", "release", "acquire", "acquire", "acquire"]
                                         if kind == "Semaphore" else []))
    lines = Path(THIS_FILE).read_text().splitlines()
    marks = [lines[trace.site(e)[1] - 1].split("# ")[-1] for e in evs if "site" in e]
    assert marks[:7] == ["acquire line", "try line"] * 3 + ["with line"]
    assert all("site" not in e for e in evs if e["op"] == "release")


def test_a_semaphore_try_calls_the_original_acquire_once(rec):
    """A try (timeout 0 or less, or not blocking) runs the original acquire once, as
    the program does: a try with timeout 0 that failed ran it twice (first without
    blocking, then as called), one more `with self._cond` for each of
    ThreadPoolExecutor.submit's tries on its idle semaphore; C and pure Python."""
    from recorder import _threading

    original = _threading._orig_sem_acquire.__code__
    rec.start()
    sem = recorder.name(threading.Semaphore(0), "sem")
    runs = []

    def profile(frame, event, arg):
        if event == "call" and frame.f_code is original:
            runs.append(frame.f_locals.get("timeout"))

    sys.setprofile(profile)
    try:
        got = [sem.acquire(timeout=0), sem.acquire(blocking=False), sem.acquire(True, -1)]
        sem.release(2)
        got += [sem.acquire(timeout=0), sem.acquire(blocking=False)]
    finally:
        sys.setprofile(None)
    trace = rec.stop()
    assert got == [False, False, False, True, True]
    assert runs == [0, None, -1, 0, None]
    assert [e["op"] for e in trace.evs(trace.one("lock", "sem")["id"])] == [
        "try-fail", "try-fail", "try-fail", "release", "release", "acquire", "acquire"]


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_semaphore_acquire_and_release_run_no_python_code_of_the_recorder(rec):
    """ThreadPoolExecutor tries its idle semaphore at each submit and a worker
    releases it after each job: the Python wrappers ran about 56 bytecodes a job."""
    rec.start()
    sem = threading.Semaphore(1)
    got, calls = _recorder_calls(lambda: _semaphore_rounds(sem, 5), "_threading.py")
    rec.stop()
    assert got == [True, False] * 5 and calls == {"__exit__": 1}  # (the with block's)


_OWNED_PROGRAM = '''
import queue, threading

class MyQueue(queue.Queue):
    pass

def make():
    ready = threading.Event()
    q = queue.Queue()
    lifo = queue.LifoQueue()
    mine = MyQueue()
    barrier = threading.Barrier(1)
    timer = threading.Timer(0.001, lambda: None)  # (its Event: made by library code)
    plain = threading.Condition()
    timer.start()
    timer.join(10)
    ready.set()
    for each in (q, lifo, mine):
        each.put(1)
        each.get()
    barrier.wait(10)
    with plain:
        plain.notify()

for _ in range(3):
    make()
'''


def _definition_lines(tmp_path: Path, pure: bool) -> list[str]:
    out = tmp_path / ("py" if pure else "c")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSCOPE_")}
    env.update(LOCKSCOPE_OUT=str(out), **({"LOCKSCOPE_PURE_PYTHON": "1"} if pure else {}))
    script = tmp_path / "owned.py"
    script.write_text(_OWNED_PROGRAM)
    subprocess.run([sys.executable, str(script)], env=env, check=True, timeout=120)
    [path] = out.glob("*.jsonl")
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("ts", "ident", "native_id")}
            for r in records if r["k"] in ("lock", "resource", "site")]


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_primitives_their_owners_make_are_defined_in_c_as_in_python(tmp_path):
    """The locks and conditions an Event, a Barrier or a queue makes name it as owner
    (a queue's conditions their role), with the site and expr of the line that made the
    owner (or, made by library code, its lib and user site): C and Python alike, key for
    key and id for id."""
    c, py = _definition_lines(tmp_path, False), _definition_lines(tmp_path, True)
    assert c == py
    owned = [r for r in c if "owner" in r]
    assert {r["type"] for r in owned} >= {"threading.Event", "queue.Queue", "queue.LifoQueue",
                                         "threading.Barrier", "threading.Lock"}
    assert {r.get("role") for r in owned if r["type"] == "queue.LifoQueue"} == {
        "not_empty", "not_full"}  # (all_tasks_done: never used, never written)
    assert {r["expr"] for r in owned if r["k"] == "resource"} >= {"ready", "q", "lifo", "mine",
                                                                  "barrier",
                                                                  "threading.Timer.finished"}


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_primitives_their_owners_make_run_no_python_owner_path(rec):
    """An Event's lock and condition and a queue's mutex and three conditions are
    defined in C once their site is known: the Python owner path (_owner_of,
    _ls_define, _renamed and the naming it called) ran about 1,400 bytecodes an
    Event, Queue and Future made (benchmarks/production_cost.py primitives)."""
    import queue
    rec.start()

    def make():
        return [threading.Event(), queue.Queue()]

    make()  # (the first creation at a site goes through Python's define())
    made, calls = _recorder_calls(lambda: [make() for _ in range(5)],
                                  "_threading.py", "_naming.py", "_core.py")
    rec.stop()
    assert len(made) == 5
    assert set(calls) <= {"__new__", "__init__", "__call__"}, calls


def test_an_already_set_events_wait_is_a_pass_at_its_callers_line(rec):
    """Event.wait (in C with the accelerator): a wait that finds the event set is a
    ``pass`` on its condition at the caller's line; one that times out is not."""
    rec.start()
    ev, other = threading.Event(), threading.Event()
    ev.set()
    got = [ev.wait(), ev.wait(0.01), ev.wait(timeout=None)]  # set wait line
    got += [other.wait(0.01), other.wait(timeout=0)]  # timed-out wait line
    trace = rec.stop()
    assert got == [True, True, True, False, False]
    lines = Path(THIS_FILE).read_text().splitlines()
    passes = trace.evs(obj=ev._cond._ls_id, op="pass")
    assert [lines[trace.site(e)[1] - 1].split("# ")[-1] for e in passes] == ["set wait line"] * 3
    assert all(trace.site(e)[0] == THIS_FILE for e in passes)
    assert trace.evs(obj=other._cond._ls_id, op="pass") == []


def test_event_wait_refuses_what_the_original_refuses(rec):
    from recorder import _threading

    rec.start()
    ev = threading.Event()
    for args, kwargs in (((1, 2), {}), ((), {"timeout": 1, "x": 2}), ((), {"tmo": 1}),
                         ((1,), {"timeout": 1})):
        with pytest.raises(TypeError) as ours:
            ev.wait(*args, **kwargs)
        with pytest.raises(TypeError) as original:
            _threading._orig_event_wait(ev, *args, **kwargs)
        assert str(ours.value) == str(original.value)
    rec.stop()


def test_event_wait_lets_go_of_its_lock_when_the_wait_raises(rec):
    rec.start()
    ev = threading.Event()

    def boom(timeout=None):
        raise KeyError("from the wait")

    ev._cond.wait = boom
    with pytest.raises(KeyError, match="from the wait"):
        ev.wait(0.5)
    assert ev._cond.acquire(False)  # (free again)
    ev._cond.release()
    ev.set()
    assert ev.wait() is True  # (set: boom is not reached)
    rec.stop()


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_thread_start_and_event_wait_run_no_python_code_of_the_recorder(rec):
    """A thread per request waits on its _started event in Thread.start: the
    Python wrappers of Event.wait and of the start hook's checks ran 104
    bytecodes a thread; the start hook itself (15 more, and a frame) is C too."""
    import inspect

    rec.start()

    def start_one() -> None:
        t = threading.Thread(target=abs, args=(-1,), name="no-python-start")
        t.start()  # start line
        t.join(10)
        ev = threading.Event()
        ev.set()
        ev.wait()

    _, calls = _recorder_calls(start_one, "_threading.py", "_jobs.py")
    assert list(inspect.signature(threading.Thread.start).parameters) == ["self"]
    started = threading.Thread(target=int)
    started.start()
    started.join(10)
    state = started._ls_state
    with pytest.raises(RuntimeError, match="threads can only be started once"):
        started.start()
    assert started._ls_state is state  # (the original start raised: no new state)
    trace = rec.stop()
    assert not {"_event_wait", "_py_record_start", "install", "runs_pool_worker",
                "_thread_start"} & set(calls), calls
    assert len(trace.evs(trace.thread(started.name)["id"], op="start")) == 1
    [start] = trace.evs(trace.thread("no-python-start")["id"], op="start")
    file, line, _ = trace.site(start)
    assert file == THIS_FILE
    assert Path(THIS_FILE).read_text().splitlines()[line - 1].endswith("# start line")


def _condition_calls_from(fn, caller: str) -> list:
    """The Python methods of threading's Condition that fn() calls from a frame of
    `caller` (in any thread it starts), in order."""

    def key(frame):
        back = frame.f_back
        if (frame.f_code.co_filename == threading.__file__
                and frame.f_code.co_name in ("__enter__", "__exit__", "wait")
                and back is not None and back.f_code.co_name == caller):
            return frame.f_code.co_name
        return None

    return _profiled_calls(fn, key)[1]


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_thread_start_takes_its_started_events_lock_without_python_calls(rec):
    """A Thread's own _started Event has a stock, untraced Condition around a
    _thread.lock: Event.wait (C) takes and releases that lock itself, where it called
    the condition's Python __enter__ and __exit__ from C (2.4k instructions a
    thread start).  A stock Condition whose class has other such methods is still
    entered through them."""
    from recorder import _threading

    rec.start()

    def start_one() -> None:
        t = threading.Thread(target=abs, args=(-1,))
        t.start()
        t.join(10)

    start_one()
    assert _condition_calls_from(start_one, "start") in ([], ["wait"])
    entered = []
    original = _threading._OrigCondition.__enter__

    def counted(self):
        entered.append(self)
        return original(self)

    ev = threading.Thread(target=abs)._started
    assert type(ev._cond) is _threading._OrigCondition
    _threading._OrigCondition.__enter__ = counted
    try:
        assert ev.wait(0.01) is False
    finally:
        _threading._OrigCondition.__enter__ = original
    assert entered == [ev._cond]
    rec.stop()


def test_a_threads_own_event_whose_wait_let_go_of_the_lock_fails_as_without_recording(rec):
    """The lock released by the wait itself (so not held at the end): the error of
    the release, its __context__ the wait's, as the stock Condition's __exit__ gives."""
    from recorder import _threading

    def run() -> BaseException:
        ev = threading.Thread(target=abs)._started

        def bad_wait(timeout=None):
            ev._cond._lock.release()
            raise KeyError("from the wait")

        ev._cond.wait = bad_wait
        with pytest.raises(RuntimeError) as raised:
            ev.wait(0.5)
        return raised.value

    bare = run()
    rec.start()
    assert threading.Event.wait is not _threading._orig_event_wait
    ours = run()
    rec.stop()
    assert str(ours) == str(bare)
    assert type(ours.__context__) is KeyError and str(ours.__context__) == str(bare.__context__)


@pytest.mark.parametrize("kind", ["traced", "threads-own", "stock-rlock"])
def test_event_wait_on_any_condition_releases_its_lock_when_the_wait_raises(rec, kind):
    """The traced Condition of an Event made while recording, a Thread's own stock
    one around a _thread.lock (taken in C), and a stock one around a _thread.RLock
    (entered through its methods)."""
    import _thread

    from recorder import _threading

    rec.start()
    ev = threading.Thread(target=abs)._started if kind == "threads-own" else threading.Event()
    if kind == "stock-rlock":
        ev._cond = _threading._OrigCondition(_thread.RLock())
        assert ev.wait(0.01) is False

    def boom(timeout=None):
        raise KeyError("from the wait")

    ev._cond.wait = boom
    with pytest.raises(KeyError, match="from the wait") as raised:
        ev.wait(0.5)
    assert raised.value.__context__ is None
    assert ev._cond.acquire(False)  # (free again)
    ev._cond.release()
    ev.set()
    assert ev.wait() is True and ev.wait(0) is True
    rec.stop()


@pytest.mark.parametrize("mode", ["full", "summary"])
def test_a_thread_whose_init_did_not_run_fails_to_start_as_without_recording(rec, mode):
    """A Thread whose __init__ never ran cannot start: the original start raises
    its error, the start's parts handed over are taken back, and the Thread gets no
    state; a thread started after it is recorded as usual."""

    class NoInit(threading.Thread):
        def __init__(self) -> None:  # (does not call Thread.__init__)
            pass

    rec.start(mode=mode)
    broken = NoInit()
    with pytest.raises(RuntimeError, match="__init__\\(\\) not called"):
        broken.start()
    assert getattr(broken, "_ls_state", None) is None
    lock = recorder.name(threading.Lock(), "after")
    t = threading.Thread(target=lambda: lock.acquire() and lock.release(), name="fine")
    t.start()
    t.join(10)
    trace = rec.stop()
    fine = trace.thread("fine")["id"]
    assert [e["op"] for e in trace.evs(th=fine) if e["op"] in ("acquire", "release", "end")] == [
        "acquire", "release", "end"]


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
@pytest.mark.parametrize("mode", ["full", "summary"])
def test_a_thread_start_reads_nothing_back_from_the_thread(rec, mode):
    """Thread.start hands the start's parts to the new thread, which makes its
    state and gives it to the Thread: the start reads no `_ident` (whether the
    Thread started already: the original start tells) and the new thread does not
    read back an `_ls_state` its parent set (generic attribute lookups, ~0.7k
    instructions a thread per request).  Its start, state and events are recorded
    as before, and a join still finds the state."""
    reads: list = []
    Counted = rec.thread_class_counting(reads, "_ident", "_ls_state")
    rec.start(mode=mode)
    lock = recorder.name(threading.Lock(), "in-counted")
    t = Counted(target=lambda: lock.acquire() and lock.release(), name="counted")
    me = threading.get_ident()
    t.start()  # counted start
    by_start = [name for name, who in reads if who == me]
    for _ in range(1000):
        if not t.is_alive():
            break
        time.sleep(0.01)
    by_run = [name for name, _who in reads if name == "_ls_state"]
    st = t.__dict__["_ls_state"]
    t.join(10)
    trace = rec.stop()
    assert by_start == [] and by_run == [], (by_start, by_run)
    d = trace.thread("counted")
    assert d["id"] == st.tid and d["ident"] == t.ident and d["native_id"] == t.native_id
    [start] = trace.evs(obj=d["id"], op="start")
    file, line, _ = trace.site(start)
    assert file == THIS_FILE
    assert Path(THIS_FILE).read_text().splitlines()[line - 1].endswith("# counted start")
    assert [e["op"] for e in trace.evs(th=d["id"])
            if e["op"] in ("acquire", "release", "end")] == ["acquire", "release", "end"]
    assert len(trace.evs(obj=d["id"], op="join")) == 1


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_many_starts_under_way_at_once_each_hand_over_to_their_own_thread(rec):
    """40 threads each start a thread while the other starts are under way (each new
    thread holds in its ``_ls_state`` setter until all 40 are): the list of starts
    under way grows past its first size with entries in it, and each new thread
    takes its own start's parts: its parent and site."""
    n = 40
    barrier = threading.Barrier(n, timeout=20)

    Gathered = rec.thread_class_counting([], "_ls_state", on_set=lambda _name: barrier.wait())

    children: dict = {}

    def parent(i: int) -> None:
        c = Gathered(target=int, name=f"child-{i}")
        c.start()  # gathered start
        children[i] = c

    rec.start()
    parents = [threading.Thread(target=parent, args=(i,), name=f"parent-{i}") for i in range(n)]
    for p in parents:
        p.start()
    for p in parents:
        p.join(30)
    for c in children.values():
        c.join(30)
    trace = rec.stop()
    assert sorted(children) == list(range(n))
    for i in range(n):
        d = trace.thread(f"child-{i}")
        assert d["parent"] == trace.thread(f"parent-{i}")["id"]
        assert children[i].__dict__["_ls_state"].tid == d["id"]
        [start] = trace.evs(obj=d["id"], op="start")
        assert start["th"] == d["parent"]
        file, line, _ = trace.site(start)
        assert Path(THIS_FILE).read_text().splitlines()[line - 1].endswith("# gathered start")


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="no pthread_kill")
def test_a_start_interrupted_while_its_thread_makes_its_state(rec):
    """The start's parts live on the starting call's C stack: a start whose wait
    is interrupted (an exception from a signal handler) returns while its new
    thread may still be making its state (here in an ``_ls_state`` setter that
    lets other threads run).  The new thread works from its own copy and tells
    the starting call nothing once it is gone: no write to a stack reused since by
    other starts, no reference left behind."""
    import gc
    import weakref

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    main = threading.get_ident()
    release = threading.Event()

    def interrupt_the_start(_name: str) -> None:
        signal.pthread_kill(main, signal.SIGUSR1)
        release.wait(10)  # (lets the interrupted start return meanwhile)

    Slow = rec.thread_class_counting([], "_ls_state", on_set=interrupt_the_start)

    old = signal.signal(signal.SIGUSR1, interrupt)
    try:
        rec.start()
        t = Slow(target=int, name="slow-state")
        with pytest.raises(Interrupted):
            t.start()
        others = [threading.Thread(target=int, name=f"after-{i}") for i in range(3)]
        for o in others:  # (starts whose handovers reuse that stack)
            o.start()
            o.join(10)
        release.set()
        t._started.wait(10)
        t.join(10)
        assert not t.is_alive()
        state = weakref.ref(t.__dict__["_ls_state"])
        trace = rec.stop()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert {"after-0", "after-1", "after-2"} <= {d["name"] for d in trace.objects("thread")}
    del t
    _core.states[:] = [st for st in _core.states if st is not state()]  # (the recording's list)
    gc.collect()
    assert state() is None  # (no reference kept through a handover gone)


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_a_started_thread_is_bound_in_its_thread_state_dict_only(rec):
    """A threading.local entry cost each new thread 3k instructions (made, then
    torn down at its end): the state of a Thread started while recording is
    found from the thread-state dict, from C and from Python alike."""
    rec.start()
    lock = threading.Lock()
    seen: dict = {}

    def run() -> None:
        seen["tls"] = hasattr(_core._tls, "st")
        st = _core.current_state()
        seen["same"] = st is _core.bound_state() is _core.current_state()
        seen["tid"] = st.tid
        with lock:
            pass

    t = threading.Thread(target=run, name="bound-in-c")
    t.start()
    t.join(10)
    trace = rec.stop()
    th = trace.thread("bound-in-c")
    assert seen == {"tls": False, "same": True, "tid": th["id"]}
    assert th["native_id"] == t.native_id and th["ident"] == t.ident
    assert trace.ops(lock._ls_id, th["id"]) == {"acquire": 1, "release": 1}


_TABLE_FAULTS = '''
import resource, sys, threading
import recorder

before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
recorder.start(sys.argv[1], mode="summary", flush_interval=3600)
locks = [threading.Lock() for _ in range(50)]
for lock in locks:
    with lock:
        pass
recorder.stop()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_summary_tables_are_not_scanned_whole(tmp_path):
    """The summary filter's tables are 13 MB of zero pages until used: clearing
    them at start and taking them at stop visited every slot, which faulted them
    in (3,300 page faults, 13 MB of memory); now only the slots in use (the whole
    recording here: about 600)."""
    out = subprocess.run([sys.executable, "-c", _TABLE_FAULTS, str(tmp_path / "t")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) < 2000


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_a_started_threads_state_is_not_tracked_by_the_cyclic_gc(rec):
    """A thread per request made a GC-tracked state each (17 slots that every
    young-generation collection traversed); it can be in no cycle, as its buffer."""
    import gc

    rec.start()
    seen: dict = {}

    def run() -> None:
        st = _core.current_state()
        seen["tracked"] = gc.is_tracked(st)
        seen["buf"] = gc.is_tracked(st.buf)

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    assert seen == {"tracked": False, "buf": False}
    # ... and freed by reference counting once its thread ended and was drained
    import weakref

    refs = []

    def keep() -> None:
        refs.append(weakref.ref(_core.current_state()))

    for _ in range(50):
        t = threading.Thread(target=keep)
        t.start()
        t.join(10)
    del t
    recorder.flush()
    rec.stop()
    assert len(refs) == 50 and [r for r in refs if r() is not None] == []


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_the_writers_sets_of_written_ids_are_not_tracked_by_the_cyclic_gc(rec):
    """The writer keeps the id of every definition a part holds: a set as large as
    the locks the program made, which every full collection walked (a pool making a
    Future per job paid 1.8k instructions a job for it).  Untracked in every part."""
    import gc

    rec.start(max_file_mb=0.02)  # about 20 KB per part: rotations below
    locks = [threading.Lock() for _ in range(300)]
    for lock in locks:
        with lock:
            pass
    sink = recorder._sink
    deadline = time.monotonic() + 10
    while sink.part < 2 and time.monotonic() < deadline:
        for lock in locks:
            with lock:
                pass
        time.sleep(0.01)
    assert sink.part >= 2
    assert sink.written and sink.written_sites  # in use ...
    assert not gc.is_tracked(sink.written) and not gc.is_tracked(sink.written_sites)
    with pytest.raises(TypeError):
        _core.speedups.untrack_ints({1})  # ... and only ever made empty
    rec.stop()


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_a_condition_and_an_rlock_are_made_without_recorder_python(rec):
    """Condition's __new__ and __init__ and RLock's __init__ are C: a pool makes a
    Future (a Condition with its own RLock) per job, and the three Python
    constructors ran about 58 bytecodes and three frames a job.  Their definitions
    are the same: the creating line, the condition naming its lock, its own RLock
    naming the condition as owner."""
    from concurrent.futures import Future

    rec.start()

    mine = threading.Lock()  # (a Lock's constructor is Python on 3.13)

    def make():
        own = threading.Condition()  # made here
        rlock = threading.RLock()  # made here
        cond = threading.Condition(mine)  # made here
        cond_kw = threading.Condition(lock=mine)  # made here
        fut = Future()  # made here
        return [own, rlock, cond, cond_kw, fut]

    make()  # (the first creation at a site goes through Python's define())
    made, calls = _recorder_calls(lambda: [make() for _ in range(5)], "_threading.py",
                                  "_core.py", "_naming.py")
    with pytest.raises(TypeError, match=r"Condition.__init__\(\) takes"):
        threading.Condition(1, 2)
    with pytest.raises(TypeError):
        threading.Condition(lok=1)
    for own, rlock, cond, cond_kw, fut in made:  # (a definition is written once used)
        with rlock:
            pass
        for x in (own, cond, cond_kw, fut._condition):
            with x:
                x.notify()  # (a signal on the condition: its definition and its lock's)
    trace = rec.stop()
    assert calls == {}, calls
    lines = Path(THIS_FILE).read_text().splitlines()
    for own, rlock, cond, cond_kw, fut in made:
        d_own, d_lock = trace.defs[own._ls_id], trace.defs[own._lock._ls_id]
        assert d_own["type"] == "threading.Condition" and d_own["lock"] == own._lock._ls_id
        assert d_lock["type"] == "threading.RLock" and d_lock["owner"] == own._ls_id
        d_rlock = trace.defs[rlock._ls_id]
        assert d_rlock["type"] == "threading.RLock" and "owner" not in d_rlock
        assert trace.defs[cond._ls_id]["lock"] == trace.defs[cond_kw._ls_id]["lock"] \
            == cond._lock._ls_id
        for d in (d_own, d_lock, d_rlock, trace.defs[cond._ls_id]):
            file, line, _ = trace.site(d)
            assert file == THIS_FILE and lines[line - 1].endswith("# made here"), d
        d_fut = trace.defs[fut._condition._ls_id]
        assert d_fut["type"] == "threading.Condition", d_fut
        assert d_fut["lib"] == "concurrent.futures", d_fut
        file, line, _ = trace.site(d_fut)
        assert file == THIS_FILE and lines[line - 1].endswith("# made here"), d_fut


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_threading_lock_is_made_without_recorder_python(rec):
    """Before 3.13 threading.Lock is _thread.allocate_lock, which the recorder
    replaces by a callable: its Python __call__ ran a frame per Lock(); from 3.13 it
    is the traced type, whose Python __new__ and __init__ ran two.  Every Thread
    makes one (its _started Event's lock, left untraced)."""
    rec.start()

    def make():
        lock = threading.Lock()  # made here
        thread = threading.Thread(target=int)
        return lock, thread

    make()  # (the first creation at a site goes through Python's define())
    made, calls = _recorder_calls(lambda: [make() for _ in range(5)], "_threading.py",
                                  "_core.py", "_naming.py")
    with pytest.raises(TypeError, match=r"allocate_lock\(\) takes no arguments"
                       if sys.version_info < (3, 13) else r"Lock.__new__\(\) takes 1"):
        threading.Lock(1)
    for lock, _ in made:
        with lock:
            pass
    trace = rec.stop()
    assert calls == {}, calls
    lines = Path(THIS_FILE).read_text().splitlines()
    for lock, thread in made:
        d = trace.defs[lock._ls_id]
        assert d["type"] == "threading.Lock" and d["reentrant"] is False
        file, line, _ = trace.site(d)
        assert file == THIS_FILE and lines[line - 1].endswith("# made here"), d
        assert not hasattr(thread._started._cond._lock, "_ls_id")  # (a Thread's own: untraced)


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_a_threads_end_reads_the_end_hook_again_once_changed(rec, monkeypatch):
    """A thread's binding and end look _core's hooks up only when _core's globals
    changed since they last did: a hook set, or cleared, between two threads is
    the one the second thread's end calls."""
    from recorder import _core as core

    rec.start()

    def run_one() -> None:
        t = threading.Thread(target=int)
        t.start()
        t.join(10)
        assert not t.is_alive()

    run_one()
    run_one()  # (the lookups remembered)
    ended = []
    monkeypatch.setattr(core, "on_thread_end", lambda: ended.append(1))
    run_one()
    assert ended == [1]
    monkeypatch.setattr(core, "on_thread_end", None)
    run_one()
    assert ended == [1]
    trace = rec.stop()
    assert len([r for r in trace.records if r.get("op") == "end"]) >= 4


@needs_c
@pytest.mark.skipif(PURE, reason="the pure-Python recorder was asked for")
def test_a_threads_run_has_no_recorder_frame_under_it(rec, monkeypatch):
    """Thread._bootstrap_inner's hook (the thread's begin and end around its run) is
    C: the Python one was a frame and 20 bytecodes a thread.  Its end is recorded
    and the end hook called whatever the run raised."""
    from recorder import _core as core

    ended = []
    monkeypatch.setattr(core, "on_thread_end", lambda: ended.append(1))
    rec.start()
    seen: dict = {}

    def run() -> None:
        frames, f = [], sys._getframe()
        while f is not None:
            frames.append(f.f_code.co_filename)
            f = f.f_back
        package = Path(recorder.__file__).parent
        seen["recorder"] = [name for name in frames if Path(name).parent == package]

    def boom() -> None:
        raise KeyError("raised in the thread")

    hooked = []
    monkeypatch.setattr(threading, "excepthook", lambda args: hooked.append(args.exc_type))
    for target, name in ((run, "frames"), (boom, "raiser")):
        t = threading.Thread(target=target, name=name)
        t.start()
        t.join(10)
    trace = rec.stop()
    assert seen == {"recorder": []}
    assert hooked == [KeyError] and len(ended) == 2
    for name in ("frames", "raiser"):
        assert trace.ops(trace.thread(name)["id"])["end"] == 1


@needs_c
def test_ids_made_in_c_and_in_python_come_from_one_counter(rec):
    """C steps the count behind _core.next_id itself (no call through its
    method-wrapper): ids made either way never repeat and keep their order."""
    rec.start(flush_interval=3600)
    ids = []
    for _ in range(5):
        lock = threading.Lock()
        with lock:
            pass
        ids.append(lock._ls_id)      # made in C (define)
        ids.append(_core.next_id())  # made in Python
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join(10)
        ids.append(t._ls_state.tid)  # made in C (the thread's state)
    rec.stop()
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


@needs_c
def test_an_event_made_from_a_freed_one_holds_only_its_own_items():
    """Freed events are kept and made again (a busy program makes and frees a few
    hundred thousand a second): each freed one lets go of all it held, and one made
    from it has its own items only, however many the freed one had."""
    Ev = _core.speedups.Ev
    extra = {"sig": "notify"}
    before = sys.getrefcount(extra)
    six = [Ev(i, "signal", "cond", 7, None, extra) for i in range(3000)]  # (past the bound)
    assert sys.getrefcount(extra) == before + 3000
    del six
    assert sys.getrefcount(extra) == before
    five = [Ev(i, "acquire", "lock", 0, None) for i in range(3000)]
    assert all(len(e) == 5 for e in five)
    assert [tuple(e) for e in five[:2]] == [(0, "acquire", "lock", 0, None),
                                             (1, "acquire", "lock", 0, None)]
    with pytest.raises(IndexError):
        five[0][5]


def _threads_buffer_after_drains(work) -> tuple[threading.Thread, int]:
    """Run `work` in a thread to its end; drain twice (its events taken, then its
    state let go); return the Thread and the id its buffer had."""
    t = threading.Thread(target=work)
    t.start()
    t.join(timeout=10)
    buf_id = id(t._ls_state._buf)
    recorder.flush()
    recorder.flush()
    return t, buf_id


@needs_c
def test_the_buffer_of_a_thread_that_ended_serves_a_new_thread(rec):
    """A thread per request made an event buffer (a deque) and freed it each: the
    writer keeps the empty buffer of an ended thread it lets go of, and a new
    thread's first event takes it.  Each thread's events are written once, as its
    own."""
    rec.start(flush_interval=3600)
    lock = threading.Lock()

    def work():
        with lock:
            pass

    first, buf_id = _threads_buffer_after_drains(work)
    assert first._ls_state._buf is None
    second = threading.Thread(target=work)
    second.start()
    second.join(timeout=10)
    assert id(second._ls_state._buf) == buf_id
    trace = rec.stop()
    for t in (first, second):
        tid = t._ls_state.tid
        assert [e["op"] for e in trace.evs(obj=lock._ls_id) if e["th"] == tid] == [
            "acquire", "release"]


@needs_c
def test_a_buffer_held_elsewhere_is_not_given_to_a_new_thread(rec):
    """An ended thread's buffer that something still holds stays its own."""
    rec.start(flush_interval=3600)
    lock = threading.Lock()

    def work():
        with lock:
            pass

    held = []
    first = threading.Thread(target=lambda: (work(), held.append(_core.current_state()._buf)))
    first.start()
    first.join(timeout=10)
    recorder.flush()
    recorder.flush()
    second = threading.Thread(target=work)
    second.start()
    second.join(timeout=10)
    assert first._ls_state._buf is held[0]
    assert second._ls_state._buf is not held[0] and len(held[0]) == 0
    trace = rec.stop()
    assert [e["op"] for e in trace.evs(obj=lock._ls_id)] == ["acquire", "release"] * 2


@needs_c
@pytest.mark.parametrize("hold", ["nothing", "weakly", "strongly"])
def test_a_thread_state_let_go_of_is_made_again_whole(rec, hold):
    """The writer keeps the state of a thread nothing refers to any more for a new
    thread (a thread per request allocated one and freed it each).  A state still
    held keeps all it says, one held weakly is freed (its weak reference never sees
    another thread's); a state made again says only what its new thread does; each
    thread's record and events are its own."""
    import weakref

    rec.start(flush_interval=3600)
    lock = threading.Lock()

    def work():
        with lock:
            pass

    first = threading.Thread(target=work, name="first")
    first.start()
    first.join(timeout=10)
    st = first._ls_state
    first_tid = st.tid
    kept = {"nothing": None, "weakly": weakref.ref(st), "strongly": st}[hold]
    del st, first
    recorder.flush()  # (its events taken)
    recorder.flush()  # (its state let go of)
    second = threading.Thread(target=work, name="second", daemon=True)
    second.start()
    second.join(timeout=10)
    new = second._ls_state
    assert new.tid != first_tid and new.name == "second" and new.daemon is True
    assert new.ended and new.gap is None and new.dropped == 0
    if hold == "weakly":  # (freed, not kept: its weak reference must not see the new one)
        assert kept() is None
    if hold == "strongly":
        assert kept is not new
        assert (kept.tid, kept.name, kept.daemon, kept.ended) == (first_tid, "first", False, True)
    trace = rec.stop()
    for name in ("first", "second"):
        tid = trace.thread(name)["id"]
        assert [e["op"] for e in trace.evs(obj=lock._ls_id) if e["th"] == tid] == [
            "acquire", "release"]
        # (a join that found the thread still running waits: wait-begin/-end too)
        assert sorted(e["op"] for e in trace.events if e.get("obj") == tid
                      and e["op"] in ("start", "end", "join")) == ["end", "join", "start"]


def _burst(n: int, lock) -> None:
    """n threads, one after the other, each taking `lock` once."""
    def work():
        with lock:
            pass

    for _ in range(n):
        t = threading.Thread(target=work)
        t.start()
        t.join(timeout=10)


@needs_c
def test_the_kept_states_and_buffers_follow_the_bursts_between_drains(rec):
    """A server starting a thread a request makes as many states and buffers
    between two drains as it serves requests (some 500 at the default 0.25 s), more
    than a pool of 256 kept: the pools keep what the last intervals made, so a
    second burst like the first makes no state or buffer anew; quiet drains bring
    them back to their least size."""
    speedups = _core.speedups
    rec.start(flush_interval=3600)
    lock = threading.Lock()
    _burst(600, lock)
    recorder.flush()  # (their events taken)
    recorder.flush()  # (their states and buffers let go of, kept)
    before = speedups.pool_stats()
    assert before["states"][0] >= 600 and before["buffers"][0] >= 600, before
    _burst(600, lock)
    after = speedups.pool_stats()
    for pool in ("states", "buffers"):
        assert after[pool][2] == before[pool][2], pool  # (no miss: none made anew)
    for _ in range(4):  # (the second burst's taken, let go of; then two quiet drains)
        recorder.flush()
    quiet = speedups.pool_stats()
    assert quiet["states"][:2] == (256, 256) and quiet["buffers"][:2] == (256, 256)
    trace = rec.stop()
    assert len(trace.evs(lock._ls_id, op="acquire")) == 1200


def _malloc_heap_bytes() -> int | None:
    """glibc's main heap (mallinfo2().arena), or None where there is none."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = MallInfo2
    return mallinfo2().arena


@needs_c
def test_events_are_made_apart_from_the_programs_objects_and_given_back(rec):
    """Events live until the next drain and are made by the hundred thousand a
    second. Made by pymalloc, they were laid between the program's own objects of
    their size (a Future, a bound method) and left holes there once written: the
    program's objects lay scattered, and the cyclic GC's walk over them ran twice
    as long. They are made in slabs of their own (_ev_slabs.c), mapped from the
    system, not from malloc (slabs aligned by posix_memalign left glibc's heap in
    holes it could not reuse, growing by megabytes a second under steady traffic:
    4 threads logging, 2 MB in use in a 34 MB heap after 4 s). Emptied slabs are
    kept as many as were in use at once over the last two drain intervals, and
    quiet intervals give them back."""
    speedups = _core.speedups
    rec.start(flush_interval=3600)
    lock = threading.Lock()
    recorder.flush()
    gc.collect()
    blocks = sys.getallocatedblocks()
    heap = _malloc_heap_bytes()
    for _ in range(20_000):
        with lock:
            pass
    made = sys.getallocatedblocks() - blocks
    assert made < 4_000, made  # (40,000 more while pymalloc made the events)
    if heap is not None:  # (glibc)
        grown = _malloc_heap_bytes() - heap
        assert grown < 2**20, grown  # (the slabs' 3 MB more from posix_memalign)
    slabs, alive = speedups.ev_slabs()
    assert alive >= 40_000
    assert slabs >= 40_000 * 80 // 65_536
    recorder.flush()  # (the events written and freed: their slabs kept, as many
    # as were in use at once, for the next interval's events)
    assert speedups.ev_slabs()[0] >= 40_000 * 80 // 65_536
    for _ in range(3):  # (quiet intervals: given back)
        recorder.flush()
    slabs, alive = speedups.ev_slabs()
    assert alive < 100 and slabs <= 2, (slabs, alive)
    trace = rec.stop()
    assert len(trace.evs(lock._ls_id, op="acquire")) == 20_000


_POOL_LATE = """
import sys, threading, recorder
recorder.start(sys.argv[1])
assert "concurrent.futures.thread" not in sys.modules
for _ in range(3):  # (each start finds no pool module, as sys.modules was)
    t = threading.Thread(target=int)
    t.start()
    t.join(10)
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(1) as pool:
    assert pool.submit(abs, -3).result(10) == 3
recorder.stop()
"""


@needs_c
def test_a_pool_imported_after_threads_started_still_records_its_jobs(tmp_path):
    """Thread.start asks whether the thread runs a pool's worker (which installs
    the job hooks) only while sys.modules changed since it last had no
    concurrent.futures.thread: a pool imported after threads started is seen."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSCOPE_")}
    env["PYTHONPATH"] = str(ROOT)
    out = tmp_path / "traces"
    res = subprocess.run([sys.executable, "-c", _POOL_LATE, str(out)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    trace = Trace([str(p) for p in sorted(out.glob("*.jsonl"))])
    assert [(j["kind"], j["name"]) for j in trace.objects("segment")] == [("job", "abs")]


@needs_c
def test_the_c_methods_of_traced_primitives_are_their_types_own(rec):
    """The C methods a traced primitive has from a base (LockCore's, CondHooks',
    or the accelerator's methods for any class, set on Thread, Event, Condition
    and the semaphores) are method descriptors of its type itself: CPython checks
    an instance's type with one comparison and specialises the calls.  A base's
    descriptor walked the instance's MRO and took the generic call every time."""
    rec.start(flush_interval=3600)
    lock, rlock = threading.Lock(), threading.RLock()
    cond, sem, bsem = threading.Condition(), threading.Semaphore(), threading.BoundedSemaphore()
    methods = {
        lock: ["acquire", "release", "__enter__", "__exit__", "_is_owned"],
        rlock: ["acquire", "release", "__enter__", "__exit__", "_is_owned", "_release_save",
                "_acquire_restore"],
        cond: ["notify", "notify_all", "wait"],
        sem: ["acquire", "__enter__", "release"],
        bsem: ["acquire", "__enter__", "release"],
    }
    for obj, names in methods.items():
        for name in names:
            d = inspect.getattr_static(type(obj), name)
            assert type(d) is type(str.join) and d.__objclass__ is type(obj), (obj, name, d)
    for cls, name in ((threading.Thread, "start"), (threading.Thread, "_bootstrap_inner"),
                      (threading.Thread, "join"), (threading.Event, "wait")):
        assert vars(cls)[name].__objclass__ is cls, (cls, name)

    def calls() -> None:
        lock.acquire()
        lock.release()
        rlock.acquire()
        rlock.release()

    for _ in range(200):
        calls()
    ops = [i.opname for i in dis.get_instructions(calls, adaptive=True)]
    assert sum("METHOD_DESCRIPTOR" in op for op in ops) == 4, ops

    class Sub(type(cond)):  # (a subclass's instance still passes the type check)
        pass

    sub = Sub()
    with sub:
        sub.notify_all()
        assert not sub.wait(0.001)
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join(timeout=30)
    trace = rec.stop()
    assert [e["op"] for e in trace.evs(lock._ls_id)] == ["acquire", "release"] * 200
