"""Summary mode (``mode="summary"``): each distinct lock dependency written once with
its counts, hold/wait histograms, rare events in full, lifecycle only of threads that
did something written, and memory bounded by distinct behaviour."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import recorder
from recorder import _summary

QUIET = 60_000  # ms: no wait or hold of these tests is "long" (a loaded machine preempts)


def _run(target, *args, name: str | None = None) -> None:
    t = threading.Thread(target=target, args=args, name=name)
    t.start()
    t.join(30)
    assert not t.is_alive()


def _nested(first, second, n: int) -> None:
    for _ in range(n):
        with first:
            with second:
                pass


def _deps(trace, obj: int | None = None) -> list[dict]:
    """The dependencies (the last record of each id: its counts at the end)."""
    last = {r["id"]: r for r in trace.records if r["k"] == "dep"}
    return [r for r in last.values() if obj is None or r["obj"] == obj]


def _hists(trace) -> dict[int, dict]:
    """Per lock, its histograms summed over the run's hist records."""
    out: dict[int, dict] = {}
    for r in trace.records:
        if r["k"] != "hist":
            continue
        h = out.setdefault(r["obj"], {"try_fails": 0})
        h["try_fails"] += r.get("try_fails", 0)
        for what in ("hold", "wait"):
            if what in r:
                acc = h.setdefault(what, {"n": 0, "max_ns": 0, "buckets": 0})
                acc["n"] += r[what]["n"]
                acc["max_ns"] = max(acc["max_ns"], r[what]["max_ns"])
                acc["buckets"] += sum(c for _, c in r[what]["buckets"])
    return out


def test_each_distinct_dependency_is_written_once_with_its_count(rec):
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    a = recorder.name(threading.Lock(), "a")
    b = recorder.name(threading.Lock(), "b")
    _run(_nested, a, b, 5000, name="worker")
    trace = rec.stop()
    assert trace.header["settings"]["mode"] == "summary"
    ia, ib = trace.one("lock", "a")["id"], trace.one("lock", "b")["id"]
    worker = trace.thread("worker")["id"]
    # the first occurrence, as events: a taken, b taken under it, both released
    assert [(e["obj"], e["op"]) for e in trace.evs(th=worker) if e["obj"] in (ia, ib)] == [
        (ia, "acquire"), (ib, "acquire"), (ib, "release"), (ia, "release")]
    (dep_b,) = _deps(trace, ib)
    assert [h["obj"] for h in dep_b["held"]] == [ia]
    assert dep_b["n"] == 5000 and dep_b["first"] < dep_b["last"]
    assert dep_b["actors"] == [{"th": worker, "task": None}]
    (dep_a,) = _deps(trace, ia)
    assert dep_a["held"] == [] and dep_a["n"] == 5000
    hists = _hists(trace)
    assert hists[ia]["hold"]["n"] == 5000 and hists[ib]["hold"]["n"] == 5000
    assert hists[ia]["hold"]["buckets"] == 5000
    assert "wait" not in hists[ia]


def test_the_same_dependency_in_another_thread_is_written_again(rec):
    """Potential deadlocks need distinct actors per edge: up to ACTORS_PER_DEP of
    them are written for each dependency; the others are only counted."""
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    a = recorder.name(threading.Lock(), "a")
    b = recorder.name(threading.Lock(), "b")
    for k in range(6):
        _run(_nested, a, b, 100, name=f"w{k}")
    trace = rec.stop()
    ib = trace.one("lock", "b")["id"]
    (dep_b,) = _deps(trace, ib)
    assert dep_b["n"] == 600
    assert len(dep_b["actors"]) == _summary.ACTORS_PER_DEP == 4
    writers = {e["th"] for e in trace.evs(obj=ib) if e["op"] == "acquire"}
    assert writers == {trace.thread(f"w{k}")["id"] for k in range(4)}
    # lifecycle only of the threads that have an event written
    started = {e["obj"] for e in trace.events if e["op"] == "start"}
    assert started == writers
    assert not any(t["name"] in ("w4", "w5") for t in trace.objects("thread"))


def test_a_wait_that_never_ends_is_written_at_the_next_flush_with_its_holder(rec):
    rec.start(mode="summary", summary_threshold_ms=10)
    lock = recorder.name(threading.Lock(), "stuck")
    lock.acquire()
    t = threading.Thread(target=lambda: lock.acquire(timeout=20) and lock.release(), name="waiter")
    t.start()
    try:
        path = Path(recorder.trace_files()[0])
        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline and '"op":"wait"' not in text:
            time.sleep(0.05)
            text = path.read_text()
        # still blocked, and the trace already says who waits and who holds the lock
        assert t.is_alive()
        assert '"op":"wait"' in text and text.count('"op":"acquire"') >= 1
    finally:
        lock.release()
        t.join(30)
    trace = rec.stop()
    i = trace.one("lock", "stuck")["id"]
    waiter, main = trace.thread("waiter")["id"], trace.thread("MainThread")["id"]
    assert [(e["th"], e["op"]) for e in trace.evs(obj=i)] == [
        (main, "acquire"), (waiter, "wait"), (main, "release"), (waiter, "acquire"), (waiter, "release")]


def test_short_waits_and_holds_are_only_counted_long_ones_written(rec):
    rec.start(mode="summary", summary_threshold_ms=50)
    lock = recorder.name(threading.Lock(), "slow")
    _run(_nested, lock, threading.Lock(), 1)      # the dependency's first occurrence
    for _ in range(20):
        with lock:
            pass
    with lock:
        time.sleep(0.2)                            # a long hold
    trace = rec.stop()
    i = trace.one("lock", "slow")["id"]
    main = trace.thread("MainThread")["id"]
    written = [e for e in trace.evs(obj=i, th=main)]
    # main's first `with lock:` (a new dependency of main) and the long hold
    assert [e["op"] for e in written] == ["acquire", "release", "acquire", "release"]
    assert written[3]["ts"] - written[2]["ts"] >= 200_000_000
    hist = _hists(trace)[i]
    assert hist["hold"]["n"] == 22 and hist["hold"]["max_ns"] >= 200_000_000


def test_try_fail_and_timeout_are_written(rec):
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    lock = recorder.name(threading.Lock(), "busy")
    lock.acquire()
    results = []
    _run(lambda: results.append((lock.acquire(False), lock.acquire(timeout=0.05))), name="other")
    lock.release()
    trace = rec.stop()
    assert results == [(False, False)]
    i = trace.one("lock", "busy")["id"]
    other = trace.thread("other")["id"]
    assert [e["op"] for e in trace.evs(obj=i, th=other)] == ["try-fail", "wait", "timeout"]
    hist = _hists(trace)[i]
    assert hist["try_fails"] == 1 and hist["wait"]["n"] == 1


def _items_under(outer, n: int) -> None:
    """A lock made per item, taken under ``outer``."""
    for _ in range(n):
        item = threading.Lock()
        with outer:
            with item:
                pass


