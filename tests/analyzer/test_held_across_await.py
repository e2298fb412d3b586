"""held-across-await on real event loops: a lock held by a task suspended at an
await while other tasks ran (must find; error when a threading lock froze the
loop), and the corrected programs (must stay quiet)."""
from __future__ import annotations

import asyncio
import threading

import recorder

from .conftest import kinds, line_of

TIMEOUT = 5


def _config_program(fixed: bool):
    config = recorder.name(asyncio.Lock(), "config")
    value = {"mode": "old"}

    async def fetch():
        await asyncio.sleep(0.1)
        return "new"

    async def refresh():
        if fixed:
            fresh = await fetch()
            async with config:
                value["mode"] = fresh
            return
        async with config:  # refresh: take config
            value["mode"] = await fetch()  # refresh: await fetch

    async def read():
        await asyncio.sleep(0.01)
        async with config:  # read: take config
            return value["mode"]

    async def main():
        tasks = [asyncio.create_task(refresh(), name="refresh"),
                 *[asyncio.create_task(read(), name=f"reader-{i}") for i in (1, 2)]]
        return await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)

    return main, refresh, read


def test_asyncio_lock_held_across_a_slow_await_is_reported_with_its_waiters(record):
    with record() as rec:
        main, refresh, read = _config_program(fixed=False)
        asyncio.run(main())
    [f] = kinds(rec.analyze(), "held-across-await")
    assert f["severity"] == "warning"
    assert [lk["name"] for lk in f["locks"]] == ["config"]
    # The main site is the await the holder was suspended at; the acquire comes next.
    assert [s["site"] for s in f["sites"]] == [line_of(refresh, "# refresh: await fetch"),
                                               line_of(refresh, "# refresh: take config"),
                                               line_of(read, "# read: take config")]
    assert f["title"] == f"Lock 'config' held across an await at {line_of(refresh, '# refresh: await fetch')}"
    assert (f"held 'config' (taken at {line_of(refresh, '# refresh: take config')}) while it was "
            f"suspended at the await at {line_of(refresh, '# refresh: await fetch')} and other tasks"
            in f["message"])
    d = f["details"]
    assert d["waiters"] == 2
    assert d["holder"]["name"] == "refresh"
    assert sorted(w["actor"]["name"] for w in d["waiting"]) == ["reader-1", "reader-2"]
    assert d["duration_ns"] >= 100_000_000
    assert d["loop_froze"] is False and d["thread_lock"] is False
    assert {t["name"] for t in f["threads"]} == {"refresh", "reader-1", "reader-2"}
    assert f["count"] == 1


def test_await_first_then_lock_briefly_is_quiet(record):
    with record() as rec:
        main, _, _ = _config_program(fixed=True)
        asyncio.run(main())
    assert kinds(rec.analyze(), "held-across-await") == []


def test_asyncio_lock_held_without_awaiting_is_quiet(record):
    """Many tasks take the lock, but none awaits inside it: other tasks only run between holds."""
    with record() as rec:
        lock = asyncio.Lock()
        counter = [0]

        async def bump():
            for _ in range(20):
                async with lock:
                    counter[0] += 1
                await asyncio.sleep(0)

        async def main():
            await asyncio.wait_for(asyncio.gather(*[bump() for _ in range(4)]), TIMEOUT)

        asyncio.run(main())
        assert counter[0] == 80
    assert kinds(rec.analyze(), "held-across-await") == []


def _metrics_program(blocker: bool):
    metrics = recorder.name(threading.Lock(), "metrics")

    async def flush():
        with metrics:  # flush: take metrics
            await asyncio.sleep(0.05)  # flush: await

    async def collect():
        await asyncio.sleep(0.01)
        if blocker:
            got = metrics.acquire(timeout=0.1)  # collect: take metrics
            if got:
                metrics.release()
            return got
        return None

    async def main():
        return await asyncio.wait_for(asyncio.gather(
            asyncio.create_task(flush(), name="flusher"),
            asyncio.create_task(collect(), name="collector")), TIMEOUT)

    return main, flush, collect


def test_threading_lock_held_across_await_that_another_task_blocks_on_freezes_the_loop(record):
    with record() as rec:
        main, flush, collect = _metrics_program(blocker=True)
        _, got = asyncio.run(main())
        assert got is False  # the loop was frozen until the acquire gave up
    [f] = kinds(rec.analyze(), "held-across-await")
    assert f["severity"] == "error"
    assert f["title"].startswith("Event loop froze")
    assert "the whole event loop froze" in f["message"]
    assert [s["site"] for s in f["sites"]] == [line_of(flush, "# flush: await"),
                                               line_of(flush, "# flush: take metrics"),
                                               line_of(collect, "# collect: take metrics")]
    assert f["details"]["await_at"] == line_of(flush, "# flush: await")
    assert f["details"]["acquired_at"] == line_of(flush, "# flush: take metrics")
    d = f["details"]
    assert d["loop_froze"] is True and d["thread_lock"] is True and d["freezes"] == 1
    assert d["waiters"] == 1
    assert d["waiting"][0]["actor"]["name"] == "collector"
    assert d["waiting"][0]["outcome"] == "timeout"


def test_threading_lock_held_across_await_without_blockers_is_a_warning(record):
    with record() as rec:
        main, flush, _ = _metrics_program(blocker=False)
        asyncio.run(main())
    [f] = kinds(rec.analyze(), "held-across-await")
    assert f["severity"] == "warning"
    assert f["details"]["loop_froze"] is False and f["details"]["waiters"] == 0
    assert [s["site"] for s in f["sites"]] == [line_of(flush, "# flush: await"),
                                               line_of(flush, "# flush: take metrics")]


def test_held_across_await_fingerprint_is_stable_across_runs(record, tmp_path):
    docs = []
    for _ in range(2):
        with record() as rec:
            main, _, _ = _config_program(fixed=False)
            asyncio.run(main())
        docs.append(rec.analyze())
        recorder_dir = rec.out
        for p in recorder_dir.glob("*.jsonl"):
            p.unlink()
    [a], [b] = (kinds(d, "held-across-await") for d in docs)
    assert a["fingerprint"] == b["fingerprint"]


def test_actors_thread_ignores_tasks(record):
    with record() as rec:
        main, _, _ = _config_program(fixed=False)
        asyncio.run(main())
    assert kinds(rec.analyze(actors="thread"), "held-across-await") == []


def test_semaphore_limiting_concurrency_across_awaits_is_quiet(record):
    """`async with Semaphore(3): await fetch()` is what a concurrency limit is for."""
    with record() as rec:
        async def main():
            slots = asyncio.Semaphore(3)

            async def fetch(i):
                async with slots:
                    await asyncio.sleep(0.01)
                    return i

            return await asyncio.wait_for(asyncio.gather(*[fetch(i) for i in range(8)]), TIMEOUT)

        assert asyncio.run(main()) == list(range(8))
    assert kinds(rec.analyze(), "held-across-await") == []
