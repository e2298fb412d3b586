"""Traced replacements for the asyncio synchronisation primitives and queues.

Each class subclasses the asyncio original and records around it: a lock or
semaphore records ``acquire`` (at once), or ``wait`` then ``acquire`` / ``cancel`` /
``timeout``, and ``release``; events, conditions and queues record ``wait-begin`` /
``wait-end`` by the waiting task and ``signal`` by the task that can end the wait.
The fast paths add no awaits and make no scheduling decisions of their own: the
decision to wait is the original's, taken with the same test on the same state.
"""

from __future__ import annotations

import sys
from asyncio import events, exceptions, locks, queues, tasks
from typing import Any

from . import _aio_tasks, _core
from ._core import current_state, define, mono_ns

CancelledError = exceptions.CancelledError
_cancel_outcome = _aio_tasks.cancel_outcome
_current_task = _aio_tasks.current

_OrigLock = locks.Lock
_OrigEvent = locks.Event
_OrigCondition = locks.Condition
_OrigSemaphore = locks.Semaphore
_OrigBoundedSemaphore = locks.BoundedSemaphore
_OrigQueue = queues.Queue
_OrigLifoQueue = queues.LifoQueue
_OrigPriorityQueue = queues.PriorityQueue

_orig_lock_acquire = _OrigLock.acquire
_orig_sem_acquire = _OrigSemaphore.acquire
_orig_event_wait = _OrigEvent.wait
_orig_cond_wait = _OrigCondition.wait
_orig_queue_get = _OrigQueue.get
_orig_queue_put = _OrigQueue.put
_orig_queue_join = _OrigQueue.join

# Condition.wait is re-implemented (to put wait-begin/wait-end between the release
# and the re-acquire of its lock) for the versions whose code it mirrors.
_EXACT_COND_WAIT = sys.version_info[:2] in ((3, 10), (3, 11), (3, 12))
_COND_WAIT_313 = sys.version_info[:2] == (3, 13)


_getframe = sys._getframe
_HANDLE_RUN = events.Handle._run.__code__
_QUEUE_INIT = _OrigQueue.__init__.__code__
# The code that makes as_completed's internal queue (untraced: awaiting an item of
# as_completed is recorded as a wait on the futures themselves, see _aio_await).
_AS_COMPLETED_CODE = (tasks._AsCompletedIterator.__init__ if hasattr(tasks, "_AsCompletedIterator")
                      else tasks.as_completed).__code__


def _loop_dirs() -> tuple[str, ...]:
    """Directories of third-party event loops whose frames run tasks (uvloop)."""
    import importlib.util
    import os

    dirs = []
    for name in ("uvloop",):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            dirs.append(os.path.dirname(spec.origin) + os.sep)
    return tuple(dirs)


_LOOP_DIRS = _loop_dirs()


_USER, _LIBRARY, _LOOP = 1, 0, 2
# Both keyed by id(code), forgotten when the code object is freed (see _core:
# watch_code; equal code objects from two files must not share entries).
_kind_by_code: dict[int, int] = {}
# id(code) -> {instruction offset -> site id}: the hot path's cache (f_lineno is slow).
_site_by_lasti: dict[int, dict] = {}
_core.code_caches += [_kind_by_code, _site_by_lasti]


def _code_kind(code: Any) -> int:
    if code is _HANDLE_RUN or (_LOOP_DIRS and code.co_filename.startswith(_LOOP_DIRS)):
        kind = _LOOP
    else:
        kind = _LIBRARY if _core._is_library(code) else _USER
    _core.watch_code(code)
    _kind_by_code[id(code)] = kind
    return kind