def test_locks_made_per_item_are_written_up_to_a_bound(rec, monkeypatch):
    """A dependency on locks created per request or item is written for
    INSTANCES_PER_CLASS instances of its lock classes; the rest is counted once."""
    monkeypatch.setattr(_summary, "INSTANCES_PER_CLASS", 8)
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    outer = recorder.name(threading.Lock(), "outer")
    _run(_items_under, outer, 50, name="items")
    trace = rec.stop()
    io = trace.one("lock", "outer")["id"]
    items = [r for r in _deps(trace) if r["held"] and r["held"][0]["obj"] == io]
    assert sum(r["n"] for r in items) == 50
    assert len([r for r in items if not r.get("by_site")]) == 8
    assert [r["n"] for r in items if r.get("by_site")] == [42]
    item_acquires = [e for e in trace.events if e["op"] == "acquire" and e["obj"] != io]
    assert len(item_acquires) == 8


def test_mode_option_and_environment(rec, monkeypatch, capsys):
    rec.start(mode="bogus")
    trace = rec.stop()
    assert trace.header["settings"]["mode"] == "full"
    assert "ignoring mode='bogus'" in capsys.readouterr().err
    monkeypatch.setenv("LOCKSCOPE_MODE", "summary")
    rec.start()
    trace = rec.stop()
    assert trace.header["settings"]["mode"] == "summary"
    assert trace.header["settings"]["summary_threshold_ms"] == 10.0


