"""The recorder says what it cost: the `cost` of `beat` and `end` records, and
recorder.cost() (docs/trace-format.md, `beat`)."""

from __future__ import annotations

import importlib
import itertools
import os
import threading
import time

import recorder
from recorder import _core

_sink = importlib.import_module("recorder._sink")  # (recorder._sink is the current sink)


def _busy_threads(locks: list, rounds: int, threads: int = 3) -> None:
    def work() -> None:
        for _ in range(rounds):
            for lock in locks:
                with lock:
                    pass

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(10)


def test_the_end_record_says_what_recording_cost(rec):
    rec.start()
    began = time.monotonic_ns()
    cpu_before = time.process_time_ns()
    _busy_threads([threading.Lock(), threading.RLock()], 200)
    cpu_work = time.process_time_ns() - cpu_before
    trace = rec.stop()
    cpu_after = time.process_time_ns()

    end = trace.records[-1]
    assert end["k"] == "end" and end["reason"] == "stop"
    cost = end["cost"]
    assert cost["since"] <= began < end["ts"]
    # the whole process's CPU since recording started: at least what the work
    # took, and no more than the process used in all
    assert cpu_work <= cost["cpu_ns"] <= cpu_after
    assert 0 < cost["writer_ns"] < cost["cpu_ns"]
    # every event taken from a buffer is an `ev` record (full mode)
    evs = [r for r in trace.records if r["k"] == "ev"]
    assert cost["events"] == len(evs) >= 3 * 200 * 4
    # every byte before the end record itself
    size = os.path.getsize(trace.paths[0])
    with open(trace.paths[0], "rb") as f:
        last = f.read().splitlines(keepends=True)[-1]
    assert cost["bytes"] == size - len(last)


def test_a_beat_carries_the_running_cost(rec, monkeypatch):
    monkeypatch.setattr(_sink, "_BEAT_NS", 0)  # a beat at every drain
    rec.start(flush_interval=3600)
    lock = threading.Lock()
    seen = []
    for n in (100, 300):
        for _ in range(n):
            with lock:
                pass
        recorder.flush()
        seen.append(recorder.cost())
    trace = rec.stop()

    beats = [r["cost"] for r in trace.records if r["k"] == "beat"]
    assert len(beats) >= 2
    for a, b in itertools.pairwise(beats):  # running totals
        assert b["since"] == a["since"]
        for k in ("cpu_ns", "writer_ns", "events", "bytes"):
            assert b[k] >= a[k], k
    end = trace.records[-1]["cost"]
    assert all(end[k] >= beats[-1][k] for k in ("cpu_ns", "writer_ns", "events", "bytes"))
    # recorder.cost() read after each flush counts the events taken so far
    assert seen[0]["events"] >= 200 and seen[1]["events"] - seen[0]["events"] == 600
    assert seen[1]["bytes"] > seen[0]["bytes"] > 0


def test_the_cost_runs_on_across_parts(rec):
    rec.start(max_file_mb=0.02)
    _busy_threads([threading.Lock() for _ in range(3)], 300)
    trace = rec.stop()

    assert len(trace.parts) >= 3
    before = 0  # bytes of the parts before this one
    since = trace.parts[0][-1]["cost"]["since"]
    for path, part in zip(trace.paths, trace.parts, strict=True):
        end = part[-1]
        assert end["k"] == "end" and end["cost"]["since"] == since
        with open(path, "rb") as f:
            data = f.read()
        last = data.splitlines(keepends=True)[-1]
        assert end["cost"]["bytes"] == before + len(data) - len(last)
        before += len(data)
    assert trace.parts[-1][-1]["cost"]["events"] == len([r for r in trace.records if r["k"] == "ev"])


def test_recorder_cost_is_none_while_off(rec):
    assert recorder.cost() is None
    rec.start()
    cost = recorder.cost()
    assert set(cost) == {"since", "cpu_ns", "writer_ns", "events", "bytes"}
    rec.stop()
    assert recorder.cost() is None


def test_a_summary_trace_says_what_it_cost_too(rec):
    """Summary mode: the same account; its events are those the filter on the hot
    path let through to the buffers (each lock's first dependency, not every
    operation; the thread lifecycle it held back and wrote later is not among them)."""
    rec.start(mode="summary")
    _busy_threads([threading.Lock(), threading.Lock()], 300)
    trace = rec.stop()
    cost = trace.records[-1]["cost"]
    assert 0 < cost["writer_ns"] < cost["cpu_ns"]
    if _core.speedups is not None:  # (in pure Python every event reaches the writer's filter)
        assert 0 < cost["events"] < 3 * 300 * 4 // 10
    else:
        assert cost["events"] >= 3 * 300 * 4
    size = os.path.getsize(trace.paths[0])
    with open(trace.paths[0], "rb") as f:
        last = f.read().splitlines(keepends=True)[-1]
    assert cost["bytes"] == size - len(last)
