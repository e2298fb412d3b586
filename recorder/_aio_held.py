"""Where a task that holds a lock is suspended: the await site of held-across-await.

When an asyncio task acquires a lock, a check is scheduled on its event loop (with
``call_soon``, once per loop iteration).  It runs as a loop callback, so after the
task's step is over: a task that is not done then is suspended at an await, and if
the lock is still taken, it is suspended while holding it.  A ``suspend`` event of
the task is then recorded, whose site is that await: the line, in the frame that
took the lock, where the coroutine chain is suspended (with the chain of awaiting
frames as its stack).  Only the first suspension after each acquire is looked at,
so a lock taken and released within one step costs one callback per loop
iteration, and a long hold one event.  With the C accelerator the acquires are noted
in C, a release takes its acquire's note out, and only what is still noted when the
iteration is over comes to ``check_held``.
"""

from __future__ import annotations

import contextvars
from asyncio import events
from typing import Any

from . import _core

_get_running_loop = events._get_running_loop
_EMPTY = contextvars.Context()  # the check needs no context: spare call_soon the copy
MAX_CHAIN = 100
# The acquires waiting for the check scheduled on one loop (by its loop id): per
# lock, its last acquirer (lock, task, site).  Plain globals: this runs on every
# acquire by a task, and the GIL orders the loops of several threads.
_pending: dict | None = None
_pending_loop: int | None = None


def task_acquired(lock: Any, task: Any, site: int) -> None:
    """``task`` (a TaskRec) acquired ``lock`` at ``site``: check after its step
    whether it is suspended holding it.  Installed as ``_core.task_acquired``."""
    global _pending, _pending_loop
    try:
        pending = _pending
        loop_id = task._def["loop"]
        if pending is None or _pending_loop != loop_id:
            loop = _get_running_loop()
            if loop is None:
                return
            pending = _pending = {}
            _pending_loop = loop_id
            loop.call_soon(_check, pending, context=_EMPTY)
        pending[id(lock)] = (lock, task, site)
    except Exception:  # never the program's concern
        pass


def _check(pending: dict) -> None:
    global _pending
    if _pending is pending:
        _pending = None
    if not _core.ON:
        return
    if _core.task_acquired is task_acquired:  # (the C accelerator forgets what it told)
        _core.set_task_acquired(task_acquired)
    _suspended_holding(pending.values())


def check_held(held: list) -> None:
    """(The C accelerator's check, once a loop iteration is over) ``held``: the
    (lock, task, site) of the acquires by tasks of this loop since its last check
    whose locks were not released meanwhile."""
    if _core.ON:
        _suspended_holding(held)


def _suspended_holding(acquires: Any) -> None:
    """A ``suspend`` event, at its await, for each task of ``acquires`` (lock, task,
    site) that is suspended while the lock is still taken."""
    try:
        done: set[int] = set()
        st = None
        for lock, task, site in acquires:
            if id(task) in done or not _still_taken(lock):
                continue
            t = task.task_ref() if task.task_ref is not None else None
            if t is None or t.done():
                continue
            done.add(id(task))
            sid = await_site(t, site)
            if st is None:
                st = _core.current_state()
            _core.append_event(st, "suspend", task, sid, task)
    except Exception:
        pass


def _still_taken(lock: Any) -> bool:
    locked = getattr(lock, "locked", None)  # (an RLock before 3.13 has none: assume so)
    return True if locked is None else bool(locked())


def await_site(task: Any, acquired_at: int) -> int:
    """Site of the await at which ``task`` is suspended: in the frame of its
    coroutine chain that took the lock (at ``acquired_at``), else in its innermost
    frame of user code; 0 when there is none."""
    chain = []
    coro = task.get_coro()
    for _ in range(MAX_CHAIN):
        if coro is None:
            break
        f = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if f is not None:
            chain.append(f)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    place = _core.sites.get(acquired_at)
    held = None
    if place is not None:
        held = next((i for i in range(len(chain) - 1, -1, -1)
                     if chain[i].f_code.co_filename == place[0]
                     and chain[i].f_code.co_name == place[2]), None)
    if held is None:
        held = next((i for i in range(len(chain) - 1, -1, -1)
                     if not _core._is_library(chain[i].f_code)), None)
    if held is None:
        return 0
    stack = None
    if _core.STACK_DEPTH > 0:  # the awaiting chain, innermost (the held frame) first
        stack = [[f.f_code.co_filename, f.f_lineno, f.f_code.co_name]
                 for f in reversed(chain[:held + 1])
                 if not _core.is_own(f.f_code.co_filename)][:_core.STACK_DEPTH]
    f = chain[held]
    return _core.place_site(f.f_code.co_filename, f.f_lineno, f.f_code.co_name, stack)


def install() -> None:
    _core.set_task_acquired(task_acquired)
    if _core.speedups is not None:  # (acquires noted in C, released ones forgotten there)
        _core.speedups.set_held_check(check_held, _EMPTY)


def uninstall() -> None:
    if _core.speedups is not None:
        _core.speedups.set_held_check(None, _EMPTY)
    _core.set_task_acquired(None)