def test_lockscope_run_mode_summary(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text("import threading\nl = threading.Lock()\nfor _ in range(1000):\n    with l:\n        pass\n")
    out = tmp_path / "traces"
    proc = subprocess.run([sys.executable, "-c", "from analyzer.cli import main; main()", "run", "--out",
                           str(out), "--mode", "summary", str(script)], capture_output=True, text=True,
                          timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("LOCKSCOPE_")})
    assert proc.returncode == 0, proc.stderr
    (path,) = out.glob("*.jsonl")
    text = path.read_text()
    assert '"mode":"summary"' in text and text.count('"op":"acquire"') == 1
    assert '"n":1000' in text
    bad = subprocess.run([sys.executable, "-c", "from analyzer.cli import main; main()", "run", "--mode",
                          "fast", str(script)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--mode must be 'full' or 'summary'" in bad.stderr


def test_analyzer_statistics_come_from_the_histograms(rec):
    pytest.importorskip("duckdb")
    from analyzer import analyze

    rec.start(mode="summary", summary_threshold_ms=QUIET)
    a = recorder.name(threading.Lock(), "a")
    b = recorder.name(threading.Lock(), "b")
    _run(_nested, a, b, 3000, name="ab")
    _run(_nested, b, a, 3000, name="ba")
    trace = rec.stop()
    doc = analyze(trace.paths)
    stats = {s["name"]: s for s in doc["locks"]}
    assert stats["a"]["acquisitions"] == 6000 and stats["b"]["acquisitions"] == 6000
    assert doc["trace"]["unknown_records"] == 0
    # the two orders were written once each: the same lock-order cycle as full mode
    assert [f["kind"] for f in doc["findings"] if "cycle" in f["title"].lower()] == ["guarded-cycle"]


def _pool_trace(rec, n: int):
    from concurrent.futures import ThreadPoolExecutor

    rec.start(mode="summary", summary_threshold_ms=QUIET)
    locks = [threading.Lock(), threading.Lock()]

    def job(i: int) -> int:
        with locks[i % 2]:
            return i

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(job, range(n))) == n * (n - 1) // 2
    return rec.stop()


def test_trace_volume_follows_distinct_behaviour_not_traffic(rec):
    """A thread pool's every job makes a future (a condition and its lock), a work
    item and a submission: 4x the jobs must not make (much) more events."""
    small = len(_pool_trace(rec, 300).events)
    large = len(_pool_trace(rec, 1200).events)
    assert large <= small + 40, (small, large)


def test_every_part_repeats_the_dependencies(rec):
    """Each part is self-contained: a new part writes every dependency again (with
    the definitions it names), so the last parts alone still have the counts."""
    rec.start(mode="summary", summary_threshold_ms=QUIET, max_file_mb=0.02)
    outer = recorder.name(threading.Lock(), "outer")
    inner = [threading.Lock() for _ in range(40)]

    def work() -> None:
        for _ in range(3):
            for lock in inner:  # 40 distinct dependencies, written as events once each
                with outer:
                    with lock:
                        pass
        recorder.flush()
        for lock in inner:  # a new part, and 40 dependencies more
            with outer:
                with lock:
                    pass

    _run(work, name="w")
    trace = rec.stop()
    assert len(trace.parts) >= 2
    last = {r["id"]: r for r in trace.parts[-1] if r["k"] == "dep"}
    io = trace.one("lock", "outer")["id"]
    under = [r for r in last.values() if [h["obj"] for h in r["held"]] == [io]]
    # (the second loop takes the inner locks at another site: 40 more dependencies)
    assert sorted(r["n"] for r in under) == [1] * 40 + [3] * 40


# ------------------------------------------------ the hot path's filter (C accelerator)

needs_filter = pytest.mark.skipif(recorder._core.speedups is None, reason="no C accelerator")


def _count_taken(monkeypatch) -> list[int]:
    """Count the events the writer takes from the threads' buffers (what the
    program's threads recorded) in the running summary recording."""
    summary = recorder._sink.summary
    taken = [0]
    process = summary.process

    def counting(batches, *args, **kwargs):
        taken[0] += sum(len(events) for _, events in batches)
        return process(batches, *args, **kwargs)

    monkeypatch.setattr(summary, "process", counting)
    return taken


@needs_filter
def test_repeats_are_counted_on_the_hot_path_not_recorded(rec, monkeypatch):
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    taken = _count_taken(monkeypatch)
    a = recorder.name(threading.Lock(), "a")
    b = recorder.name(threading.RLock(), "b")
    _run(_nested, a, b, 100_000, name="worker")
    trace = rec.stop()
    # the threads recorded a handful of events, not 400,000
    assert taken[0] < 50, taken[0]
    ia, ib = trace.one("lock", "a")["id"], trace.one("lock", "b")["id"]
    worker = trace.thread("worker")["id"]
    assert [(e["obj"], e["op"]) for e in trace.evs(th=worker) if e["obj"] in (ia, ib)] == [
        (ia, "acquire"), (ib, "acquire"), (ib, "release"), (ia, "release")]
    (dep_a,) = _deps(trace, ia)
    (dep_b,) = _deps(trace, ib)
    assert dep_a["n"] == dep_b["n"] == 100_000
    assert [h["obj"] for h in dep_b["held"]] == [ia]
    hists = _hists(trace)
    assert hists[ia]["hold"]["n"] == hists[ib]["hold"]["n"] == 100_000
    assert hists[ia]["hold"]["buckets"] == hists[ib]["hold"]["buckets"] == 100_000


def _under_new_lock(a, b, c, n: int) -> None:
    """n times a -> b (a repeat after the first), then once a -> c: new."""
    _nested(a, b, n)
    with a:
        with c:
            pass


@needs_filter
def test_a_new_dependency_under_counted_holds_is_written_with_them(rec, monkeypatch):
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    taken = _count_taken(monkeypatch)
    a, b, c = (recorder.name(threading.Lock(), x) for x in "abc")
    _run(_under_new_lock, a, b, c, 1000, name="worker")
    trace = rec.stop()
    assert taken[0] < 50, taken[0]
    ia, ic = trace.one("lock", "a")["id"], trace.one("lock", "c")["id"]
    (dep_c,) = _deps(trace, ic)
    assert [h["obj"] for h in dep_c["held"]] == [ia] and dep_c["n"] == 1
    # a's acquire under which c was first taken is written (re-sent, not counted twice)
    worker = trace.thread("worker")["id"]
    ops = [(e["obj"], e["op"]) for e in trace.evs(th=worker)]
    assert ops.count((ia, "acquire")) == 2 and ops.count((ic, "acquire")) == 1
    # (a is taken at two sites: in _nested, 1000 times, and once before c)
    assert sorted(d["n"] for d in _deps(trace, ia)) == [1, 1000]
    assert _hists(trace)[ia]["hold"]["n"] == 1001


def _take(lock, keep: bool) -> None:
    lock.acquire()
    if not keep:
        lock.release()


@needs_filter
def test_a_lock_released_by_another_thread_ends_the_counted_hold(rec):
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    lock = recorder.name(threading.Lock(), "handed")
    for _ in range(_summary.ACTORS_PER_DEP):  # the dependency, let through for 4 threads
        _run(_take, lock, False)
    for _ in range(3):  # then counted on the hot path: acquired, and released by main
        _run(_take, lock, True)
        lock.release()
    trace = rec.stop()
    il = trace.one("lock", "handed")["id"]
    (dep,) = _deps(trace, il)
    assert dep["n"] == _summary.ACTORS_PER_DEP + 3
    assert _hists(trace)[il]["hold"]["n"] == _summary.ACTORS_PER_DEP + 3


def _release_permit(sem) -> None:
    sem.release()


def test_a_permit_released_by_another_thread_ends_the_oldest_hold(rec):
    """A semaphore taken by one thread and released by others (a pool's idle
    semaphore: submit takes it, the workers give it back) ends the oldest hold.
    The summary kept every such hold (64 at most) and scanned them all at each
    release: a pool's summary recording cost 3.6x its CPU."""
    rec.start(mode="summary", summary_threshold_ms=QUIET, flush_interval=3600)
    sem = recorder.name(threading.Semaphore(0), "permits")
    held = []
    for _ in range(200):
        _run(_release_permit, sem)  # (a worker gives a permit back; then one is taken)
        assert sem.acquire(timeout=5)
        # (a drain per round: the summary takes one thread's batch after another's,
        # so a release is met after the acquire that followed it in time)
        recorder.flush()
        held.append(max((len(v) for v in recorder._sink.summary.owner.values()), default=0))
    trace = rec.stop()
    assert max(held) <= 2, held
    ih = trace.one("lock", "permits")["id"]
    assert _hists(trace)[ih]["hold"]["n"] == 199  # (the last permit taken is still held)


def _notify(cond, n: int) -> None:
    for _ in range(n):
        with cond:
            cond.notify()


@needs_filter
def test_repeated_signals_under_a_lock_are_not_recorded(rec, monkeypatch):
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    taken = _count_taken(monkeypatch)
    cond = recorder.name(threading.Condition(threading.Lock()), "cond")
    _run(_notify, cond, 10_000, name="notifier")
    trace = rec.stop()
    # not 30,000 events (acquire, signal, release each time): the first of each
    # kind, and the resource's first few (what orders threads)
    assert taken[0] < 50, taken[0]
    ic = trace.one("resource", "cond")["id"]
    notifier = trace.thread("notifier")["id"]
    signals = [e for e in trace.evs(th=notifier) if e["obj"] == ic and e["op"] == "signal"]
    assert len(signals) == _summary.ORDER_PER_RESOURCE
    assert {e["sig"] for e in signals} == {"notify"}
    (dep,) = [d for d in _deps(trace) if d["actors"] == [{"th": notifier, "task": None}]]
    assert dep["n"] == 10_000


@needs_filter
def test_a_summary_recording_that_ends_abnormally_leaves_no_filter_on(rec, monkeypatch):
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    # its final dep/hist records are never made (as when the disk is full at the end)
    monkeypatch.setattr(recorder._sink.summary, "records", lambda *args, **kwargs: [])
    a, b = threading.Lock(), threading.Lock()
    _run(_nested, a, b, 10)
    rec.stop()
    rec.start()  # full mode: every event
    _run(_nested, a, b, 100, name="worker")
    trace = rec.stop()
    worker = trace.thread("worker")["id"]
    assert len([e for e in trace.evs(th=worker) if e["op"] in ("acquire", "release")]) == 400


def _count_reaching(monkeypatch, op: str) -> list[int]:
    """Count the events of kind ``op`` that reach the Summary (not counted by the
    hot path's filter) in the running summary recording."""
    summary = recorder._sink.summary
    seen = [0]
    process = summary.process

    def counting(batches, *args, **kwargs):
        seen[0] += sum(1 for _, events in batches for ev in events if ev[1] == op)
        return process(batches, *args, **kwargs)

    monkeypatch.setattr(summary, "process", counting)
    return seen


@needs_filter
def test_locks_made_per_item_are_counted_on_the_hot_path_past_the_bound(rec, monkeypatch):
    """Past INSTANCES_PER_CLASS dependencies of the same lock classes, a new one is
    counted by the filter as the dependency of classes, as the Summary counts it:
    a pool's per-Future locks no longer all go through the Summary."""
    monkeypatch.setattr(_summary, "INSTANCES_PER_CLASS", 8)
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    taken = _count_taken(monkeypatch)
    outer = recorder.name(threading.Lock(), "outer")
    _run(_items_under, outer, 2000, name="items")
    trace = rec.stop()
    assert taken[0] < 100, taken[0]  # (not 8,000)
    io = trace.one("lock", "outer")["id"]
    items = [r for r in _deps(trace) if r["held"] and r["held"][0]["obj"] == io]
    assert sum(r["n"] for r in items) == 2000
    assert [r["n"] for r in items if not r.get("by_site")] == [1] * 8
    assert [r["n"] for r in items if r.get("by_site")] == [1992]
    item_acquires = [e for e in trace.events if e["op"] == "acquire" and e["obj"] != io]
    assert len(item_acquires) == 8


@needs_filter
def test_the_filter_tables_are_taken_before_they_fill(rec, monkeypatch):
    """Locks made faster than the records are due (every 10 s) fill the filter's
    lock table: the writer is woken to take it, so the filter keeps counting."""
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    taken = _count_taken(monkeypatch)

    def work() -> None:
        for i in range(30_000):  # (the table keeps 6,144 locks)
            with threading.Lock():
                pass
            if i % 1000 == 999:  # (a service waits for I/O now and then: the writer runs)
                time.sleep(0.005)

    _run(work, name="items")
    trace = rec.stop()
    assert taken[0] < 3000, taken[0]  # (not most of 60,000)
    made_in_work = [r for r in _deps(trace) if trace.site(trace.defs[r["obj"]])[2] == "work"]
    assert sum(r["n"] for r in made_in_work) == 30_000


def _keyed_table(n: int) -> dict:
    table = {}
    for k in range(n):
        table[k] = [threading.Lock(), 0]
    return table


@needs_filter
def test_locks_kept_per_key_do_not_fill_the_filters_table(rec, monkeypatch):
    """A table of entries with a lock each, updated by threads that never pause
    (the writer gets no turn to take the filter's tables): a lock's slot is freed
    once it is released, so the filter keeps counting.  Before, the table filled
    after 6,144 locks and every later event went to the Python Summary."""
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    taken = _count_taken(monkeypatch)
    table = _keyed_table(20_000)

    def update() -> None:
        for entry in table.values():
            with entry[0]:
                entry[1] += 1

    ts = [threading.Thread(target=update, name=f"updater-{k}") for k in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
        assert not t.is_alive()
    trace = rec.stop()
    assert all(entry[1] == 2 for entry in table.values())
    assert taken[0] < 2000, taken[0]  # (not most of 80,000)
    made = [r for r in _deps(trace) if trace.site(trace.defs[r["obj"]])[2] == "_keyed_table"]
    assert sum(r["n"] for r in made) == 40_000
    assert not [e for e in trace.events if e["op"] == "wait"]  # (nothing to wait for)


@needs_filter
def test_a_keyed_lock_past_its_class_bound_is_classed_once(rec):
    """A lock's class (its creation site and type) and whether it has its own
    histograms are worked out once per recording, not at each use: a keyed lock's
    slot is freed at its release, and reading the class again from its definition,
    then scanning the class's 64 first members, cost each acquire and release."""
    speedups = recorder._core.speedups
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    table = _keyed_table(5_000)
    read0, scans0, freed0 = speedups.summary_stats()

    def update() -> None:
        for _ in range(4):
            for entry in table.values():
                with entry[0]:
                    entry[1] += 1

    _run(update, name="updater")
    read, scans, freed = (b - a for a, b in zip((read0, scans0, freed0),
                                                 speedups.summary_stats(), strict=True))
    trace = rec.stop()
    assert freed > 5_000, freed  # (slots are freed: the case this is about)
    assert read <= 6_000, read  # (about once each: 31,752 without the cache)
    assert scans <= 6_000, scans
    made = [r for r in _deps(trace) if trace.site(trace.defs[r["obj"]])[2] == "_keyed_table"]
    assert sum(r["n"] for r in made) == 20_000
    holds = _hists(trace)
    assert sum(h.get("hold", {}).get("n", 0) for h in holds.values()) >= 20_000


@needs_filter
def test_a_new_object_of_a_full_class_is_not_looked_for_among_its_members(rec):
    """Each of the first INSTANCES_PER_CLASS locks (resources) of a class has its
    own histograms (ordering state); any later one is looked up among them first.
    A pool's Future makes a new Condition and RLock per job, each looked for among
    64 members at its first use: ids only grow, so one newer than every member of a
    full class is none of them, with no scan."""
    speedups = recorder._core.speedups
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    conds = []
    _read0, scans0, _freed0 = speedups.summary_stats()
    for _ in range(400):
        cond = threading.Condition()  # (one place: one class)
        with cond:
            cond.notify()
        conds.append(cond)
    scans = speedups.summary_stats()[1] - scans0
    trace = rec.stop()
    assert scans <= 200, scans  # (about 64 each for the locks and the conditions)
    assert len(conds) == 400 and trace.events


@needs_filter
def test_a_wake_of_the_writer_is_answered_by_a_take(rec):
    """The filter wakes the writer once its lock table is a quarter full (2,048
    slots), and not again until the writer takes the tables.  The writer took them
    only if the table was still that full when it looked; slots freed at release
    meanwhile (locks kept per key, each Future's) often brought it back below,
    the wake was never sent again and the table filled up: a pool's Future locks
    then all went to the Summary (30,000-150,000 events for 30,000 jobs instead of
    about 2,000)."""
    speedups = recorder._core.speedups
    rec.start(mode="summary", summary_threshold_ms=QUIET, flush_interval=3600)
    locks = [threading.Lock() for _ in range(2_100)]
    writer_io = recorder._sink._io
    assert writer_io.acquire(timeout=10)  # (the writer cannot take meanwhile)
    try:
        for lock in locks:  # the 2,048th wakes the writer; releases free slots after
            with lock:
                pass
        assert speedups.summary_due()
    finally:
        writer_io.release()
    rec.stop()


def _wait_in_turns(cond, stop: threading.Event) -> None:
    while not stop.is_set():
        with cond:
            cond.wait(0.002)


@needs_filter
def test_signals_while_short_waits_overlap_are_counted(rec, monkeypatch):
    """Waiters that wait in turns (a pool's idle workers) keep a wait open nearly
    all the time, each one short: the signals are counted by the filter, which
    lets them through only while a wait that is old by the threshold is open."""
    rec.start(mode="summary", summary_threshold_ms=50)
    signals = _count_reaching(monkeypatch, "signal")
    cond = recorder.name(threading.Condition(threading.Lock()), "cond")
    stop = threading.Event()
    waiters = [threading.Thread(target=_wait_in_turns, args=(cond, stop)) for _ in range(3)]
    for t in waiters:
        t.start()
    deadline = time.monotonic() + 0.6
    n = 0
    while time.monotonic() < deadline:
        with cond:
            cond.notify()
        n += 1
        time.sleep(0.0002)
    stop.set()
    for t in waiters:
        t.join(10)
    rec.stop()
    assert n > 500
    assert signals[0] < n / 10, (signals[0], n)


def _quiet_threads(a, b, n: int) -> None:
    """n threads, each doing the dependency a -> b (counted once it was let through
    for ACTORS_PER_DEP threads), started and joined one after the other."""
    for k in range(n):
        _run(_nested, a, b, 10, name=f"quiet{k}")


@needs_filter
def test_the_lifecycle_of_quiet_threads_stays_on_the_hot_path(rec, monkeypatch):
    """A thread per request that does nothing notable: its start, end and join are
    held back by the filter, not buffered and judged by the Summary (they cost a
    threaded server more than the rest of the recording)."""
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    a = recorder.name(threading.Lock(), "a")
    b = recorder.name(threading.Lock(), "b")
    _quiet_threads(a, b, _summary.ACTORS_PER_DEP)  # (their first a -> b is written)
    recorder.flush()
    reached = {op: _count_reaching(monkeypatch, op) for op in ("start", "end", "join")}
    _quiet_threads(a, b, 50)
    trace = rec.stop()
    assert {op: n[0] for op, n in reached.items()} == {"start": 0, "end": 0, "join": 0}
    (dep_b,) = _deps(trace, trace.one("lock", "b")["id"])
    assert dep_b["n"] == 540
    # the written threads' lifecycles are whole; the quiet ones are not in the trace
    shown = {trace.thread(f"quiet{k}")["id"] for k in range(_summary.ACTORS_PER_DEP)}
    for op in ("start", "join"):
        assert {e["obj"] for e in trace.events if e["op"] == op} == shown, op
    assert {e["th"] for e in trace.events if e["op"] == "end"} == shown
    assert len(trace.objects("thread")) == 1 + len(shown)


@pytest.mark.parametrize("when", ["alive", "ended"])
def test_a_quiet_thread_named_later_is_written_with_its_lifecycle(rec, monkeypatch, when):
    """A thread with nothing of its own written is shown by a written event that
    names it: a join begun holding a lock (``alive``: it is still running), or a
    join that lasted longer than the threshold, written at its end (``ended``: no
    flush meanwhile, so its own end and the join were held back). Its start, end
    and join are written then."""
    rec.start(mode="summary", summary_threshold_ms=50, flush_interval=3600)
    ends, joins = _count_reaching(monkeypatch, "end"), _count_reaching(monkeypatch, "join")
    outer = recorder.name(threading.Lock(), "outer")
    t = threading.Thread(target=time.sleep, args=(0.3,), name="quiet")
    t.start()
    if when == "alive":
        with outer:
            t.join(20)
    else:
        t.join(20)
    assert not t.is_alive()
    trace = rec.stop()
    quiet, main = trace.thread("quiet")["id"], trace.thread("MainThread")["id"]
    mine = [(e["th"], e["op"]) for e in trace.events
            if e["obj"] == quiet and e["op"] in ("start", "end", "join", "wait-begin", "wait-end")]
    assert sorted(mine) == sorted([(main, "start"), (main, "wait-begin"), (quiet, "end"),
                                   (main, "wait-end"), (main, "join")])
    if when == "ended" and recorder._core.speedups is not None:
        assert ends[0] == joins[0] == 0  # (held back by the filter until the wait was written)


@needs_filter
def test_a_quiet_threads_end_reads_nothing_of_its_thread(rec):
    """A thread whose end the filter holds back, unshown, needs no thread record:
    its end reads none of its Thread's name, daemon flag and native id (three
    generic attribute lookups a thread per request).  Shown after its end by a name
    given to it, it is written whole: the naming reads them then (as a join does:
    test_a_quiet_thread_named_later_is_written_with_its_lifecycle)."""
    reads: list = []
    cls = rec.thread_class_counting(reads, "_name", "_daemonic", "_native_id")

    def run_one(name: str) -> threading.Thread:
        t = cls(target=int, name=name)
        t.start()
        for _ in range(1000):  # (its run and end: not a join, which reads them)
            if not t.is_alive():
                break
            time.sleep(0.01)
        assert not t.is_alive()
        return t

    run_one("unrecorded")
    python_reads = sorted(name for name, _who in reads)  # (threading's own: by version)
    del reads[:]
    rec.start(mode="summary", summary_threshold_ms=QUIET, flush_interval=3600)
    t = run_one("quiet-end")
    assert sorted(name for name, _who in reads) == python_reads, (reads, python_reads)
    recorder.name(t, "named-after-its-end")  # (written: it shows the thread)
    trace = rec.stop()
    d = trace.thread("named-after-its-end")
    assert (d["daemon"], d["native_id"], d["ident"]) == (False, t.native_id, t.ident), d


@needs_filter
def test_a_quiet_thread_whose_child_is_shown_after_its_end_is_written_whole(rec):
    """A thread that ends unshown but started a thread shown later is shown with
    it (its child's start is its event): its end read what its record needs."""
    go, lock = threading.Event(), recorder.name(threading.Lock(), "long-held")

    def child() -> None:
        go.wait(20)
        with lock:  # a long hold: written, and the child with it
            time.sleep(0.08)

    kids: list = []
    rec.start(mode="summary", summary_threshold_ms=50, flush_interval=3600)
    parent = threading.Thread(target=lambda: kids.append(_start(child)), name="quiet-parent",
                              daemon=True)
    parent.start()
    parent.join(20)
    go.set()
    kids[0].join(20)
    trace = rec.stop()
    d = trace.thread("quiet-parent")
    assert (d["daemon"], d["native_id"], d["ident"]) == (True, parent.native_id,
                                                        parent.ident), d
    [start] = trace.evs(obj=trace.thread("shown-child")["id"], op="start")
    assert start["th"] == d["id"]


def _start(target) -> threading.Thread:
    t = threading.Thread(target=target, name="shown-child")
    t.start()
    return t


@needs_filter
def test_more_quiet_threads_than_are_remembered(rec, monkeypatch):
    """Past the bound of threads that ended unshown (MAX_GONE), the oldest are
    forgotten; the recording goes on, and a thread shown later is whole."""
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    reached = _count_reaching(monkeypatch, "start")
    for _ in range(_summary.MAX_GONE + 300):
        t = threading.Thread(target=int)
        t.start()
        t.join(20)
    lock = recorder.name(threading.Lock(), "late")
    _run(_nested, lock, threading.Lock(), 1, name="shown")
    trace = rec.stop()
    assert reached[0] == 0
    shown = trace.thread("shown")["id"]
    assert [e["obj"] for e in trace.events if e["op"] == "start"] == [shown]
    assert [e["th"] for e in trace.events if e["op"] == "end"] == [shown]


def _poll(lock, outer, n: int) -> None:
    for _ in range(n):
        with outer:
            assert not lock.acquire(False)


@needs_filter
def test_repeated_refusals_are_counted_on_the_hot_path(rec, monkeypatch):
    """A non-blocking acquire refused again and again (library code polls so): the
    first of each kind (locks held, lock class, site) and actor is written with its
    held set; the others are counted by the filter into the lock's histogram."""
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    fails = _count_reaching(monkeypatch, "try-fail")
    busy = recorder.name(threading.Lock(), "busy")
    outer = recorder.name(threading.Lock(), "outer")
    busy.acquire()
    _run(_poll, busy, outer, 500, name="poller")
    busy.release()
    trace = rec.stop()
    assert fails[0] == 1
    ib, io = trace.one("lock", "busy")["id"], trace.one("lock", "outer")["id"]
    poller = trace.thread("poller")["id"]
    written = [(e["obj"], e["op"]) for e in trace.evs(th=poller)]
    assert written[:2] == [(io, "acquire"), (ib, "try-fail")]
    assert sum(1 for _, op in written if op == "try-fail") == 1
    assert _hists(trace)[ib]["try_fails"] == 500


@needs_filter
def test_a_pool_job_sends_the_summary_no_signal_nor_refusal_it_writes_not(rec, monkeypatch):
    """ThreadPoolExecutor.submit puts the job on the work queue and polls the idle
    semaphore under two locks. With the submitting thread keeping the GIL, the
    workers' waits on the queue grow old: the Summary then writes each actor's
    first signal, not every one; the refusals are counted; neither re-sends the
    locks held."""
    from concurrent.futures import ThreadPoolExecutor

    rec.start(mode="summary", summary_threshold_ms=1)
    reaching = {op: _count_reaching(monkeypatch, op) for op in ("signal", "try-fail", "acquire")}
    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(abs, range(2000))) == 2000 * 1999 // 2
    rec.stop()
    n = {op: c[0] for op, c in reaching.items()}
    # per job at most: the submission (a signal), the idle semaphore's acquire
    assert n["signal"] <= 2000 + 200 and n["try-fail"] <= 50 and n["acquire"] <= 2000 + 300, n


def _notable(x, y) -> None:
    with x:
        with y:
            pass


@needs_filter
def test_the_lifecycle_of_quiet_pool_jobs_stays_on_the_hot_path(rec, monkeypatch):
    """Pool jobs that do nothing notable (past the first futures' locks, counted by
    class): their submission, segment-begin and segment-end are held back by the
    filter. A job whose worker does something written is written whole: its
    submission, then its begin before the worker's events, then its end."""
    from concurrent.futures import ThreadPoolExecutor

    rec.start(mode="summary", summary_threshold_ms=QUIET)
    reached = {op: _count_reaching(monkeypatch, op) for op in ("segment-begin", "segment-end")}
    signals = _count_reaching(monkeypatch, "signal")
    x, y = recorder.name(threading.Lock(), "x"), recorder.name(threading.Lock(), "y")
    with ThreadPoolExecutor(2) as pool:
        assert sum(pool.map(abs, range(600))) == 600 * 599 // 2
        pool.submit(_notable, x, y).result(30)
    trace = rec.stop()
    n = {op: c[0] for op, c in reached.items()}
    assert n["segment-begin"] == n["segment-end"] <= 2 * _summary.INSTANCES_PER_CLASS, n
    assert signals[0] < 100
    (job,) = [d for d in trace.objects("segment") if d["name"].endswith("_notable")]
    ix = trace.one("lock", "x")["id"]
    (acq,) = trace.evs(obj=ix, op="acquire")
    mine = sorted(trace.evs(obj=job["id"]) + [acq], key=lambda e: e["ts"])
    main = trace.thread("MainThread")["id"]
    assert [(e["op"], e["th"]) for e in mine] == [
        ("signal", main), ("segment-begin", acq["th"]), ("acquire", acq["th"]),
        ("segment-end", acq["th"])]


@needs_filter
def test_hold_times_of_locks_made_per_item_are_counted_by_class_on_the_hot_path(rec, monkeypatch):
    """The filter's hold histograms: the first INSTANCES_PER_CLASS locks of a class
    have their own, the others count into their class's, there, not one row per
    lock for the Summary to fold."""
    monkeypatch.setattr(_summary, "INSTANCES_PER_CLASS", 8)
    rows = [0]
    take = _summary._fast.summary_take

    def counting(final):
        res = take(final)
        rows[0] += len(res[1])
        return res

    monkeypatch.setattr(_summary._fast, "summary_take", counting)
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    outer = recorder.name(threading.Lock(), "outer")
    _run(_items_under, outer, 2000, name="items")
    trace = rec.stop()
    assert rows[0] < 40, rows[0]  # (not 2,000)
    io = trace.one("lock", "outer")["id"]
    hists = [r for r in trace.records if r["k"] == "hist"]
    assert sum(r["hold"]["n"] for r in hists if r["obj"] == io) == 2000
    items = [r for r in hists if r["obj"] != io]
    assert sorted(r["hold"]["n"] for r in items if not r.get("by_site")) == [1] * 8
    assert sum(r["hold"]["n"] for r in items if r.get("by_site")) == 1992


def _hold_permit(sem, seconds: float, n: int = 1) -> None:
    for _ in range(n):
        assert sem.acquire(timeout=5)
        time.sleep(seconds)
        sem.release()


@needs_filter
def test_permits_taken_without_waiting_are_counted_on_the_hot_path(rec, monkeypatch):
    """A semaphore of several permits taken and given back without waiting: the
    filter counts the holds (a pool's idle semaphore, every job); a release of
    a permit nobody is known to hold (a semaphore used as a counter) is dropped."""
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    reaching = {op: _count_reaching(monkeypatch, op) for op in ("acquire", "release")}
    sem = recorder.name(threading.Semaphore(3), "permits")
    for _ in range(5):
        sem.release()  # (given before anything was taken)
    _run(_hold_permit, sem, 0, 300, name="user")
    trace = rec.stop()
    assert {op: n[0] for op, n in reaching.items()} == {"acquire": 0, "release": 0}
    ip = trace.one("lock", "permits")["id"]
    assert _hists(trace)[ip]["hold"]["n"] == 300
    assert trace.evs(obj=ip) == []


@pytest.mark.parametrize("what", ["wait", "long hold"])
def test_counted_permits_are_written_when_a_wait_or_a_long_hold_needs_them(rec, what):
    """A thread waits for a semaphore whose permits others hold: the wait is
    written with the holders' acquires. A permit held past the threshold: its
    acquire and release are written."""
    rec.start(mode="summary", summary_threshold_ms=50, flush_interval=3600)
    sem = recorder.name(threading.BoundedSemaphore(2), "permits")
    _run(_hold_permit, sem, 0, 50, name="quick")  # (counted)
    if what == "wait":
        holders = [threading.Thread(target=_hold_permit, args=(sem, 0.4), name=f"h{k}")
                   for k in range(2)]
        for t in holders:
            t.start()
        time.sleep(0.1)
        assert sem.acquire(timeout=5)
        sem.release()
        for t in holders:
            t.join(10)
    else:
        _run(_hold_permit, sem, 0.1, name="h0")
    trace = rec.stop()
    ip = trace.one("lock", "permits")["id"]
    names = {t["id"]: t["name"] for t in trace.objects("thread")}
    got = sorted((names[e["th"]], e["op"]) for e in trace.evs(obj=ip))
    if what == "wait":
        assert ("MainThread", "wait") in got and ("MainThread", "acquire") in got
        assert [x for x in got if x[0] != "MainThread" and x[1] == "acquire"] == [
            ("h0", "acquire"), ("h1", "acquire")]
    else:
        assert got == [("h0", "acquire"), ("h0", "release")]
    assert _hists(trace)[ip]["hold"]["n"] == 50 + (3 if what == "wait" else 1)


def _take_and_give(lock) -> None:
    with lock:
        pass


@needs_filter
def test_short_lock_waits_are_counted_on_the_hot_path(rec, monkeypatch):
    """A contended lock (a logging handler's, under load): each wait that ends
    within the threshold is counted into the lock's wait histogram by the filter,
    not sent to the Summary with the acquire that ends it."""
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    waits = _count_reaching(monkeypatch, "wait")
    lock = recorder.name(threading.Lock(), "contended")
    for _ in range(20):
        lock.acquire()
        t = threading.Thread(target=_take_and_give, args=(lock,))
        t.start()
        time.sleep(0.005)  # (it waits)
        lock.release()
        t.join(10)
    trace = rec.stop()
    assert waits[0] == 0
    il = trace.one("lock", "contended")["id"]
    assert _hists(trace)[il]["wait"]["n"] == 20
    assert [e["op"] for e in trace.evs(obj=il)].count("wait") == 0


def _pair(first, second, bar=None, n: int = 1) -> None:
    """``first`` then ``second``, n times; with ``bar``: once, stuck there, each
    thread holding its first lock and waiting for the other's (given up after 1.5 s)."""
    if bar is not None:
        bar.wait(10)
    for _ in range(n):
        with first:
            if bar is not None:
                time.sleep(0.1)  # (both hold their first lock)
            if second.acquire(timeout=1.5):
                second.release()


def test_a_deadlock_at_counted_sites_is_written_with_its_waits_and_holders(rec):
    """The deadlock happens at sites whose dependencies the filter counts (each
    thread went the same way 100 times before): each held-back wait goes to the
    Summary once it lasts the threshold, after the thread's earlier events, with
    its held lock, so the trace shows both threads holding one lock and waiting
    for the other (a drain while they are stuck takes the loops' events with them)."""
    rec.start(mode="summary", summary_threshold_ms=50, flush_interval=3600)
    a, b = recorder.name(threading.Lock(), "a"), recorder.name(threading.Lock(), "b")
    bar = threading.Barrier(2)
    turn = [threading.Event(), threading.Event()]
    turn[0].set()

    def run(first, second, mine: int) -> None:
        turn[mine].wait(10)  # (the loops one after the other: no contention there)
        _pair(first, second, None, 100)
        turn[1 - mine].set()
        _pair(first, second, bar)

    ts = [threading.Thread(target=run, args=(x, y, k), name=n)
          for k, (x, y, n) in enumerate(((a, b, "ab"), (b, a, "ba")))]
    for t in ts:
        t.start()
    turn[1].wait(10)
    time.sleep(0.5)  # (both stuck for a while)
    recorder.flush()
    for t in ts:
        t.join(20)
    trace = rec.stop()
    ia, ib = trace.one("lock", "a")["id"], trace.one("lock", "b")["id"]
    for name, held, wanted in (("ab", ia, ib), ("ba", ib, ia)):
        th = trace.thread(name)["id"]
        (wait,) = trace.evs(obj=wanted, th=th, op="wait")
        took = [e["ts"] for e in trace.evs(obj=held, th=th, op="acquire") if e["ts"] < wait["ts"]]
        gave = [e["ts"] for e in trace.evs(obj=held, th=th, op="release") if e["ts"] < wait["ts"]]
        assert len(took) == len(gave) + 1, (name, took, gave)  # (holding it while waiting)


_PERMITS_ACROSS_TAKES = """
import tempfile, threading, recorder
recorder.start(tempfile.mkdtemp(), mode="summary", summary_threshold_ms=60000,
               flush_interval=3600)
sems = [threading.Semaphore(2) for _ in range(400)]
for s in sems:
    s.acquire()  # (a permit kept, counted by the filter)
outer = threading.Lock()
for _ in range(4):
    for _ in range(3000):  # (locks made per item: the filter's lock table is rebuilt)
        item = threading.Lock()
        with outer:
            with item:
                pass
    recorder._sink.summary._take_filter(False)
for s in sems[::2]:
    s.release()
recorder.stop()
print("ok")
"""


@needs_filter
def test_permits_kept_across_the_filters_takes_are_freed_once(tmp_path):
    """Semaphores with permits counted by the filter stay in its lock table when a
    take rebuilds it; the slots they left must not keep their permits too (the
    first version freed them twice at the end: heap corruption)."""
    script = tmp_path / "permits.py"
    script.write_text(_PERMITS_ACROSS_TAKES)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-500:]


