"""Call-site caches under code compiled at run time (``exec`` of a new function for
each request, as template engines and RPC stubs do): they must not keep every code
object alive."""

from __future__ import annotations

import asyncio
import gc
import threading
import types
import weakref

import recorder
from recorder import _core

SOURCE = """
def handle(lock, n):
    with lock:
        n += 1
    lock.acquire()
    lock.release()
    return n
"""

ASYNC_SOURCE = """
async def handle(lock):
    async with lock:
        pass
"""


class Compiler:
    """Compiles a new function per call and watches whether its code stays alive."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.codes: weakref.WeakSet = weakref.WeakSet()

    def __call__(self) -> types.FunctionType:
        ns: dict = {}
        exec(compile(self.source, "<request>", "exec"), ns)
        self.codes.add(ns["handle"].__code__)
        return ns["handle"]

    def alive(self) -> int:
        gc.collect()
        return len(self.codes)


def test_50000_exec_compiled_functions_taking_a_lock_keep_memory_bounded(rec):
    """Issue 14: the site caches kept every code object (RSS 29 -> 744 MB in 15 s)."""
    rec.start()
    lock = threading.Lock()
    marks = {}
    compiled = Compiler(SOURCE)
    for i in range(1, 50_001):
        compiled()(lock, i)
        if i in (5_000, 50_000):
            recorder.flush()
            marks[i] = (rec.allocated_blocks(), compiled.alive(),
                        len(_core.code_sites), len(_core.sites))
    trace = rec.stop()
    (blocks_5k, codes_5k, cache_5k, sites_5k) = marks[5_000]
    (blocks_50k, codes_50k, cache_50k, sites_50k) = marks[50_000]
    assert codes_50k <= 2, marks  # (the lock's last-site memo may hold the last one)
    assert cache_50k <= cache_5k + 10, marks
    assert sites_50k == sites_5k, marks  # the same places: the same sites
    assert blocks_50k - blocks_5k < 20_000, marks
    # every acquire is recorded at the right line of the compiled function
    acquires = trace.evs(lock._ls_id, op="acquire")
    assert len(acquires) == 100_000
    assert {trace.site(e)[1:] for e in acquires} == {(3, "handle"), (5, "handle")}


def test_exec_compiled_coroutines_with_asyncio_locks_keep_memory_bounded(rec):
    rec.start()
    marks = {}
    compiled = Compiler(ASYNC_SOURCE)

    async def main() -> None:
        lock = asyncio.Lock()
        for i in range(1, 10_001):
            await compiled()(lock)
            if i in (1_000, 10_000):
                marks[i] = compiled.alive()

    asyncio.run(main())
    trace = rec.stop()
    assert marks[10_000] <= 2, marks
    acquires = trace.evs(op="acquire")
    assert len(acquires) == 10_000
    assert {trace.site(e)[1:] for e in acquires} == {(3, "handle")}
