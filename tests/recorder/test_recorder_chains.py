"""Self-rescheduling work (each task or thread creates its successor, as a periodic
job does): the recorder must neither keep the chain of parents alive nor recurse
along it when a new file part re-defines what it needs."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Callable

import recorder
from recorder import _aio_tasks


def _live(cls: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is cls)


def _run_task_chain(lock: threading.Lock, total: int, each: Callable[[int], None] | None = None) -> None:
    """Tasks 1..total, each taking `lock` once, calling `each(n)` and creating its successor."""
    async def job(n: int, done: asyncio.Future) -> None:
        with lock:
            pass
        if each is not None:
            each(n)
        if n < total:
            asyncio.get_running_loop().create_task(job(n + 1, done), name="job")
        else:
            done.set_result(None)

    async def main() -> None:
        done = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().create_task(job(1, done))
        await asyncio.wait_for(done, 120)

    asyncio.run(main())


def test_20000_self_rescheduling_tasks_across_1mb_rotations_keep_memory_flat(rec):
    """Issue 14: at the first rotation the writer died with RecursionError (parents
    defined recursively) and recording stopped; without rotation the chain of
    parents stayed alive (RSS 19 MB -> 645 MB over 1 M tasks)."""
    rec.start(max_file_mb=1)
    lock = threading.Lock()
    total = 20_000
    marks: dict[int, tuple[int, int]] = {}

    def mark(n: int) -> None:
        if n in (5_000, total):
            recorder.flush()
            gc.collect()
            recs = _live(_aio_tasks.TaskRec)
            marks[n] = (rec.allocated_blocks(), recs)

    _run_task_chain(lock, total, mark)
    assert recorder.is_recording()  # the writer did not give up
    trace = rec.stop()
    assert len(trace.parts) >= 4
    (blocks_5k, recs_5k), (blocks_20k, recs_20k) = marks[5_000], marks[total]
    assert recs_20k <= recs_5k + 50, (recs_5k, recs_20k)
    # (the chain kept alive would be 15,000 recs, each with several blocks)
    assert blocks_20k - blocks_5k < 10_000, (blocks_5k, blocks_20k)
    # every task's lock pair reached the trace, each part defining what it names
    tasks = {t["id"] for t in trace.objects("task")}
    assert len(tasks) >= total
    assert len(trace.evs(lock._ls_id, op="acquire")) == total


def test_self_rescheduling_threads_across_1mb_rotations(rec):
    """Each thread starts its successor and ends: every part is self-contained and
    the chain of thread states does not stay alive."""
    from recorder import _core

    rec.start(max_file_mb=1)
    lock = threading.Lock()
    total = 2_000
    done = threading.Event()
    marks: dict[int, int] = {}
    pad = "x" * 200  # a long thread name: parts fill with fewer threads

    def job(n: int) -> None:
        for _ in range(10):
            with lock:
                pass
        if n in (500, total):
            recorder.flush()
            marks[n] = _live(_core.ThreadState)
        if n < total:
            threading.Thread(target=job, args=(n + 1,), name=f"job-{n + 1}-{pad}").start()
        else:
            done.set()

    threading.Thread(target=job, args=(1,), name=f"job-1-{pad}").start()
    assert done.wait(120)
    assert recorder.is_recording()
    trace = rec.stop()
    assert len(trace.parts) >= 2
    # (threads still winding down vary with scheduling; the chain would be 1,500)
    assert marks[total] <= marks[500] + 500, marks
    assert len(trace.evs(lock._ls_id, op="acquire")) == 10 * total


def test_a_long_chain_of_buffered_tasks_is_not_redefined_in_every_part(rec):
    """While the writer is behind, the buffered events keep a whole chain of
    self-rescheduling tasks alive; each new part defined an event's task with every
    live ancestor, so once the chain outgrew a part, every event started a new part
    full of definitions (thousands of 1 MB parts, the oldest deleted by the cap)."""
    rec.start(max_file_mb=1, flush_interval=30)  # the writer waits for the flush below
    lock = threading.Lock()
    total = 12_000  # definitions of the whole chain: about 2.5 MB, more than a part
    _run_task_chain(lock, total)
    trace = rec.stop()
    size = sum(os.path.getsize(p) for p in rec.files)
    assert len(trace.parts) <= 12 and size < 12 * 1024 * 1024, (len(trace.parts), size)
    assert len(trace.evs(lock._ls_id, op="acquire")) == total
    parents: dict[int, int | None] = {}
    for r in trace.records:  # the first definition of each task
        if r["k"] == "task":
            parents.setdefault(r["id"], r.get("parent"))
    assert len(parents) >= total
    # the part that first defined a task names its parent
    assert sum(1 for p in parents.values() if p is not None) >= total - 2