# ------------------------------------- what orders threads: each resource's first


def _serve(first, second, ready, delay: float) -> None:
    """A server starting up: its locks, then it says it is ready."""
    time.sleep(delay)
    with first:
        with second:
            pass
    ready.set()


@pytest.mark.parametrize("filtered", [True, False], ids=["filter", "writer-only"])
def test_what_orders_threads_is_written_for_each_new_resource(rec, monkeypatch, filtered):
    """Six servers each set their own ready Event once, from six threads (more than
    ACTORS_PER_DEP: the signal's kind alone stops being written after four), and the
    main thread waits for each: every Event's set is written, and so is the wait
    it ended, or the pass of a wait that found it set (rounds 0, 2, 4), so that
    the analyzer orders each server's part before the main thread's."""
    if not filtered:
        monkeypatch.setattr(_summary.Summary, "start_filter", lambda self: None)
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    a, b = recorder.name(threading.Lock(), "a"), recorder.name(threading.Lock(), "b")
    for i in range(6):
        ready = recorder.name(threading.Event(), f"ready{i}")
        t = threading.Thread(target=_serve, args=(a, b, ready, 0.0 if i % 2 == 0 else 0.2),
                             name=f"server{i}")
        t.start()
        if i % 2 == 0:
            while not ready.is_set():  # (not recorded: the wait below passes)
                time.sleep(0.005)
        assert ready.wait(10)
        with b:
            with a:
                pass
        t.join(10)
    trace = rec.stop()
    main = trace.thread("MainThread")["id"]
    for i in range(6):
        rid = trace.one("resource", f"ready{i}")["id"]
        (signal,) = trace.evs(obj=rid, th=trace.thread(f"server{i}")["id"])
        assert signal["op"] == "signal"
        mine = trace.evs(obj=rid, th=main)
        if i % 2 == 0:
            assert [e["op"] for e in mine] == ["pass"], i
        else:  # (a loaded machine may run the server first: then it passes)
            assert [e["op"] for e in mine] in (["wait-begin", "wait-end"], ["pass"]), i
        assert signal["ts"] < mine[-1]["ts"]


