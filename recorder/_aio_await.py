"""Awaiting a task or a future, traced as a wait; completing a future as a signal.

``await task`` and ``await future`` are handled inside the C event-loop machinery,
so they can only be seen through the awaited object's ``__await__``.  While
recording, tasks that ``loop.create_task`` makes without a user task factory are
instances of :class:`Task`, and futures that *user code* gets from
``loop.create_future()`` are instances of :class:`Future` — subclasses of the asyncio
types (same repr, ``isinstance`` holds) whose ``__await__`` records ``wait-begin`` /
``wait-end`` by the awaiting task on the awaited one.  A task's ``end`` is the
signal that ends such waits; a future's ``set_result`` / ``set_exception`` /
``cancel`` are recorded as ``signal``.  Futures made inside asyncio (lock and queue
waiters, ``sleep``) stay plain: their waits are recorded by the traced primitives.
Awaiting ``asyncio.gather(...)`` and leaving ``async with TaskGroup()`` are waits on
each child still running (all of them end when the whole wait does).  Not seen:
waits through ``asyncio.wait``, ``as_completed`` and ``shield`` (done callbacks).
"""

from __future__ import annotations

import sys
from asyncio import base_events, exceptions, futures, tasks
from typing import Any

from . import _aio_sync, _aio_tasks, _core

CancelledError = exceptions.CancelledError
_OrigTask = tasks.Task
_OrigFuture = futures.Future
_task_await = _OrigTask.__await__
_future_await = _OrigFuture.__await__
_orig_create_future = base_events.BaseEventLoop.create_future
_OrigGatheringFuture = tasks._GatheringFuture
try:
    from asyncio import taskgroups as _taskgroups

    _orig_tg_aexit = _taskgroups.TaskGroup.__aexit__
except ImportError:  # Python 3.10
    _taskgroups = None
    _orig_tg_aexit = None
_getframe = sys._getframe
_ctx = _aio_sync._ctx
_rec = _aio_sync._rec
_site_from = _aio_sync._site_from
_code_kind = _aio_sync._code_kind
_kind_by_code = _aio_sync._kind_by_code

# Only Python versions whose BaseEventLoop.create_task _aio_tasks mirrors.
SUPPORTED = sys.version_info[:2] in ((3, 11), (3, 12))


def _awaited(awaitable: Any, obj: Any, inner_await: Any) -> Any:
    """Generator body of the traced ``__await__``: ``obj`` is what is waited on."""
    st, waiter = _ctx()
    site = _site_from(_getframe(2), waiter)
    _rec(st, "wait-begin", obj, site, waiter)
    outcome = "error"
    try:
        result = yield from inner_await(awaitable)
        outcome = "ok"
        return result
    except CancelledError:
        # The waiter itself was cancelled, or the awaited thing was (its end / its
        # cancel() is then the signal that ended the wait).
        outcome = "cancelled" if _waiter_cancelled(waiter) else "ok"
        raise
    except BaseException:
        outcome = "ok" if awaitable.done() else "error"  # it failed: the wait is over
        raise
    finally:
        _rec(st, "wait-end", obj, site, waiter, {"outcome": outcome})


def _wait_target(aw: Any) -> Any:
    """The recording object to name in a wait on ``aw`` (a task or a traced future)."""
    if aw.done():
        return None
    if isinstance(aw, _OrigTask):
        return _aio_tasks.rec_of(aw)
    return aw if hasattr(aw, "_ls_def") else None


def _awaited_all(awaitable: Any, objs: list, inner_await: Any) -> Any:
    """Like :func:`_awaited` for a wait on several things at once (gather)."""
    st, waiter = _ctx()
    site = _site_from(_getframe(2), waiter)
    for obj in objs:
        _rec(st, "wait-begin", obj, site, waiter)
    outcome = "error"
    try:
        result = yield from inner_await(awaitable)
        outcome = "ok"
        return result
    except CancelledError:
        outcome = "cancelled" if _waiter_cancelled(waiter) else "ok"
        raise
    except BaseException:
        outcome = "ok" if awaitable.done() else "error"
        raise
    finally:
        for obj in objs:
            _rec(st, "wait-end", obj, site, waiter, {"outcome": outcome})