def _site_from(f: Any, task: Any) -> int:
    """Call site: the first frame from ``f`` outward outside the recorder and the
    libraries.  When the task's coroutine chain holds no user frame
    (``wait_for(lock.acquire(), 1)`` runs ``acquire`` as a task of its own), the site
    is where that task was created rather than the event loop's caller."""
    kind_get = _kind_by_code.get
    while f is not None:
        code = f.f_code
        kind = kind_get(id(code))
        if kind is None:
            kind = _code_kind(code)
        if kind == _USER:
            lines = _core.lines_for(code)
            line = f.f_lineno
            sid = lines.get(line)
            if sid is None:
                sid = _core._new_site(f, code, line, lines)
            by_lasti = _site_by_lasti.get(id(code))
            if by_lasti is None:
                _core.watch_code(code)
                by_lasti = _site_by_lasti[id(code)] = {}
            by_lasti[f.f_lasti] = sid
            return sid
        if kind == _LOOP:
            break
        f = f.f_back
    return _aio_tasks.fallback_site(task)


def _site(task: Any) -> int:
    """Call site of the traced operation that called this."""
    return _site_from(_getframe(2), task)


_current_tasks_get = _aio_tasks._current_tasks_get
_get_running_loop = events._get_running_loop

_rec_of = _aio_tasks.rec_of


def _c_fast_path() -> Any:
    """The C accelerator's recording of an ``async with`` acquire/release (task,
    site and append in one call), or None in pure Python."""
    sp = _core.speedups
    if sp is None:
        return None
    try:
        current = getattr(tasks, "_current_tasks", None)
        sp.configure_aio(current if isinstance(current, dict) else None, _get_running_loop,
                         _aio_tasks._c_current_task, _rec_of, _site_by_lasti, _site_from,
                         _aio_tasks.current)
    except Exception:
        return None
    return sp.aio_event


_c_aio_event = _c_fast_path()


def _ctx() -> tuple[Any, Any]:
    """(thread state, current task's recording object) of the caller."""
    st = current_state()
    t = _current_tasks_get(_get_running_loop())
    if t is None:
        return st, None
    try:
        task = t._ls_rec
    except AttributeError:
        task = _rec_of(t)
    if not st.aio:
        st.aio = True  # a loop started before recording did: let threading see the task
    return st, task


_rec = _core.append_event


def _wait_over(st: Any, res: Any, site: int, task: Any, outcome: str) -> None:
    """Record the end of a wait left pending on ``task`` (if it is still pending)."""
    if task is None:
        _rec(st, "wait-end", res, site, None, {"outcome": outcome})
    elif task.pending is not None:
        task.pending = None
        _rec(st, "wait-end", res, site, task, {"outcome": outcome})


def _end_pending(st: Any, task: Any, res: Any) -> None:
    """A wait of ``task`` on ``res`` is satisfied: record its end now, before the
    signal the task is about to make."""
    if task is not None:
        p = task.pending
        if p is not None and p[0] is res:
            task.pending = None
            _rec(st, "wait-end", res, p[1], task, {"outcome": "ok"})


class _TracedType(type):
    """Metaclass that keeps ``isinstance(x, asyncio.Lock)`` true for primitives made
    before recording started (they are instances of the original class)."""

    def __instancecheck__(cls, obj: Any) -> bool:
        if type.__instancecheck__(cls, obj):
            return True
        orig = cls.__dict__.get("_ls_orig")
        return orig is not None and isinstance(obj, orig)

    def __subclasscheck__(cls, sub: Any) -> bool:
        if type.__subclasscheck__(cls, sub):
            return True
        orig = cls.__dict__.get("_ls_orig")
        return orig is not None and issubclass(sub, orig)


