"""Whole-program behaviour: scheduling order unchanged by tracing, Thread.join links,
start-up activation through the environment, loops started before recording."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import recorder
from recorder import _aio_await


def _interleaving() -> list:
    """A program whose output is the exact order in which its tasks ran."""
    log = []

    async def worker(n, lock, sem, ev, cond, q):
        log.append(("start", n))
        async with lock:
            log.append(("lock", n))
            await asyncio.sleep(0)
        async with sem:
            log.append(("sem", n))
            await asyncio.sleep(0)
        if n == 0:
            await asyncio.sleep(0)
            ev.set()
        await ev.wait()
        log.append(("ev", n))
        async with cond:
            cond.notify_all()
        await q.put(n)
        log.append(("got", await q.get()))
        try:
            await asyncio.wait_for(lock.acquire(), 0 if n == 1 else 1)
            log.append(("late-lock", n))
            lock.release()
        except asyncio.TimeoutError:
            log.append(("timeout", n))

    async def main():
        lock, sem, ev = asyncio.Lock(), asyncio.Semaphore(2), asyncio.Event()
        cond, q = asyncio.Condition(), asyncio.Queue(2)
        if hasattr(asyncio, "TaskGroup"):
            async with asyncio.TaskGroup() as tg:
                for n in range(4):
                    tg.create_task(worker(n, lock, sem, ev, cond, q))
        else:  # Python 3.10
            await asyncio.gather(*[asyncio.create_task(worker(n, lock, sem, ev, cond, q))
                                   for n in range(4)])
        await asyncio.gather(*(asyncio.sleep(0) for _ in range(3)))
        log.append("done")

    asyncio.run(main())
    return log


def test_tracing_does_not_change_scheduling_order(tmp_path):
    untraced = _interleaving()
    recorder.start(tmp_path)
    try:
        traced = _interleaving()
    finally:
        files = recorder.stop()
    assert traced == untraced
    assert any('"asyncio.Semaphore"' in Path(f).read_text() for f in files)


def test_thread_join_links_to_the_threads_end(trace):
    release = threading.Event()

    def work():
        release.wait(10)

    t = threading.Thread(target=work, name="joined")
    t.start()

    async def main():
        # The join happens from a task on the loop thread.
        threading.Timer(0.01, release.set).start()
        t.join(10)

    asyncio.run(main())
    threads = {r["name"]: r["id"] for r in trace.defs("thread").values()}
    tid = threads["joined"]
    evs = trace.events(obj=tid)
    ops = [(e["op"], e["th"], e.get("outcome")) for e in evs]
    main_th = threads["MainThread"]
    assert ops[0] == ("start", main_th, None)
    # end is by the thread itself; the joiner's wait ends after it, then join.
    end = [e for e in evs if e["op"] == "end"][0]
    assert end["th"] == tid
    joiner = [e for e in evs if e["th"] == main_th and e["op"] != "start"]
    assert [(e["op"], e.get("outcome")) for e in joiner] == [
        ("wait-begin", None), ("wait-end", "ok"), ("join", None)]
    assert joiner[0]["task"] == joiner[2]["task"] is not None  # done by the task
    assert joiner[1]["ts"] >= end["ts"]


def _run_with_env(tmp_path: Path, code: str) -> list[dict]:
    out = tmp_path / "env-traces"
    env = dict(os.environ, LOCKSCOPE_OUT=str(out))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "lockscope:" not in proc.stderr, proc.stderr
    return [json.loads(line) for f in sorted(out.glob("*.jsonl"))
            for line in f.read_text().splitlines()]


def test_env_activation_does_not_import_asyncio_but_traces_it_once_imported(tmp_path):
    records = _run_with_env(tmp_path, """
        import sys
        assert "asyncio" not in sys.modules, "recording imported asyncio"
        import asyncio
        lock = asyncio.Lock()  # made at import time of the program
        async def main():
            async with lock:
                pass
        asyncio.run(main())
    """)
    locks = [r for r in records if r["k"] == "lock" and r["type"] == "asyncio.Lock"]
    assert len(locks) == 1
    acq = [r for r in records if r["k"] == "ev" and r["obj"] == locks[0]["id"]]
    assert [r["op"] for r in acq] == ["acquire", "release"]
    assert all(r.get("task") for r in acq)


def test_loop_running_before_start_and_uvloop_imported_first(tmp_path):
    pytest.importorskip("uvloop")
    out = tmp_path / "late"
    code = f"""
        import asyncio, uvloop, recorder
        async def child(lock):
            async with lock:
                await asyncio.sleep(0)
        async def main():
            recorder.start({str(out)!r})  # the loop is already running
            lock = asyncio.Lock()
            await asyncio.gather(child(lock), child(lock))
            t = asyncio.create_task(child(lock), name="after")
            await t
            recorder.stop()
        uvloop.run(main())
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for f in out.glob("*.jsonl")
               for line in f.read_text().splitlines()]
    tasks = {r["id"]: r for r in records if r["k"] == "task"}
    root = [t for t in tasks.values() if t["parent"] is None]
    # main() was adopted on first sight; the tasks created afterwards have it as parent.
    assert len(root) == 1
    after = [t for t in tasks.values() if t["name"] == "after"][0]
    assert after["parent"] == root[0]["id"]
    lock_ev = [r for r in records if r["k"] == "ev" and r["op"] in ("acquire", "release")]
    assert len(lock_ev) == 6 and all(r.get("task") for r in lock_ev)


def test_stop_restores_asyncio_and_start_again_records(tmp_path):
    from asyncio import base_events, events

    originals = (base_events.BaseEventLoop.create_task, base_events.BaseEventLoop.create_future,
                 events._set_running_loop, asyncio.Lock, asyncio.Queue)

    async def main():
        lock = asyncio.Lock()
        async with lock:
            pass
        return type(asyncio.current_task()).__module__

    for n in range(2):
        recorder.start(tmp_path / str(n))
        try:
            assert asyncio.run(main()) == ("recorder._aio_await" if _aio_await.SUPPORTED
                                           else "_asyncio")
        finally:
            files = recorder.stop()
        text = "".join(Path(f).read_text() for f in files)
        assert '"type":"asyncio.Lock"' in text and '"op":"acquire"' in text
        assert (base_events.BaseEventLoop.create_task, base_events.BaseEventLoop.create_future,
                events._set_running_loop, asyncio.Lock, asyncio.Queue) == originals
    assert asyncio.run(main()) == "_asyncio"