class GatheringFuture(_OrigGatheringFuture):
    """The future ``asyncio.gather`` returns: awaiting it is a wait on each child."""

    def __await__(self) -> Any:
        if self.done() or not _core.ON:
            return (yield from _future_await(self))
        objs = [o for o in map(_wait_target, self._children) if o is not None]
        if not objs:
            return (yield from _future_await(self))
        return (yield from _awaited_all(self, objs, _future_await))

    __iter__ = __await__


async def _taskgroup_aexit(self: Any, et: Any, exc: Any, tb: Any) -> Any:
    """``async with TaskGroup()`` exit: a wait on each child still running."""
    if not _core.ON or not self._tasks:
        return await _orig_tg_aexit(self, et, exc, tb)
    st, waiter = _ctx()
    site = _site_from(_getframe(1), waiter)
    objs = [o for o in map(_wait_target, list(self._tasks)) if o is not None]
    for obj in objs:
        _rec(st, "wait-begin", obj, site, waiter)
    outcome = "error"
    try:
        result = await _orig_tg_aexit(self, et, exc, tb)
        outcome = "ok"
        return result
    except CancelledError:
        outcome = "cancelled" if _waiter_cancelled(waiter) else "ok"
        raise
    except BaseException:  # the children's errors, raised once all of them ended
        outcome = "ok" if not self._tasks else "error"
        raise
    finally:
        for obj in objs:
            _rec(st, "wait-end", obj, site, waiter, {"outcome": outcome})


def _waiter_cancelled(waiter: Any) -> bool:
    if waiter is None:
        return True
    task = waiter.task_ref() if waiter.task_ref is not None else None
    try:
        return task is None or task.cancelling() > 0
    except Exception:
        return True


class Task(_OrigTask):
    """An asyncio Task whose awaiting is recorded (see the module docstring)."""

    def __await__(self) -> Any:
        if self.done() or not _core.ON:
            return (yield from _task_await(self))
        rec = _aio_tasks.rec_of(self)
        return (yield from _awaited(self, rec, _task_await))

    __iter__ = __await__


class Future(_OrigFuture):
    """An asyncio Future made by user code; awaiting it is a wait, completing it a signal."""

    def _ls_record(self) -> dict:
        return self._ls_def

    def __await__(self) -> Any:
        if self.done() or not _core.ON:
            return (yield from _future_await(self))
        return (yield from _awaited(self, self, _future_await))

    __iter__ = __await__

    def _ls_signal(self, sig: str) -> None:
        if _core.ON and not self.done():
            st, task = _ctx()
            _rec(st, "signal", self, _site_from(_getframe(2), task), task, {"sig": sig})

    def set_result(self, result: Any) -> None:
        self._ls_signal("result")
        super().set_result(result)

    def set_exception(self, exception: Any) -> None:
        self._ls_signal("exception")
        super().set_exception(exception)

    def cancel(self, msg: Any = None) -> bool:
        self._ls_signal("cancel")
        return super().cancel(msg)


def _create_future(self: Any) -> Any:
    if _core.ON:
        code = _getframe(1).f_code
        entry = _kind_by_code.get(id(code))
        kind = entry[1] if entry is not None else _code_kind(code)
        if kind == _aio_sync._USER:
            fut = Future(loop=self)
            _core.define(fut, "resource", "asyncio.Future", 2)
            return fut
    return _orig_create_future(self)


def install() -> None:
    """Make new tasks and user futures traceable while awaited."""
    if not SUPPORTED:
        return
    _aio_tasks.TASK_CLASS = Task
    base_events.BaseEventLoop.create_future = _create_future
    tasks._GatheringFuture = GatheringFuture
    if _taskgroups is not None:
        _taskgroups.TaskGroup.__aexit__ = _taskgroup_aexit


def uninstall() -> None:
    """Back to plain tasks and futures (existing ones keep working, silently)."""
    _aio_tasks.TASK_CLASS = None
    base_events.BaseEventLoop.create_future = _orig_create_future
    tasks._GatheringFuture = _OrigGatheringFuture
    if _taskgroups is not None:
        _taskgroups.TaskGroup.__aexit__ = _orig_tg_aexit