class Lock(_OrigLock, metaclass=_TracedType):
    """A traced ``asyncio.Lock``."""

    _ls_orig = _OrigLock

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        define(self, "lock", "asyncio.Lock", 3, reentrant=False)
        # async with takes the inlined path unless a subclass has its own acquire/release
        cls = type(self)
        self._ls_inline = (cls.acquire is _traced_lock_acquire
                           and cls.release is _traced_lock_release)

    def _ls_record(self) -> dict:
        return self._ls_def

    async def acquire(self) -> bool:
        if not _core.ON:
            return await _orig_lock_acquire(self)
        st, task = _ctx()
        site = _site(task)
        # The original's own test for "free": taken here without waiting.
        if not self._locked and (self._waiters is None
                                 or all(w.cancelled() for w in self._waiters)):
            self._locked = True
            _rec(st, "acquire", self, site, task)
            return True
        await self._ls_wait(st, task, site)
        return True

    async def _ls_wait(self, st: Any, task: Any, site: int) -> None:
        _rec(st, "wait", self, site, task)
        try:
            await _orig_lock_acquire(self)
        except CancelledError:
            _rec(st, "timeout" if _cancel_outcome(task) == "timeout" else "cancel",
                 self, site, task)
            raise
        _rec(st, "acquire", self, site, task)

    async def __aenter__(self) -> None:
        # ``async with lock`` is the common case: the acquire is done inline (one
        # coroutine fewer than the original's __aenter__ -> acquire), with the lookups
        # of _ctx and _site written out.
        if not (self._ls_inline and _core.ON):
            await self.acquire()
            return None
        waiters = self._waiters
        free = not self._locked and (not waiters or all(w.cancelled() for w in waiters))
        if free and _c_aio_event is not None:
            self._locked = True
            try:  # the task, site and append in C
                _c_aio_event("acquire", self, True)
            except Exception:  # nothing of ours may reach the program
                pass
            return None
        t = _current_tasks_get(_get_running_loop())
        if t is None:
            task = None
        else:
            try:
                task = t._ls_rec
            except AttributeError:
                task = _rec_of(t)
        f = _getframe(1)
        by_lasti = _site_by_lasti.get(id(f.f_code))
        site = by_lasti.get(f.f_lasti) if by_lasti is not None else None
        if site is None:
            site = _site_from(f, task)
        st = current_state()
        if free:
            self._locked = True
            if _core._buffered < _core._limit and st.gap is None:  # append_event inlined
                st.buf.append((mono_ns(), "acquire", self, site, task))
                _core._buffered += 1
                if task is not None and _core.task_acquired is not None:
                    _core.task_acquired(self, task, site)
            else:
                _core.append_slow(st, "acquire", self, site, task)
            return None
        if task is not None and not st.aio:
            st.aio = True  # (as _ctx does)
        await self._ls_wait(st, task, site)
        return None

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self._ls_inline or not self._locked:
            self.release()  # (raises like the original on an unlocked lock)
            return
        self._locked = False
        if self._waiters:  # (the original's own first test in _wake_up_first)
            self._wake_up_first()
        if _core.ON:
            if _c_aio_event is not None:
                try:
                    _c_aio_event("release", self, False)
                except Exception:
                    pass
                return
            t = _current_tasks_get(_get_running_loop())
            if t is None:
                task = None
            else:
                try:
                    task = t._ls_rec
                except AttributeError:
                    task = _rec_of(t)
            st = current_state()
            if _core._buffered < _core._limit and st.gap is None:  # append_event inlined
                st.buf.append((mono_ns(), "release", self, 0, task))
                _core._buffered += 1
            else:
                _core.append_slow(st, "release", self, 0, task)

    def release(self) -> None:
        _OrigLock.release(self)
        if _core.ON:
            st, task = _ctx()
            _rec(st, "release", self, 0, task)


_traced_lock_acquire = Lock.acquire
_traced_lock_release = Lock.release


class Semaphore(_OrigSemaphore, metaclass=_TracedType):
    """A traced ``asyncio.Semaphore``."""

    _ls_orig = _OrigSemaphore
    _ls_type = "asyncio.Semaphore"

    def __init__(self, value: int = 1, *args: Any, **kwargs: Any) -> None:
        super().__init__(value, *args, **kwargs)
        define(self, "lock", self._ls_type, 3, reentrant=False, value=value)

    def _ls_record(self) -> dict:
        return self._ls_def

    async def acquire(self) -> bool:
        if not _core.ON:
            return await _orig_sem_acquire(self)
        st, task = _ctx()
        site = _site(task)
        if not self.locked():
            self._value -= 1
            _rec(st, "acquire", self, site, task)
            return True
        _rec(st, "wait", self, site, task)
        try:
            await _orig_sem_acquire(self)
        except CancelledError:
            _rec(st, "timeout" if _cancel_outcome(task) == "timeout" else "cancel",
                 self, site, task)
            raise
        _rec(st, "acquire", self, site, task)
        return True

    def release(self) -> None:
        super().release()  # BoundedSemaphore's check runs here
        if _core.ON:
            st, task = _ctx()
            _rec(st, "release", self, 0, task)