def _set_each(events: list, again, times: int) -> None:
    for ev in events:
        ev.set()
    for _ in range(times):
        again.set()


@pytest.mark.parametrize("filtered", [True, False], ids=["filter", "writer-only"])
def test_what_orders_threads_is_written_for_64_resources_of_a_class(rec, monkeypatch, filtered):
    """Resources made per item are ordered by their first INSTANCES_PER_CLASS of
    each class (creation site), and a resource signalled again and again has only
    its first ORDER_PER_RESOURCE signals written: the trace follows distinct
    behaviour, not traffic."""
    if not filtered:
        monkeypatch.setattr(_summary.Summary, "start_filter", lambda self: None)
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    items = [threading.Event() for _ in range(100)]
    again = recorder.name(threading.Event(), "again")
    _run(_set_each, items, again, 500, name="setter")
    for ev in items:
        assert ev.wait(10)
    for _ in range(500):
        assert again.wait(10)
    trace = rec.stop()
    setter, main = trace.thread("setter")["id"], trace.thread("MainThread")["id"]
    rid = trace.one("resource", "again")["id"]
    assert len(trace.evs(obj=rid, th=setter, op="signal")) == _summary.ORDER_PER_RESOURCE
    assert len(trace.evs(obj=rid, th=main, op="pass")) == 0  # (after 500 sets, not all written)
    item_site = trace.sites[trace.defs[trace.evs(th=setter, op="signal")[0]["obj"]]["site"]]
    per_item = {d["id"] for d in trace.objects("resource")
                if trace.sites[d["site"]] == item_site}
    signals = [e for e in trace.evs(th=setter, op="signal") if e["obj"] in per_item]
    passes = [e for e in trace.evs(th=main, op="pass") if e["obj"] in per_item]
    assert len(signals) == _summary.INSTANCES_PER_CLASS
    assert {e["obj"] for e in passes} == {e["obj"] for e in signals}


