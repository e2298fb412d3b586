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
each child still running (all of them end when the whole wait does).  So are
``asyncio.wait(...)`` (a wrapper), each await of an ``as_completed`` item (a wait on
every future not yet done; any one ends it) and awaiting ``shield(x)`` (a wait on x:
the future shield makes is a :class:`ShieldFuture` that knows it); before Python
3.12, ``wait_for(task or future, t)`` (a wrapper: it waits through a done callback
there, while 3.12+ awaits the task itself).
"""

from __future__ import annotations

import inspect
import sys
import weakref
from asyncio import base_events, coroutines, exceptions, futures, tasks
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
_orig_wait = tasks.wait
_orig_wait_for = tasks.wait_for
# wait_for(task or future, t) waits through a done callback before 3.12 (3.12+ awaits it)
_WAIT_FOR_CALLBACKS = sys.version_info < (3, 12)
_orig_as_completed = tasks.as_completed
_AsCompletedIterator = getattr(tasks, "_AsCompletedIterator", None)  # Python 3.13+
_SHIELD_CODE = tasks.shield.__code__
_FIRST_COMPLETED, _FIRST_EXCEPTION = tasks.FIRST_COMPLETED, tasks.FIRST_EXCEPTION
_isfuture = futures.isfuture
_getframe = sys._getframe
_ctx = _aio_sync._ctx
_rec = _aio_sync._rec
_site_from = _aio_sync._site_from
_code_kind = _aio_sync._code_kind
_kind_by_code = _aio_sync._kind_by_code

# Python versions whose BaseEventLoop.create_task _aio_tasks mirrors (and whose own
# asyncio test suites pass with these subclasses in force).
SUPPORTED = sys.version_info[:2] in ((3, 10), (3, 11), (3, 12), (3, 13))


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
        outcome = _aio_tasks.cancel_outcome(waiter) if _waiter_cancelled(waiter) else "ok"
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
    if hasattr(aw, "_ls_def"):
        return aw
    ref = getattr(aw, "_ls_inner", None)  # a ShieldFuture: the wait is on what it shields
    inner = ref() if ref is not None else None
    return _wait_target(inner) if inner is not None else None


def _wait_targets(futs: Any) -> list:
    """The recording objects of the futures in ``futs`` not yet done (no duplicates)."""
    objs: dict = {}
    for f in futs:
        if _isfuture(f):
            o = _wait_target(f)
            if o is not None:
                objs[id(o)] = o
    return list(objs.values())


def _begin_waits(objs: list, site_frame: Any, extra: dict | None) -> tuple:
    st, waiter = _ctx()
    site = _site_from(site_frame, waiter)
    for obj in objs:
        _rec(st, "wait-begin", obj, site, waiter, extra)
    return st, waiter, site


def _end_waits(ctx: tuple, objs: list, outcome: str) -> None:
    st, waiter, site = ctx
    for obj in objs:
        _rec(st, "wait-end", obj, site, waiter, {"outcome": outcome})


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
        outcome = _aio_tasks.cancel_outcome(waiter) if _waiter_cancelled(waiter) else "ok"
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
        outcome = _aio_tasks.cancel_outcome(waiter) if _waiter_cancelled(waiter) else "ok"
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


class ShieldFuture(_OrigFuture):
    """The future ``asyncio.shield(x)`` returns: awaiting it is a wait on ``x``."""

    _ls_inner: Any = None

    def __await__(self) -> Any:
        if self.done() or not _core.ON:
            return (yield from _future_await(self))
        obj = _wait_target(self)
        if obj is None:
            return (yield from _future_await(self))
        return (yield from _awaited(self, obj, _future_await))

    __iter__ = __await__


def _shield_future(loop: Any, shield_frame: Any) -> Any:
    fut = ShieldFuture(loop=loop)
    try:
        fut._ls_inner = weakref.ref(shield_frame.f_locals["inner"])
    except Exception:
        pass
    return fut


def wait(fs: Any, *, timeout: Any = None, return_when: Any = tasks.ALL_COMPLETED) -> Any:
    """``asyncio.wait``: a wait by the calling task on each of ``fs`` not yet done
    (on all of them at once for ``FIRST_COMPLETED``: ``any`` on the records).

    A plain function returning the coroutine to await, so that when there is nothing
    to record the program awaits the original's own coroutine."""
    if _core.ON and not _isfuture(fs) and not coroutines.iscoroutine(fs):
        items = fs if isinstance(fs, (set, frozenset, list, tuple)) else list(fs)
        # (coroutines in fs: deprecated on 3.10, refused later; the original warns/raises)
        if not any(coroutines.iscoroutine(f) for f in items):
            return _traced_wait(items or fs, timeout, return_when)
        fs = items or fs
    return _orig_wait(fs, timeout=timeout, return_when=return_when)