class BoundedSemaphore(Semaphore, _OrigBoundedSemaphore, metaclass=_TracedType):
    """A traced ``asyncio.BoundedSemaphore``."""

    _ls_orig = _OrigBoundedSemaphore
    _ls_type = "asyncio.BoundedSemaphore"


class Event(_OrigEvent, metaclass=_TracedType):
    """A traced ``asyncio.Event``: ``wait`` is a wait on it, ``set`` a signal."""

    _ls_orig = _OrigEvent

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        define(self, "resource", "asyncio.Event", 3)

    def _ls_record(self) -> dict:
        return self._ls_def

    def set(self) -> None:
        if _core.ON and not self._value and _getframe(1).f_code is not _QUEUE_INIT:
            st, task = _ctx()
            _rec(st, "signal", self, _site(task), task, {"sig": "set", "n": len(self._waiters)})
        super().set()

    async def wait(self) -> bool:
        if self._value:
            if _core.ON:
                st, task = _ctx()
                _rec(st, "pass", self, _site(task), task)
            return True
        if not _core.ON:
            return await _orig_event_wait(self)
        st, task = _ctx()
        site = _site(task)
        _rec(st, "wait-begin", self, site, task)
        outcome = "error"
        try:
            result = await _orig_event_wait(self)
            outcome = "ok"
            return result
        except CancelledError:
            outcome = _cancel_outcome(task)
            raise
        finally:
            _rec(st, "wait-end", self, site, task, {"outcome": outcome})


class Condition(_OrigCondition, metaclass=_TracedType):
    """A traced ``asyncio.Condition``: ``wait`` is the release of its lock, a wait on
    the condition, and the re-acquire; ``notify`` is a signal."""

    _ls_orig = _OrigCondition

    def __init__(self, lock: Any = None, *args: Any, **kwargs: Any) -> None:
        own_lock = lock is None
        if own_lock:
            lock = Lock()
        super().__init__(lock, *args, **kwargs)
        define(self, "resource", "asyncio.Condition", 3, lock=getattr(lock, "_ls_id", None))
        if own_lock:
            lock._ls_def["owner"] = self._ls_id

    def _ls_record(self) -> dict:
        return self._ls_def

    async def wait(self) -> bool:
        if not _core.ON:
            return await _orig_cond_wait(self)
        if not _EXACT_COND_WAIT:
            if _COND_WAIT_313:
                return await self._ls_wait_313()
            return await self._ls_wait_wrapped()
        if not self.locked():
            raise RuntimeError('cannot wait on un-acquired lock')
        st, task = _ctx()
        site = _site(task)
        self.release()
        _rec(st, "wait-begin", self, site, task)
        outcome = "error"
        try:
            fut = self._get_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
                outcome = "ok"
                return True
            except CancelledError:
                outcome = _cancel_outcome(task)
                raise
            finally:
                self._waiters.remove(fut)
        finally:
            _rec(st, "wait-end", self, site, task, {"outcome": outcome})
            # Must reacquire lock even if wait is cancelled
            cancelled = False
            while True:
                try:
                    await self.acquire()
                    break
                except CancelledError:
                    cancelled = True
            if cancelled:
                raise CancelledError

    async def _ls_wait_313(self) -> bool:
        # Python 3.13's Condition.wait, with the records of the 3.10-3.12 version.
        if not self.locked():
            raise RuntimeError('cannot wait on un-acquired lock')
        st, task = _ctx()
        site = _site_from(_getframe(2), task)
        fut = self._get_loop().create_future()
        self.release()
        _rec(st, "wait-begin", self, site, task)
        outcome = "error"
        try:
            try:
                self._waiters.append(fut)
                try:
                    await fut
                    outcome = "ok"
                    return True
                except CancelledError:
                    outcome = _cancel_outcome(task)
                    raise
                finally:
                    self._waiters.remove(fut)
            finally:
                _rec(st, "wait-end", self, site, task, {"outcome": outcome})
                err = None
                while True:
                    try:
                        await self.acquire()
                        break
                    except CancelledError as e:
                        err = e
                if err is not None:
                    try:
                        raise err  # Re-raise most recent exception instance.
                    finally:
                        err = None  # Break reference cycles.
        except BaseException:
            self._notify(1)
            raise

    async def _ls_wait_wrapped(self) -> bool:
        # Other Python versions: the original wait, bracketed (its release and
        # re-acquire then fall inside the wait).
        if not self.locked():
            return await _orig_cond_wait(self)
        st, task = _ctx()
        site = _site(task)
        _rec(st, "wait-begin", self, site, task)
        outcome = "error"
        try:
            result = await _orig_cond_wait(self)
            outcome = "ok"
            return result
        except CancelledError:
            outcome = _cancel_outcome(task)
            raise
        finally:
            _rec(st, "wait-end", self, site, task, {"outcome": outcome})

    def notify(self, n: int = 1) -> None:
        if _core.ON and self.locked():
            st, task = _ctx()
            _rec(st, "signal", self, _site(task), task, {"sig": "notify", "n": n})
        _OrigCondition.notify(self, n)

    def notify_all(self) -> None:
        if _core.ON and self.locked():
            st, task = _ctx()
            _rec(st, "signal", self, _site(task), task,
                 {"sig": "notify_all", "n": len(self._waiters)})
        _OrigCondition.notify(self, len(self._waiters))


