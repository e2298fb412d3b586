"""Identity of asyncio tasks: ids, parents, loops, creation sites and ends.

Every task gets a :class:`TaskRec` (its recording object, stored on the task as
``_ls_rec``) when it is created, or when the recorder first meets it (tasks created
before recording started or by code that builds ``Task`` objects directly).
Creation is seen by wrapping ``BaseEventLoop.create_task`` (so user task factories
keep working untouched) and, for loops of other libraries (uvloop), by a task
factory that wraps theirs.  A task's end is recorded by a done callback.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import weakref
from asyncio import base_events, events
from typing import Any

from . import _aio_held, _core
from ._core import current_state, mono_ns, site_id

_get_running_loop = events._get_running_loop
try:
    # The running task of each loop: asyncio's own dict, which its C code keeps too
    # (3.10-3.13). Two C calls, and no RuntimeError outside a loop.
    _current_tasks_get = asyncio.tasks._current_tasks.get
except AttributeError:  # pragma: no cover - an asyncio without that dict
    def _current_tasks_get(_loop: Any) -> Any:
        try:
            return asyncio.current_task()
        except RuntimeError:
            return None


def _c_current_task() -> Any:
    return _current_tasks_get(_get_running_loop())

_orig_create_task = base_events.BaseEventLoop.create_task
_orig_policy_set_loop = events.BaseDefaultEventLoopPolicy.set_event_loop
_orig_set_running_loop = events._set_running_loop
try:  # asyncio.Runner (3.11+): runs loops of other libraries (uvloop.run) too
    from asyncio import runners as _runners

    _orig_runner_lazy_init = _runners.Runner._lazy_init
except (ImportError, AttributeError):
    _runners = None
    _orig_runner_lazy_init = None
_WAIT_FOR_CODE = getattr(asyncio.tasks.wait_for, "__code__", None)

try:
    from asyncio import timeouts as _timeouts

    _orig_on_timeout = _timeouts.Timeout._on_timeout
    _EXPIRING = _timeouts._State.EXPIRING
except (ImportError, AttributeError):  # Python 3.10
    _timeouts = None
    _orig_on_timeout = None
    _EXPIRING = None

_next_loop_id = itertools.count(1).__next__
_loop_ids: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_side_recs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tasks without a __dict__


class TaskRec:
    """The recording object of one task: its id and its ``task`` definition."""

    # The parent is held weakly, with its definition (a dict of plain values): a
    # chain of tasks each creating the next must not stay alive through its recs.
    __slots__ = ("_ls_id", "_def", "task_ref", "parent_ref", "parent_def", "expiring",
                 "pending", "__weakref__")

    def __init__(self, task: Any, parent: TaskRec | None, th: int, loop: Any,
                 site: int) -> None:
        self._ls_id = _core.next_id()
        self.parent_ref = weakref.ref(parent) if parent is not None else None
        self.parent_def = parent._def if parent is not None else None
        self.expiring = None  # an asyncio.timeout() that is cancelling this task
        self.pending = None   # (resource, site) of a wait whose end is recorded lazily
        try:
            self.task_ref = weakref.ref(task)
        except TypeError:
            self.task_ref = None
        try:
            name = task.get_name()
        except Exception:
            name = f"task-{self._ls_id}"
        self._def = {"k": "task", "id": self._ls_id, "name": str(name),
                     "parent": parent._ls_id if parent is not None else None,
                     "th": th, "loop": loop_id(loop), "site": site or None, "ts": mono_ns()}
        _add_coro(self._def, task)

    @property
    def parent(self) -> TaskRec | None:
        """The parent task's rec while it is alive."""
        return self.parent_ref() if self.parent_ref is not None else None

    @property
    def _ls_deps(self) -> tuple:
        if self.parent_def is None:
            return ()
        parent = self.parent_ref()
        # A parent that is gone is defined from the definition kept here.
        return (parent if parent is not None else _DefinedBefore(self.parent_def),)

    def _ls_record(self) -> dict:
        task = self.task_ref() if self.task_ref is not None else None
        if task is not None:  # pick up a set_name() done before the definition is written
            try:
                self._def["name"] = str(task.get_name())
            except Exception:
                pass
        return self._def

    def __repr__(self) -> str:
        return f"<TaskRec #{self._ls_id} {self._def['name']!r}>"