# ---- asyncio locks: counted on the hot path as threading locks are

def _tasks_nesting(n_tasks: int, n: int) -> None:
    """``n_tasks`` tasks, each taking asyncio locks outer -> inner ``n`` times
    (neither waits: no await in between suspends)."""
    import asyncio

    async def main() -> None:
        outer = recorder.name(asyncio.Lock(), "outer")
        inner = recorder.name(asyncio.Lock(), "inner")

        async def one() -> None:
            for _ in range(n):
                async with outer:
                    async with inner:
                        pass

        await asyncio.gather(*(one() for _ in range(n_tasks)))

    asyncio.run(main())


def test_asyncio_lock_repeats_are_counted_on_the_hot_path(rec, monkeypatch):
    """An asyncio.Lock's acquires and releases are counted by the hot path's filter
    as a threading.Lock's are: a server taking one per request sent every one to
    the Summary, and its summary recording cost three times what full mode did."""
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    taken = _count_taken(monkeypatch)
    _tasks_nesting(6, 500)
    trace = rec.stop()
    io, ii = trace.one("lock", "outer")["id"], trace.one("lock", "inner")["id"]
    (dep_o,) = _deps(trace, io)
    (dep_i,) = _deps(trace, ii)
    assert dep_o["n"] == dep_i["n"] == 3000
    assert dep_o["held"] == [] and [h["obj"] for h in dep_i["held"]] == [io]
    assert len(dep_o["actors"]) == len(dep_i["actors"]) == _summary.ACTORS_PER_DEP
    hists = _hists(trace)
    assert hists[io]["hold"]["n"] == hists[ii]["hold"]["n"] == 3000
    # each task's first occurrence of each dependency, for the first 4 tasks
    acquires = [e for e in trace.evs(obj=ii) if e["op"] == "acquire"]
    assert len(acquires) == _summary.ACTORS_PER_DEP
    if recorder._core.speedups is not None:  # (in pure Python the writer filters)
        assert taken[0] < 200, taken[0]