class _Role:
    """One side of a queue that tasks wait on (``not_empty``, ``not_full``)."""

    __slots__ = ("_ls_id", "_ls_def", "_ls_deps")

    def __init__(self, owner: Any, role: str) -> None:
        self._ls_id = _core.next_id()
        self._ls_deps = (owner,)  # the queue's own definition is written first
        od = owner._ls_def
        self._ls_def = {"k": "resource", "id": self._ls_id, "type": od["type"], "name": None,
                        "site": od["site"], "ts": od["ts"], "th": od["th"],
                        "owner": owner._ls_id, "role": role}
        for key in ("expr", "lib", "user_site"):  # a side is named like its queue
            if key in od:
                self._ls_def[key] = od[key]

    def _ls_record(self) -> dict:
        return self._ls_def


class Queue(_OrigQueue, metaclass=_TracedType):
    """A traced ``asyncio.Queue``: a getter waits on its ``not_empty`` side, which
    ``put`` signals; a putter waits on ``not_full``, which ``get`` signals; ``join``
    waits on ``all_tasks_done`` (the queue's internal Event), which ``task_done`` signals."""

    _ls_orig = _OrigQueue
    _ls_type = "asyncio.Queue"

    def __init__(self, maxsize: int = 0, *args: Any, **kwargs: Any) -> None:
        if type(self) is Queue and _getframe(1).f_code is _AS_COMPLETED_CODE:
            self.__class__ = _OrigQueue
            _OrigQueue.__init__(self, maxsize, *args, **kwargs)
            return
        super().__init__(maxsize, *args, **kwargs)
        define(self, "resource", self._ls_type, 3,
               maxsize=maxsize if type(maxsize) in (int, float) else None)
        self._ls_not_empty = _Role(self, "not_empty")
        self._ls_not_full = _Role(self, "not_full")
        fin = getattr(self, "_finished", None)
        fdef = getattr(fin, "_ls_def", None)
        if fdef is not None:
            fin._ls_deps = (self,)
            fdef.update(type=self._ls_type, owner=self._ls_id, role="all_tasks_done",
                        site=self._ls_def["site"])
            for key in ("expr", "lib", "user_site"):  # named like its queue
                fdef.pop(key, None)
                if key in self._ls_def:
                    fdef[key] = self._ls_def[key]

    def _ls_record(self) -> dict:
        return self._ls_def

    async def get(self) -> Any:
        if not self.empty():
            return self.get_nowait()
        if not _core.ON:
            return await _orig_queue_get(self)
        return await self._ls_wait(_orig_queue_get, self._ls_not_empty, None)

    async def put(self, item: Any) -> None:
        if not self.full():
            return self.put_nowait(item)
        if not _core.ON:
            return await _orig_queue_put(self, item)
        return await self._ls_wait(_orig_queue_put, self._ls_not_full, item)

    async def _ls_wait(self, orig: Any, res: Any, item: Any) -> Any:
        st, task = _ctx()
        site = _site(task)
        _rec(st, "wait-begin", res, site, task)
        if task is not None:
            task.pending = (res, site)
        outcome = "error"
        try:
            result = await (orig(self) if res is self._ls_not_empty else orig(self, item))
            outcome = "ok"
            return result
        except CancelledError:
            outcome = _cancel_outcome(task)
            raise
        finally:
            _wait_over(st, res, site, task, outcome)

    def put_nowait(self, item: Any) -> None:
        super().put_nowait(item)
        if _core.ON:
            st, task = _ctx()
            _end_pending(st, task, self._ls_not_full)
            _rec(st, "signal", self._ls_not_empty, _site(task), task,
                 {"sig": "put", "n": len(self._getters)})

    def get_nowait(self) -> Any:
        item = super().get_nowait()
        if _core.ON:
            st, task = _ctx()
            _end_pending(st, task, self._ls_not_empty)
            _rec(st, "signal", self._ls_not_full, _site(task), task,
                 {"sig": "get", "n": len(self._putters)})
        return item

    def task_done(self) -> None:
        super().task_done()
        fin = getattr(self, "_finished", None)
        if _core.ON and hasattr(fin, "_ls_def"):
            st, task = _ctx()
            _rec(st, "signal", fin, _site(task), task, {"sig": "task_done"})


