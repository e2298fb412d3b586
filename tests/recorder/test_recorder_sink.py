"""The sink: rotation, bounded memory, write failures, unusable directories."""

from __future__ import annotations

import glob
import os
import threading
import time

import pytest
from lockscope_tracecheck import validate

import recorder
from recorder import _core


def test_checker_rejects_bad_records():
    """The schema check used by every test can fail."""
    validate({"k": "ev", "ts": 1, "th": 1, "obj": 2, "op": "acquire"})
    for bad in ({"k": "ev", "ts": 1, "th": 0, "obj": 2, "op": "acquire"},
                {"k": "ev", "ts": 1, "th": 1, "obj": 2, "op": "grab"},
                {"k": "ev", "ts": 1, "th": 1, "obj": 2, "op": "wait-end"},
                {"k": "lock", "id": 3, "type": "threading.Lock"},
                {"k": "bogus"}):
        with pytest.raises(AssertionError):
            validate(bad)


def test_rotation_makes_self_contained_parts(rec):
    rec.start(max_file_mb=0.02)  # about 20 KB per part
    locks = [recorder.name(threading.Lock(), f"l{i}") for i in range(4)]

    def work() -> None:
        for _ in range(300):
            for lock in locks:
                with lock:
                    pass
            time.sleep(0.0002)

    threads = [threading.Thread(target=work, name=f"rot-{i}") for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    trace = rec.stop()  # Trace checks every part on its own (header, definitions first)

    assert len(trace.parts) >= 3, [len(p) for p in trace.parts]
    runs = {p[0]["run"] for p in trace.parts}
    assert len(runs) == 1
    for n, part in enumerate(trace.parts):
        assert part[0]["part"] == n
        end = part[-1]
        assert end["k"] == "end"
        assert end["reason"] == ("stop" if n == len(trace.parts) - 1 else "rotate")
        assert os.path.getsize(trace.paths[n]) < 0.02 * 1024 * 1024 * 3
    assert trace.paths[1].endswith(".1.jsonl")
    # Nothing lost across parts.
    for lock in locks:
        lid = lock._ls_id
        assert len(trace.evs(lid, op="acquire")) == len(trace.evs(lid, op="release")) == 900


def test_bounded_buffer_drops_and_counts_and_never_blocks(rec):
    """With the writer stalled, the buffer stops growing: events are dropped and counted."""
    rec.start(max_buffer_events=200, flush_interval=3600)
    sink = recorder._sink
    assert sink._io.acquire(True, 5)  # stall the writer: it cannot drain anything
    try:
        lock = threading.Lock()
        n = 5000
        for _ in range(n):
            with lock:
                pass
        st = _core.current_state()
        assert len(st.buf) <= 200
        assert st.dropped > 0
    finally:
        sink._io.release()
    trace = rec.stop()
    main = st.tid
    kept = [e for e in trace.evs(lock._ls_id, main)]
    dropped = [r for r in trace.records if r["k"] == "dropped"]
    assert [d["th"] for d in dropped] == [main]
    assert len(kept) + dropped[0]["count"] == 2 * n
    assert 0 < len(kept) <= 200


def test_unwritable_directory_disables_recording_with_one_warning(tmp_path, capfd):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    handle = recorder.start(blocker / "traces")
    try:
        assert handle.active is False
        assert not recorder.is_recording()
        assert threading.Lock is recorder._threading.ORIGINALS["Lock"]
        with threading.Lock():
            pass
    finally:
        recorder.stop()
    err = capfd.readouterr().err
    assert err.count("lockscope:") == 1 and "recording disabled" in err
    assert str(blocker / "traces") in err


def test_flush_happens_without_stop(rec):
    rec.start(flush_interval=0.02)
    lock = recorder.name(threading.Lock(), "flushed")
    with lock:
        pass
    path = recorder.trace_files()[0]
    deadline = time.monotonic() + 10
    while b'"flushed"' not in open(path, "rb").read() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b'"flushed"' in open(path, "rb").read()
    trace = rec.stop()
    assert trace.records[-1] == {**trace.records[-1], "k": "end", "reason": "stop"}


def test_file_name_carries_host_pid_and_time(rec):
    rec.start()
    files = rec.stop().paths
    name = os.path.basename(files[0])
    assert name.startswith("lockscope-") and f"-{os.getpid()}-" in name
    assert glob.fnmatch.fnmatch(name, "lockscope-*-*-*T*Z.jsonl")


def test_internal_error_in_the_writer_disables_recording_with_one_warning(rec, capfd,
                                                                          monkeypatch):
    rec.start()
    sink = recorder._sink

    def broken(sid):
        raise KeyError(sid)

    monkeypatch.setattr(_core, "site_record", broken)
    lock = threading.Lock()
    for _ in range(10):
        with lock:
            pass
    sink.flush()
    sink.flush()
    assert not recorder.is_recording()
    with lock:
        pass
    monkeypatch.undo()
    recorder.stop()
    err = capfd.readouterr().err
    assert err.count("lockscope:") == 1 and "internal error" in err


def test_errors_on_the_hot_path_never_reach_the_program(rec, monkeypatch):
    rec.start()
    lock, rlock, sem = threading.Lock(), threading.RLock(), threading.Semaphore()
    cond = threading.Condition(lock)

    def boom(*a):
        raise MemoryError("simulated")

    monkeypatch.setattr(recorder._threading, "mono_ns", boom)
    monkeypatch.setattr(_core, "mono_ns", boom)
    monkeypatch.setattr(_core, "_getframe", boom)
    for _ in range(3):
        with lock:
            pass
        with rlock, rlock:
            pass
        with sem:
            pass
        assert lock.acquire(timeout=1)
        lock.release()
        with cond:
            cond.notify()
            assert cond.wait(0.001) is False
    assert not lock.locked() and rlock.acquire(False)
    rlock.release()
    monkeypatch.undo()
    rec.stop()