def _contended_aio(rounds: int, after_first=None) -> None:
    """A task holds an asyncio.Lock across an await while another waits for it,
    ``rounds`` times: short waits.  ``after_first()`` is called after the first."""
    import asyncio

    async def main() -> None:
        lock = recorder.name(asyncio.Lock(), "contended")

        async def hold() -> None:
            async with lock:
                await asyncio.sleep(0.001)

        async def take() -> None:
            async with lock:
                pass

        for k in range(rounds):
            await asyncio.gather(hold(), take())
            if k == 0 and after_first is not None:
                after_first()

    asyncio.run(main())


@needs_filter
def test_short_asyncio_lock_waits_are_counted_on_the_hot_path(rec, monkeypatch):
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    waits = []

    def count_from_now() -> None:
        # (the first wait binds the lock to its loop, which may take a traced
        # threading lock: something else of the waiting task, so that wait goes
        # to the Summary)
        recorder.flush()
        waits.append(_count_reaching(monkeypatch, "wait"))

    _contended_aio(21, count_from_now)
    trace = rec.stop()
    assert waits[0][0] == 0
    il = trace.one("lock", "contended")["id"]
    assert _hists(trace)[il]["wait"]["n"] == 21
    assert _hists(trace)[il]["hold"]["n"] == 42
    assert [e["op"] for e in trace.evs(obj=il)].count("wait") == 0