def _add_coro(definition: dict, task: Any) -> None:
    """Name the task's coroutine in its definition (``coro``: its qualname,
    ``coro_site``: where its function is defined), so that a task the program did
    not name can be shown as ``place_order()`` rather than ``Task-3``."""
    try:
        coro = task.get_coro()
        qualname = getattr(coro, "__qualname__", None)
        if not isinstance(qualname, str):
            return
        definition["coro"] = qualname
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is not None:
            definition["coro_site"] = _core.place_site(code.co_filename, code.co_firstlineno,
                                                       code.co_name)
    except Exception:
        pass


class _DefinedBefore:
    """Stands for a finished task in the writer: its kept definition."""

    __slots__ = ("_ls_id", "_def")

    def __init__(self, definition: dict) -> None:
        self._ls_id = definition["id"]
        self._def = definition

    def _ls_record(self) -> dict:
        return self._def


def loop_id(loop: Any) -> int | None:
    """A small integer naming ``loop``, unique in the run."""
    if loop is None:
        return None
    try:
        lid = _loop_ids.get(loop)
        if lid is None:
            lid = _loop_ids[loop] = _next_loop_id()
        return lid
    except TypeError:  # loop type without weak references
        return id(loop)


def rec_of(task: Any) -> TaskRec | None:
    """The recording object of ``task`` (made on first sight), or None."""
    if task is None:
        return None
    try:
        return task._ls_rec
    except AttributeError:
        pass
    rec = _side_recs.get(task)
    if rec is None:
        rec = _adopt(task, None, 0)
    return rec


def current() -> TaskRec | None:
    """The running task's recording object, or None outside a task.

    Installed as ``_core.current_task_id``: called on the hot path of every traced
    operation on a thread that runs an event loop."""
    task = _current_tasks_get(_get_running_loop())
    if task is None:
        return None
    try:
        return task._ls_rec
    except AttributeError:
        return rec_of(task)


def _adopt(task: Any, parent: TaskRec | None, site: int) -> TaskRec:
    """Give ``task`` its recording object and watch for its end."""
    st = current_state()
    try:
        loop = task.get_loop()
    except Exception:
        loop = None
    rec = TaskRec(task, parent, st.tid, loop, site)
    try:
        task._ls_rec = rec
    except (AttributeError, TypeError):
        try:
            _side_recs[task] = rec
        except TypeError:
            pass
    try:
        if not task.done():
            task.add_done_callback(_task_done)
        else:
            _record_end(task, rec)
    except Exception:
        pass
    if loop is not None and not isinstance(loop, base_events.BaseEventLoop):
        _hook_foreign_loop(loop)
    return rec


def _task_done(task: Any) -> None:
    if not _core.ON:
        return
    try:
        rec = task._ls_rec
    except AttributeError:
        rec = _side_recs.get(task)
    if rec is not None:
        _record_end(task, rec)


def _record_end(task: Any, rec: TaskRec) -> None:
    if task.cancelled():
        outcome = "cancelled"
    elif getattr(task, "_exception", None) is not None:  # exception() would mark it retrieved
        outcome = "failed"
    else:
        outcome = "done"
    st = current_state()
    try:  # a set_name() after creation: the last name wins
        name = str(task.get_name())
        if name != rec._def["name"]:
            rec._def["name"] = name
            _core.append_event(st, "name", rec, 0, None, {"name": name})
    except Exception:
        pass
    _core.append_event(st, "end", rec, 0, rec, {"outcome": outcome})