class PriorityQueue(Queue, _OrigPriorityQueue, metaclass=_TracedType):
    """A traced ``asyncio.PriorityQueue``."""

    _ls_orig = _OrigPriorityQueue
    _ls_type = "asyncio.PriorityQueue"


class LifoQueue(Queue, _OrigLifoQueue, metaclass=_TracedType):
    """A traced ``asyncio.LifoQueue``."""

    _ls_orig = _OrigLifoQueue
    _ls_type = "asyncio.LifoQueue"


# name -> (traced class, original, modules that export it)
PATCHED = {
    "Lock": (Lock, _OrigLock, ("asyncio", "asyncio.locks")),
    "Event": (Event, _OrigEvent, ("asyncio", "asyncio.locks")),
    "Condition": (Condition, _OrigCondition, ("asyncio", "asyncio.locks")),
    "Semaphore": (Semaphore, _OrigSemaphore, ("asyncio", "asyncio.locks")),
    "BoundedSemaphore": (BoundedSemaphore, _OrigBoundedSemaphore, ("asyncio", "asyncio.locks")),
    "Queue": (Queue, _OrigQueue, ("asyncio", "asyncio.queues")),
    "PriorityQueue": (PriorityQueue, _OrigPriorityQueue, ("asyncio", "asyncio.queues")),
    "LifoQueue": (LifoQueue, _OrigLifoQueue, ("asyncio", "asyncio.queues")),
}


def install() -> None:
    """Put the traced classes in the ``asyncio`` namespaces."""
    _site_by_lasti.clear()
    _kind_by_code.clear()
    for name, (cls, _orig, modules) in PATCHED.items():
        for mod in modules:
            setattr(sys.modules[mod], name, cls)


def uninstall() -> None:
    """Put the asyncio originals back (traced objects keep working, silently)."""
    for name, (_cls, orig, modules) in PATCHED.items():
        for mod in modules:
            setattr(sys.modules[mod], name, orig)


__all__ = ["Lock", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Queue",
           "PriorityQueue", "LifoQueue", "install", "uninstall"]