def _reenter(outer, inner_lock, cond, n: int, after) -> None:
    """n times: an RLock taken, a lock under it, the RLock again (an inner level,
    also with arguments and as a try), then (with a Condition) a wait on it with the
    RLock held twice (all its levels given up and taken back at once); then
    ``after`` alone."""
    for _ in range(n):
        with outer:
            with inner_lock:
                with outer:
                    pass
                assert outer.acquire(timeout=5)
                outer.release()
                assert outer.acquire(False)
                outer.release()
        if cond is not None:
            with outer:
                with outer:
                    cond.wait(0.001)
    with after:
        pass


def test_an_rlocks_inner_levels_are_neither_holds_nor_dependencies(rec):
    # As the analyzer pairs a full trace: a hold runs from the outermost acquire to
    # its release, and the owner taking its RLock again orders nothing.  Counted,
    # the inner levels were holds of their own (twice the RLock's holds) and
    # dependencies of the RLock on itself and on the locks taken in between.
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    outer = recorder.name(threading.RLock(), "outer")
    inner_lock = recorder.name(threading.Lock(), "inner")
    after = recorder.name(threading.Lock(), "after")
    cond = threading.Condition(outer)
    _run(_reenter, outer, inner_lock, cond, 50, after, name="worker")
    trace = rec.stop()
    io, ii, ia = (trace.one("lock", n)["id"] for n in ("outer", "inner", "after"))
    # 50 holds around the inner lock, 50 before each wait and 50 after it
    assert _hists(trace)[io]["hold"]["n"] == 150
    for dep in _deps(trace, io):
        assert dep["held"] == [], dep
    (dep_inner,) = _deps(trace, ii)
    assert [h["obj"] for h in dep_inner["held"]] == [io]
    # every level given back: nothing is held any more when `after` is taken
    (dep_after,) = _deps(trace, ia)
    assert dep_after["held"] == []


@needs_filter
def test_an_rlocks_inner_levels_never_reach_the_writer(rec, monkeypatch):
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    taken = _count_taken(monkeypatch)
    outer = recorder.name(threading.RLock(), "outer")
    inner_lock = recorder.name(threading.Lock(), "inner")
    after = recorder.name(threading.Lock(), "after")
    _run(_reenter, outer, inner_lock, None, 2000, after, name="worker")
    trace = rec.stop()
    # the first of each dependency, not 6 events a round
    assert taken[0] < 50, taken[0]
    io = trace.one("lock", "outer")["id"]
    assert _hists(trace)[io]["hold"]["n"] == 2000


@needs_filter
def test_a_quiet_thread_gets_no_event_buffer(rec):
    """A thread per request whose events are all counted: its state has no buffer
    (a deque made and freed for nothing each); a thread with an event written has
    one, and its events are in the trace."""
    rec.start(mode="summary", summary_threshold_ms=QUIET)
    a = recorder.name(threading.Lock(), "a")
    b = recorder.name(threading.Lock(), "b")
    _quiet_threads(a, b, _summary.ACTORS_PER_DEP)  # (their first a -> b is written)
    quiet = threading.Thread(target=_nested, args=(a, b, 10), name="quiet")
    quiet.start()
    quiet.join(30)
    c = recorder.name(threading.Lock(), "c")
    shown = threading.Thread(target=_nested, args=(a, c, 10), name="shown")
    shown.start()
    shown.join(30)
    assert quiet._ls_state._buf is None
    assert shown._ls_state._buf is not None
    trace = rec.stop()
    ic = trace.one("lock", "c")["id"]
    assert [e["op"] for e in trace.evs(th=trace.thread("shown")["id"]) if e["obj"] == ic] == [
        "acquire", "release"]
    assert trace.objects("thread", "quiet") == []


@needs_filter
def test_a_long_wait_of_a_thread_without_a_buffer_is_written(rec):
    """The writer puts a held-back lock wait that grew old into its thread's buffer:
    made then, when the thread had buffered nothing before."""
    rec.start(mode="summary", summary_threshold_ms=20, flush_interval=3600)
    a = recorder.name(threading.Lock(), "a")
    b = recorder.name(threading.Lock(), "b")
    _quiet_threads(a, b, _summary.ACTORS_PER_DEP)
    stuck = recorder.name(threading.Lock(), "stuck")
    started: list[bool] = []  # (not an Event: its first signal would be written)

    def wait_for_stuck() -> None:
        _nested(a, b, 3)
        started.append(True)
        with stuck:
            pass

    t = threading.Thread(target=wait_for_stuck, name="waiter")
    with stuck:
        t.start()
        deadline = time.monotonic() + 10
        while not started and time.monotonic() < deadline:
            time.sleep(0.001)
        assert t._ls_state._buf is None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and t._ls_state._buf is None:
            time.sleep(0.05)
            recorder.flush()  # (takes the wait once it is older than the threshold)
    t.join(30)
    trace = rec.stop()
    i = trace.one("lock", "stuck")["id"]
    waiter = trace.thread("waiter")["id"]
    assert [e["op"] for e in trace.evs(th=waiter) if e["obj"] == i] == ["wait", "acquire", "release"]