if hasattr(coroutines, "_is_coroutine"):  # asyncio.iscoroutinefunction(wait), 3.10-3.11
    wait._is_coroutine = coroutines._is_coroutine  # type: ignore[attr-defined]
if hasattr(inspect, "markcoroutinefunction"):  # 3.12+
    inspect.markcoroutinefunction(wait)


async def _traced_wait(items: Any, timeout: Any, return_when: Any) -> Any:
    objs: list = []
    try:
        futs = [f for f in items if _isfuture(f)]
        pending = [f for f in futs if not f.done()]
        if return_when == _FIRST_COMPLETED and len(pending) < len(futs):
            pending = []  # one is done already: returns without blocking
        elif return_when == _FIRST_EXCEPTION and any(_failed(f) for f in futs):
            pending = []
        if timeout is None or timeout > 0:
            objs = _wait_targets(pending)
    except Exception:
        objs = []
    if not objs:
        return await _orig_wait(items, timeout=timeout, return_when=return_when)
    extra: dict | None = {}
    if timeout is not None:
        extra["timeout"] = timeout
    if return_when == _FIRST_COMPLETED and len(objs) > 1:
        extra["any"] = True
    ctx = _begin_waits(objs, _getframe(1), extra or None)
    outcome = "error"
    try:
        done, still = await _orig_wait(items, timeout=timeout, return_when=return_when)
        if return_when == _FIRST_COMPLETED:
            outcome = "ok" if done else "timeout"
        elif return_when == _FIRST_EXCEPTION:
            outcome = "ok" if not still or any(_failed(f) for f in done) else "timeout"
        else:
            outcome = "timeout" if still else "ok"
        return done, still
    except CancelledError:
        outcome = _aio_tasks.cancel_outcome(ctx[1])
        raise
    finally:
        _end_waits(ctx, objs, outcome)


def wait_for(fut: Any, timeout: Any) -> Any:
    """``asyncio.wait_for`` before Python 3.12: with a task or future (not a coroutine)
    and a timeout it waits through a done callback; record that as a wait on it."""
    if _core.ON and timeout is not None and _isfuture(fut):
        return _traced_wait_for(fut, timeout)
    return _orig_wait_for(fut, timeout)


if hasattr(coroutines, "_is_coroutine"):
    wait_for._is_coroutine = coroutines._is_coroutine  # type: ignore[attr-defined]


async def _traced_wait_for(fut: Any, timeout: Any) -> Any:
    try:
        obj = _wait_target(fut) if timeout > 0 else None
    except Exception:
        obj = None
    if obj is None:
        return await _orig_wait_for(fut, timeout)
    ctx = _begin_waits([obj], _getframe(1), {"timeout": timeout})
    outcome = "error"
    try:
        result = await _orig_wait_for(fut, timeout)
        outcome = "ok"
        return result
    except exceptions.TimeoutError:
        outcome = "ok" if fut.done() and not fut.cancelled() else "timeout"
        raise
    except CancelledError:
        outcome = "ok" if fut.cancelled() and not _waiter_cancelled(ctx[1]) else "cancelled"
        raise
    except BaseException:
        outcome = "ok" if fut.done() else "error"
        raise
    finally:
        _end_waits(ctx, [obj], outcome)


def _failed(f: Any) -> bool:
    # (f.exception() would mark the exception retrieved)
    return f.done() and not f.cancelled() and getattr(f, "_exception", None) is not None


