"""Thread-pool jobs as actors: each ``concurrent.futures`` work item is a ``job`` segment.

One worker thread of a ``ThreadPoolExecutor`` (also behind ``loop.run_in_executor`` and
``asyncio.to_thread``) runs many jobs that have nothing to do with each other: under
load they run on different workers. The submission is a ``signal`` (``sig: submit``) on
the job's segment by the submitter, at the user's ``submit`` line; the run is
``segment-begin`` / ``segment-end`` in the worker; ``Future.result()`` on a future
already done is a ``pass`` (the result was set before it is read). Installed when recording starts with
``concurrent.futures.thread`` imported, else when the first worker thread starts (so
recording never imports it).
"""

from __future__ import annotations

import functools
import sys
import types

from . import _core

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs milliseconds at start-up)
    from typing import Any

_MODULE = "concurrent.futures.thread"
_originals: tuple | None = None

# fn -> its job_name(), for plain functions (a pool runs the same few many times);
# cleared when full, so it keeps at most _NAMES_MAX functions alive.
_names: dict = {}
_NAMES_MAX = 256
_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType)  # (hashable, no user __hash__)
# A submission's extra fields: one dict for all (nothing changes an event's fields),
# not one per work item alive until the writer takes the event.
_SUBMIT = {"sig": "submit"}


def _name_of(fn: Any) -> str:
    """job_name(fn), remembered for plain functions."""
    cached = type(fn) in _FUNCTION_TYPES
    name = _names.get(fn) if cached else None
    if name is None:
        name = job_name(fn)
        if cached:
            if len(_names) >= _NAMES_MAX:
                _names.clear()
            _names[fn] = name
    return name


class _PyJob:
    """The segment of one work item (pure Python; see _speedups.Job)."""

    __slots__ = ("_ls_id", "_def")

    def __init__(self, fn: Any) -> None:
        self._ls_id = _core.next_id()
        name = _name_of(fn)
        self._def = {"k": "segment", "id": self._ls_id, "kind": "job", "name": name}

    def _ls_record(self) -> dict:
        return self._def


if _core.speedups is not None:
    _CJob = _core.speedups.Job
    _next_id = _core.next_id

    def Job(fn: Any) -> Any:  # noqa: N802  (stands for the class)
        """The segment of one work item: a C object the cyclic GC does not count."""
        return _CJob(_next_id(), _name_of(fn))
else:
    Job = _PyJob


def _is_context(obj: Any) -> bool:
    """Whether ``obj`` is a ``contextvars.Context`` (not imported for it: a program
    with a Context has imported it)."""
    cv = sys.modules.get("_contextvars")
    return cv is not None and isinstance(obj, cv.Context)


def job_name(fn: Any) -> str:
    """``module.qualname`` of the function a work item runs (through partials and the
    ``Context.run`` that ``asyncio.to_thread`` wraps it in)."""
    try:
        for _ in range(8):
            if isinstance(fn, functools.partial):
                inner = fn.func
                if getattr(inner, "__self__", None) is not None and \
                        _is_context(inner.__self__) and fn.args:
                    fn = fn.args[0]
                else:
                    fn = inner
            else:
                break
        name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__qualname__
        module = getattr(fn, "__module__", None)
        return f"{module}.{name}" if module and module not in ("__main__", "builtins") else str(name)
    except Exception:
        return "job"


def _traced_init(self: Any, future: Any, fn: Any, args: Any, kwargs: Any) -> None:
    _originals[0](self, future, fn, args, kwargs)
    if _core.ON:
        try:
            job = self._ls_job = Job(fn)
            _core.emit_here("signal", job, 2, _SUBMIT)
        except Exception:
            pass


def _traced_run(self: Any) -> Any:
    if not _core.ON:
        return _originals[1](self)
    job = getattr(self, "_ls_job", None)
    if job is None:  # submitted before the patch (the pool's first job) or while off
        try:
            job = self._ls_job = Job(self.fn)
        except Exception:
            return _originals[1](self)
    _core.emit_here("segment-begin", job, -1)
    try:
        return _originals[1](self)
    finally:
        _core.emit_here("segment-end", job, -1)


def _passed(future: Any) -> None:
    """``result()``/``exception()`` of a future already done: a ``pass`` on its condition
    (the ``notify_all`` of ``set_result`` is the signal it follows)."""
    if _core.ON and future._state == "FINISHED":
        cond = getattr(future, "_condition", None)
        if hasattr(cond, "_ls_id"):
            _core.emit_here("pass", cond, 3)


if _core.speedups is not None:
    _passed = _core.speedups.job_passed  # noqa: F811  (the same in C)


def _traced_result(self: Any, timeout: float | None = None) -> Any:
    _passed(self)
    return _originals[2](self, timeout)


def _traced_exception(self: Any, timeout: float | None = None) -> Any:
    _passed(self)
    return _originals[3](self, timeout)


def install() -> None:
    """Patch the work items if ``concurrent.futures.thread`` is imported (idempotent)."""
    global _originals
    mod = sys.modules.get(_MODULE)
    if _originals is not None or mod is None:
        return
    item = getattr(mod, "_WorkItem", None)
    future = getattr(sys.modules.get("concurrent.futures._base"), "Future", None)
    if item is None or future is None:
        return
    _originals = (item.__init__, item.run, future.result, future.exception)
    if _core.speedups is not None:  # the same in C: no recorder frame per job
        _core.speedups.set_job_hooks(item.__init__, item.run, _names, _name_of, _SUBMIT,
                                     future.result, future.exception)
        item.__init__ = _core.typed(item, _core.speedups.job_init)
        item.run = _core.typed(item, _core.speedups.job_run)
        future.result = _core.typed(future, _core.speedups.job_result)
        future.exception = _core.typed(future, _core.speedups.job_exception)
    else:
        item.__init__ = _traced_init
        item.run = _traced_run
        future.result = _traced_result
        future.exception = _traced_exception


def runs_pool_worker(thread: Any) -> bool:
    """Whether ``thread`` runs a ThreadPoolExecutor's worker (recorder._speedups
    thread_start says the same)."""
    return getattr(getattr(thread, "_target", None), "__module__", None) == _MODULE


def uninstall() -> None:
    global _originals
    mod = sys.modules.get(_MODULE)
    if _originals is not None and mod is not None:
        mod._WorkItem.__init__, mod._WorkItem.run = _originals[:2]
        future = sys.modules["concurrent.futures._base"].Future
        future.result, future.exception = _originals[2:]
    _originals = None