def on_created(task: Any, loop: Any) -> None:
    """Record the creation of ``task`` by the calling code (parent = the running task)."""
    if not _core.ON:
        return
    try:
        if getattr(task, "_ls_rec", None) is not None:
            return
        st = current_state()
        parent = None
        try:
            if events._get_running_loop() is loop:
                st.aio = True
                parent = current()
        except Exception:
            pass
        if parent is not None and _made_by_wait_for(sys._getframe(1)):
            # wait_for(coro, t) of Python < 3.12 runs coro in a helper task while the
            # caller waits: one flow of control (3.12+ runs it in the caller's task),
            # so the helper's events carry the caller's id and it gets no record.
            task._ls_rec = parent
            return
        _adopt(task, parent, site_id(2))
    except Exception:
        pass


def fallback_site(rec: TaskRec | None) -> int:
    """Site for an operation whose task runs no user frame (the coroutine was handed
    straight to create_task or wait_for): where the task was created, or for
    wait_for's helper task, where the waiting task is suspended (the wait_for call)."""
    if rec is None:
        return 0
    try:
        task = rec.task_ref() if rec.task_ref is not None else None
        if task is not None and task is not _c_current_task():
            frame = None
            coro = task.get_coro()
            for _ in range(100):
                if coro is None:
                    break
                f = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                if f is not None and not _core._is_library(f.f_code):
                    frame = f
                coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
            if frame is not None:
                code, line = frame.f_code, frame.f_lineno
                lines = _core.lines_for(code)
                sid = lines.get(line)
                return sid if sid is not None else _core._new_site(frame, code, line, lines)
    except Exception:
        pass
    return rec._def["site"] or 0


def _made_by_wait_for(f: Any) -> bool:
    """True when the task being created comes from ``asyncio.wait_for`` (the frames
    between here and it are the recorder's and asyncio's own)."""
    for _ in range(8):
        if f is None:
            return False
        code = f.f_code
        if code is _WAIT_FOR_CODE:
            return True
        if not _core._is_library(code):
            return False
        f = f.f_back
    return False


# Set by _aio_await while recording (Python 3.10-3.13): the Task subclass whose awaiting
# is traced, made here when the loop has no user task factory.
TASK_CLASS: Any = None


def _create_task(self: Any, coro: Any, **kwargs: Any) -> Any:
    cls = TASK_CLASS
    if cls is not None and self._task_factory is None and _core.ON:
        # BaseEventLoop.create_task of Python 3.10-3.13 (the branch without a task
        # factory is the same in all four), with the traced Task class.
        self._check_closed()
        task = cls(coro, loop=self, **kwargs)
        if task._source_traceback:
            del task._source_traceback[-1]
        on_created(task, self)
        return task
    task = _orig_create_task(self, coro, **kwargs)
    if _core.ON:
        tb = getattr(task, "_source_traceback", None)
        if tb and tb[-1].filename == __file__:
            del tb[-1]
        on_created(task, self)
    return task


