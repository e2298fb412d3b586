"""Task identity: ids, names, parents, loops, threads, creation sites and ends."""

from __future__ import annotations

import asyncio
import threading

import pytest


def test_nested_create_task_and_taskgroup_parents(trace):
    async def leaf():
        await asyncio.sleep(0)

    async def middle():
        await asyncio.create_task(leaf(), name="leaf-of-middle")
        if not hasattr(asyncio, "TaskGroup"):  # Python 3.10
            await asyncio.gather(asyncio.create_task(leaf(), name="tg-leaf-1"),
                                 asyncio.create_task(leaf(), name="tg-leaf-2"))
            return await asyncio.gather(leaf(), leaf())
        async with asyncio.TaskGroup() as tg:
            tg.create_task(leaf(), name="tg-leaf-1")
            tg.create_task(leaf(), name="tg-leaf-2")
        await asyncio.gather(leaf(), leaf())

    async def main():
        asyncio.current_task().set_name("root")
        await asyncio.create_task(middle(), name="middle")

    asyncio.run(main())
    tasks = trace.tasks_named()
    ids = [t["id"] for t in trace.defs("task").values()]
    assert len(ids) == len(set(ids))
    root, mid = tasks["root"], tasks["middle"]
    assert root["parent"] is None
    assert mid["parent"] == root["id"]
    for name in ("leaf-of-middle", "tg-leaf-1", "tg-leaf-2"):
        assert tasks[name]["parent"] == mid["id"], name
    gathered = [t for t in trace.defs("task").values()
                if t["parent"] == mid["id"] and t["name"].startswith("Task-")]
    assert len(gathered) == 2
    main_th = [r for r in trace.defs("thread").values() if r["name"] == "MainThread"][0]["id"]
    loops = {t["loop"] for t in trace.defs("task").values()}
    assert len(loops) == 1 and None not in loops
    assert all(t["th"] == main_th for t in trace.defs("task").values())
    # Creation sites point at the user's create_task / gather calls.
    sites = trace.defs("site")
    assert sites[mid["site"]]["func"] == "main"
    assert sites[tasks["tg-leaf-1"]["site"]]["func"] == "middle"
    assert sites[gathered[0]["site"]]["func"] == "middle"
    # Every task of ours ended, once, by itself, with outcome done.
    for t in (root, mid, tasks["tg-leaf-1"], *gathered):
        ends = trace.events(obj=t["id"], op="end")
        assert [(e["task"], e["outcome"]) for e in ends] == [(t["id"], "done")]


def test_end_outcomes(trace):
    async def boom():
        raise ValueError("x")

    async def forever():
        await asyncio.sleep(3600)

    async def main():
        failing = asyncio.create_task(boom(), name="failing")
        stuck = asyncio.create_task(forever(), name="stuck")
        await asyncio.sleep(0)
        stuck.cancel()
        with pytest.raises(ValueError):
            await failing
        with pytest.raises(asyncio.CancelledError):
            await stuck

    asyncio.run(main())
    tasks = trace.tasks_named()
    assert [e["outcome"] for e in trace.events(obj=tasks["failing"]["id"], op="end")] == ["failed"]
    assert [e["outcome"] for e in trace.events(obj=tasks["stuck"]["id"], op="end")] == ["cancelled"]


def test_end_does_not_retrieve_the_exception(trace):
    """Recording a failed task's end must not silence asyncio's 'exception was never
    retrieved' report (it would hide a bug of the program)."""
    seen = []

    async def boom():
        raise ValueError("x")

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, ctx: seen.append(ctx["message"]))
        asyncio.create_task(boom())
        await asyncio.sleep(0.01)

    import gc
    asyncio.run(main())
    gc.collect()
    assert any("never retrieved" in m for m in seen)