async def _as_completed_next(coro: Any, todo: Any, done: Any) -> Any:
    """One item of ``as_completed`` (Python < 3.13): ``coro`` waits for the next future
    of ``todo`` (the ones not yet done) to be put in ``done``."""
    objs: list = []
    if _core.ON and todo and done.empty():
        try:
            objs = _wait_targets(todo)
        except Exception:
            objs = []
    if not objs:
        return await coro
    ctx = _begin_waits(objs, _getframe(1), {"any": True} if len(objs) > 1 else None)
    outcome = "error"
    try:
        result = await coro
        outcome = "ok"
        return result
    except CancelledError:
        outcome = _aio_tasks.cancel_outcome(ctx[1])
        raise
    except BaseException as exc:  # the future's own error, or TimeoutError: time ran out
        outcome = "timeout" if _timed_out(exc, todo) else "ok"
        raise
    finally:
        _end_waits(ctx, objs, outcome)


def _timed_out(exc: BaseException, todo: Any) -> bool:
    # as_completed's timeout empties the set of futures not yet done and raises
    # TimeoutError (a future's own TimeoutError leaves the others there).
    return isinstance(exc, exceptions.TimeoutError) and not todo


def as_completed(fs: Any, *, timeout: Any = None) -> Any:
    """``asyncio.as_completed`` (Python < 3.13): awaiting an item is a wait on every
    future not yet done (any one ends it)."""
    gen = _orig_as_completed(fs, timeout=timeout)
    state = None
    for item in gen:
        if not _core.ON:
            yield item
            continue
        if state is None:
            try:
                loc = gen.gi_frame.f_locals
                state = (loc["todo"], loc["done"])
            except Exception:
                state = ((), None)
        yield _as_completed_next(item, *state) if state[1] is not None else item


class AsCompletedIterator(_AsCompletedIterator or object):  # type: ignore[misc]
    """What ``asyncio.as_completed`` returns on Python 3.13+: awaiting the next item
    is a wait on every future not yet done (any one ends it)."""

    async def _wait_for_one(self, resolve: bool = False) -> Any:
        base = super()._wait_for_one
        objs: list = []
        if _core.ON and self._todo and self._done.empty():
            try:
                objs = _wait_targets(self._todo)
            except Exception:
                objs = []
        if not objs:
            return await base(resolve)
        ctx = _begin_waits(objs, _getframe(1), {"any": True} if len(objs) > 1 else None)
        outcome = "error"
        try:
            result = await base(resolve)
            outcome = "ok"
            return result
        except CancelledError:
            outcome = _aio_tasks.cancel_outcome(ctx[1])
            raise
        except BaseException as exc:
            outcome = "timeout" if _timed_out(exc, self._todo) else "ok"
            raise
        finally:
            _end_waits(ctx, objs, outcome)


def _create_future(self: Any) -> Any:
    if _core.ON:
        f = _getframe(1)
        code = f.f_code
        if code is _SHIELD_CODE:
            return _shield_future(self, f)
        kind = _kind_by_code.get(id(code))
        if kind is None:
            kind = _code_kind(code)
        if kind == _aio_sync._USER:
            fut = Future(loop=self)
            _core.define(fut, "resource", "asyncio.Future", 2)
            return fut
    return _orig_create_future(self)


def _patch(wait_fn: Any, as_completed_fn: Any, as_completed_iter: Any) -> None:
    import asyncio

    for mod in (tasks, asyncio):
        mod.wait = wait_fn
        mod.as_completed = as_completed_fn
        if _WAIT_FOR_CALLBACKS:
            mod.wait_for = wait_for if wait_fn is wait else _orig_wait_for
    if as_completed_iter is not None:
        tasks._AsCompletedIterator = as_completed_iter


def install() -> None:
    """Make new tasks and user futures traceable while awaited."""
    if not SUPPORTED:
        return
    _aio_tasks.TASK_CLASS = Task
    base_events.BaseEventLoop.create_future = _create_future
    tasks._GatheringFuture = GatheringFuture
    _patch(wait, as_completed if _AsCompletedIterator is None else _orig_as_completed,
           AsCompletedIterator if _AsCompletedIterator is not None else None)
    if _taskgroups is not None:
        _taskgroups.TaskGroup.__aexit__ = _taskgroup_aexit


def uninstall() -> None:
    """Back to plain tasks and futures (existing ones keep working, silently)."""
    _aio_tasks.TASK_CLASS = None
    base_events.BaseEventLoop.create_future = _orig_create_future
    tasks._GatheringFuture = _OrigGatheringFuture
    _patch(_orig_wait, _orig_as_completed, _AsCompletedIterator)
    if _taskgroups is not None:
        _taskgroups.TaskGroup.__aexit__ = _orig_tg_aexit
