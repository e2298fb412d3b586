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
Not seen: waits through ``gather``, ``wait``, ``shield`` and ``TaskGroup`` (they use
done callbacks; the task records' ``parent`` links cover TaskGroup).
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
_getframe = sys._getframe
_ctx = _aio_sync._ctx
_rec = _aio_sync._rec
_site_from = _aio_sync._site_from
_code_kind = _aio_sync._code_kind
_kind_by_code = _aio_sync._kind_by_code

# Only Python versions whose BaseEventLoop.create_task this mirrors (see _aio_tasks).
SUPPORTED = sys.version_info[:2] in ((3, 11),)


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
        kind = _kind_by_code.get(code)
        if kind is None:
            kind = _code_kind(code)
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


def uninstall() -> None:
    """Back to plain tasks and futures (existing ones keep working, silently)."""
    _aio_tasks.TASK_CLASS = None
    base_events.BaseEventLoop.create_future = _orig_create_future