def test_loops_in_several_threads(trace):
    lock = threading.Lock()  # created while recording: traced

    async def worker(n):
        with lock:  # a threading lock taken by a task carries the task
            pass
        await asyncio.sleep(0)

    async def main(n):
        asyncio.current_task().set_name(f"main-{n}")
        await asyncio.create_task(worker(n), name=f"worker-{n}")

    threads = [threading.Thread(target=asyncio.run, args=(main(n),), name=f"loop-{n}")
               for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    tasks = trace.tasks_named()
    thread_ids = {r["name"]: r["id"] for r in trace.defs("thread").values()}
    loops = set()
    for n in range(3):
        m, w = tasks[f"main-{n}"], tasks[f"worker-{n}"]
        assert m["th"] == w["th"] == thread_ids[f"loop-{n}"]
        assert w["parent"] == m["id"] and m["parent"] is None
        assert m["loop"] == w["loop"]
        loops.add(m["loop"])
        acq = [e for e in trace.events(obj=trace.obj_id(lock), op="acquire")
               if e["th"] == thread_ids[f"loop-{n}"]]
        assert [e["task"] for e in acq] == [w["id"]]
    assert len(loops) == 3


def test_user_task_factory_still_used(trace):
    made = []

    def factory(loop, coro, **kwargs):
        task = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    async def child():
        await asyncio.sleep(0)

    async def main():
        asyncio.get_running_loop().set_task_factory(factory)
        assert asyncio.get_running_loop().get_task_factory() is factory
        await asyncio.create_task(child(), name="child")

    asyncio.run(main())
    assert made[0].get_name() == "child"  # (asyncio.run's shutdown tasks follow)
    tasks = trace.tasks_named()
    root = [t for t in trace.defs("task").values() if t["parent"] is None][0]
    assert tasks["child"]["parent"] == root["id"]


def test_task_made_outside_create_task_is_adopted(trace):
    lock = asyncio.Lock()

    async def direct():
        async with lock:
            pass

    async def main():
        await asyncio.Task(direct(), name="direct")  # bypasses create_task

    asyncio.run(main())
    tasks = trace.tasks_named()
    acq = trace.events(obj=trace.obj_id(lock), op="acquire")
    assert [e["task"] for e in acq] == [tasks["direct"]["id"]]
    assert [e["outcome"] for e in trace.events(obj=tasks["direct"]["id"], op="end")] == ["done"]


def test_uvloop(trace):
    uvloop = pytest.importorskip("uvloop")
    lock = asyncio.Lock()

    async def child():
        async with lock:
            await asyncio.sleep(0)

    async def main():
        asyncio.current_task().set_name("uv-main")
        await asyncio.gather(asyncio.create_task(child(), name="uv-child-1"),
                             asyncio.create_task(child(), name="uv-child-2"))

    uvloop.run(main())
    tasks = trace.tasks_named()
    for n in (1, 2):
        assert tasks[f"uv-child-{n}"]["parent"] == tasks["uv-main"]["id"]
    holders = [e["task"] for e in trace.events(obj=trace.obj_id(lock), op="acquire")]
    assert holders == [tasks["uv-child-1"]["id"], tasks["uv-child-2"]["id"]]
    assert [e["op"] for e in trace.events(obj=trace.obj_id(lock))] == [
        "acquire", "wait", "release", "acquire", "release"]


def test_recorder_keeps_no_task_alive(trace):
    import gc
    import weakref

    refs = []

    async def child():
        if not hasattr(asyncio, "timeout"):  # Python 3.10
            return await asyncio.wait_for(asyncio.sleep(0), 10)
        async with asyncio.timeout(10):
            await asyncio.sleep(0)

    async def main():
        for _ in range(20):
            t = asyncio.create_task(child())
            refs.append(weakref.ref(t))
            await t
        fut = asyncio.get_running_loop().create_future()
        refs.append(weakref.ref(fut))

    asyncio.run(main())
    gc.collect()
    assert [r for r in refs if r() is not None] == []


class _Shop:
    async def place_order(self):
        await asyncio.sleep(0)


async def _named_by_coroutine():
    async def worker():
        await asyncio.sleep(0)

    await asyncio.gather(asyncio.create_task(_Shop().place_order()),
                         asyncio.create_task(worker()),
                         asyncio.create_task(worker(), name="given"))


def test_task_record_names_its_coroutine_and_where_it_is_defined(trace):
    asyncio.run(_named_by_coroutine())
    sites = trace.defs("site")
    by_coro = {}
    for t in trace.defs("task").values():
        by_coro.setdefault(t.get("coro"), []).append(t)
    [order] = by_coro["_Shop.place_order"]
    assert order["name"].startswith("Task-")
    s = sites[order["coro_site"]]
    assert (s["file"], s["line"], s["func"]) == (__file__, _Shop.place_order.__code__.co_firstlineno,
                                                  "place_order")
    assert "stack" not in s
    workers = by_coro["_named_by_coroutine.<locals>.worker"]
    assert sorted(t["name"] for t in workers)[-1] == "given"  # the program's name is kept as is
    assert len({t["coro_site"] for t in workers}) == 1
    [main] = by_coro["_named_by_coroutine"]
    assert sites[main["coro_site"]]["line"] == _named_by_coroutine.__code__.co_firstlineno