class TracingTaskFactory:
    """Task factory put on loops that do not derive from ``BaseEventLoop`` (uvloop);
    it calls the loop's previous factory, if any, and records the new task."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, loop: Any, coro: Any, **kwargs: Any) -> Any:
        if self.inner is None:
            task = asyncio.Task(coro, loop=loop, **kwargs)
        else:
            task = self.inner(loop, coro, **kwargs)
        on_created(task, loop)
        return task


def _hook_foreign_loop(loop: Any) -> None:
    try:
        factory = loop.get_task_factory()
        if not isinstance(factory, TracingTaskFactory):
            loop.set_task_factory(TracingTaskFactory(factory))
    except Exception:
        pass


def _set_running_loop(loop: Any) -> None:
    _orig_set_running_loop(loop)
    if _core.ON:
        try:
            if loop is None:
                # No state registered for this: a forked child's asyncio hook (3.12+)
                # resets the loop, and registering would start the writer thread there.
                st = _core.bound_state()
                if st is not None:
                    st.aio = False
            else:
                current_state().aio = True
                if not isinstance(loop, base_events.BaseEventLoop):
                    _hook_foreign_loop(loop)
        except Exception:
            pass


def _policy_set_event_loop(self: Any, loop: Any) -> None:
    # asyncio.set_event_loop(loop) then loop.run_until_complete(main()): how uvloop
    # runs on Python 3.10 (no asyncio.Runner): hook the loop before it makes tasks.
    _orig_policy_set_loop(self, loop)
    if _core.ON and loop is not None and not isinstance(loop, base_events.BaseEventLoop):
        _hook_foreign_loop(loop)


def _runner_lazy_init(self: Any) -> None:
    _orig_runner_lazy_init(self)
    if _core.ON:
        loop = getattr(self, "_loop", None)
        if loop is not None and not isinstance(loop, base_events.BaseEventLoop):
            _hook_foreign_loop(loop)  # before Runner.run creates the main task


def _on_timeout(self: Any) -> None:
    _orig_on_timeout(self)
    try:
        rec = rec_of(self._task) if _core.ON else None
        if rec is not None:
            rec.expiring = weakref.ref(self)  # (a Timeout holds its task)
    except Exception:
        pass


def cancel_outcome(rec: TaskRec | None) -> str:
    """``timeout`` when the cancellation of the running task comes from an expiring
    ``asyncio.timeout()`` around it or from ``asyncio.wait_for`` giving up on it,
    else ``cancelled``.  Only called when a wait ends in CancelledError."""
    if rec is None:
        return "cancelled"
    try:
        ref = rec.expiring
        if ref is not None:
            tm = ref()
            if tm is not None and tm._state is _EXPIRING:
                return "timeout"
            rec.expiring = None
        if _WAIT_FOR_CODE is None:
            return "cancelled"
        # wait_for(coro) (Python < 3.12) runs coro in a helper task and cancels it
        # when time is up: find the wait_for frame, suspended in the task that waits
        # (rec's own task when the helper carries rec, as set up by on_created).
        task = _c_current_task()
        for owner in (rec, rec.parent):
            otask = owner.task_ref() if owner is not None and owner.task_ref else None
            if otask is not None and otask is not task and task is not None:
                outcome = _wait_for_outcome(otask, task)
                if outcome is not None:
                    return outcome
    except Exception:
        pass
    return "cancelled"


def _wait_for_outcome(waiting: Any, helper: Any) -> str | None:
    """If task ``waiting`` is inside ``wait_for`` on ``helper``: timeout or cancelled."""
    coro = waiting.get_coro()
    for _ in range(100):
        if coro is None:
            return None
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is _WAIT_FOR_CODE:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is None or frame.f_locals.get("fut") is not helper:
                return None
            waiter = frame.f_locals.get("waiter")
            return "timeout" if waiter is None or not waiter.cancelled() else "cancelled"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return None


def install() -> None:
    """Hook task creation and loop start; make the current task known to ``_core``."""
    base_events.BaseEventLoop.create_task = _create_task
    events._set_running_loop = _set_running_loop
    asyncio._set_running_loop = _set_running_loop
    if _timeouts is not None:
        _timeouts.Timeout._on_timeout = _on_timeout
    if _runners is not None:
        _runners.Runner._lazy_init = _runner_lazy_init
    events.BaseDefaultEventLoopPolicy.set_event_loop = _policy_set_event_loop
    _core.current_task_id = current
    _aio_held.install()
    try:
        loop = events._get_running_loop()
        if loop is not None:  # started from inside a running loop
            current_state().aio = True
            if not isinstance(loop, base_events.BaseEventLoop):
                _hook_foreign_loop(loop)
    except Exception:
        pass


def uninstall() -> None:
    """Undo :func:`install` (tasks keep their ids; no new records are made)."""
    base_events.BaseEventLoop.create_task = _orig_create_task
    events._set_running_loop = _orig_set_running_loop
    asyncio._set_running_loop = _orig_set_running_loop
    if _timeouts is not None:
        _timeouts.Timeout._on_timeout = _orig_on_timeout
    if _runners is not None:
        _runners.Runner._lazy_init = _orig_runner_lazy_init
    events.BaseDefaultEventLoopPolicy.set_event_loop = _orig_policy_set_loop
    _core.current_task_id = None
    _aio_held.uninstall()


__all__ = ["TaskRec", "TracingTaskFactory", "current", "rec_of", "on_created",
           "cancel_outcome", "loop_id", "install", "uninstall"]
