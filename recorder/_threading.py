"""Traced replacements for the ``threading`` primitives, and Thread start/join/end hooks.

``install()`` swaps ``threading.Lock``, ``RLock``, ``Condition``, ``Semaphore`` and
``BoundedSemaphore`` for the classes below, so every primitive created afterwards is
traced, including those that ``Event``, ``Barrier``, ``queue.Queue``,
``concurrent.futures`` and ``logging`` create internally.  ``uninstall()`` puts the
originals back; objects created while recording keep working (and stop recording).
"""

from __future__ import annotations

import _thread
import copyreg
import operator
import sys
import threading
from _weakref import ref as _weakref

from . import _core, _jobs, _naming, _on_import
from ._core import current_state, define, mono_ns, site_id, task_of

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs milliseconds at start-up)
    from typing import Any

_allocate_lock = _thread.allocate_lock
_getframe = sys._getframe
_code_sites_get = _core.code_sites.get
_CRLock = _thread.RLock
_rlock_count = getattr(_CRLock, "_recursion_count", None)  # (the owner's levels)
_RLOCK_ARGS_DEPRECATED = sys.version_info >= (3, 13)  # threading.RLock(*args) warns (gh-102029)
TIMEOUT_MAX = _thread.TIMEOUT_MAX

ORIGINALS = {
    "Lock": threading.Lock,
    "RLock": threading.RLock,
    "Condition": threading.Condition,
    "Semaphore": threading.Semaphore,
    "BoundedSemaphore": threading.BoundedSemaphore,
}
_OrigCondition = threading.Condition
_orig_notify = threading.Condition.notify
_OrigSemaphore = threading.Semaphore
_OrigBoundedSemaphore = threading.BoundedSemaphore
_orig_sem_acquire = threading.Semaphore.acquire
_orig_start = threading.Thread.start
_orig_bootstrap_inner = threading.Thread._bootstrap_inner
_orig_join = threading.Thread.join
_orig_event_wait = threading.Event.wait

# Constructors of library objects that create primitives inside them: the primitive
# records the object as its owner (and a condition takes the object's type).  Keyed
# by id(): hashing a code object hashes its contents, at every primitive created
# (these functions live as long as their modules, so their ids stay theirs).
# queue.Queue's is added when the program imports queue (_queue_imported).
_OWNER_TYPES = {id(threading.Event.__init__.__code__): "threading.Event",
                id(threading.Barrier.__init__.__code__): "threading.Barrier"}
_QUEUE_ROLES = ("not_empty", "not_full", "all_tasks_done")
# Owners whose condition is recorded as the owner itself (no role).
_STANDS_FOR_OWNER = ("threading.Event", "threading.Barrier")


def _renamed(rec: dict, frame: Any) -> None:
    """Name ``rec`` after the line that called the library constructor at ``frame``
    (after recorder frames) instead of after the constructor's own line."""
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    if frame is not None and frame.f_back is not None:
        for key in ("expr", "lib", "user_site"):
            rec.pop(key, None)
        _naming.describe(rec, frame.f_back)


def _owner_of(frame: Any) -> tuple[int | None, str | None, Any]:
    """If ``frame`` is a known library constructor, return (owner id, owner type, owner)."""
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    if frame is None:
        return None, None, None
    otype = _OWNER_TYPES.get(id(frame.f_code))
    if otype is None:
        return None, None, None
    owner = frame.f_locals.get("self")
    if owner is None:
        return None, None, None
    if otype == "queue.Queue":
        otype = "queue." + type(owner).__name__ if type(owner).__module__ == "queue" else otype
    oid = getattr(owner, "_ls_id", None)
    if oid is None:
        try:
            oid = owner._ls_id = _core.next_id()
        except Exception:
            return None, None, None
    return oid, otype, owner


_EVENT_INIT = threading.Event.__init__.__code__
_THREAD_INIT = threading.Thread.__init__.__code__


def _inside_thread_internals(frame: Any) -> bool:
    """True when a primitive is being created for a Thread's own ``_started`` Event:
    its start handshake is recorded as ``start``/``end``/``join`` instead."""
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    return (frame is not None and frame.f_code is _EVENT_INIT
            and frame.f_back is not None and frame.f_back.f_code is _THREAD_INIT)


_append = _core.append_event
_emit_here = _core.emit_here  # emit(op, obj, site_id(depth), extra) in one call


def _record(st: Any, op: str, obj: Any, site: int) -> None:
    try:
        _append(st, op, obj, site, task_of(st) if st.aio else None)
    except Exception:
        pass


_state = current_state


def _check_acquire_args(blocking: Any, timeout: Any) -> None:
    """Raise exactly as the original ``acquire`` does for these arguments (which
    differ by version: 3.11 wants an int ``blocking``, 3.13 any truth value): the
    original itself checks them, on a fresh lock, which being free never blocks."""
    _allocate_lock().acquire(blocking, timeout)


def _inner_level(lock: Any, after_acquire: bool) -> bool:
    """Whether the acquire (``after_acquire``) or release of a traced lock's inner
    lock ``lock`` just done is an RLock's inner level, which is not recorded: its
    owner took it again, or gave back a level and holds it still.  Inner levels
    cannot block, order nothing and end no hold (a hold runs from the outermost
    acquire to the release that frees the lock); the C accelerator leaves them
    out the same way (rlock_inner_level).  Where the RLock does not tell its count,
    they are recorded, as readers expect they may be."""
    return (lock.__class__ is _CRLock and _rlock_count is not None
            and _rlock_count(lock) >= (2 if after_acquire else 1))


def _py_acquire(self: Any, blocking: bool = True, timeout: float = -1) -> bool:
    # The hot path (Lock and RLock), kept flat: every call and lookup here counts.
    if timeout == -1 and blocking is True and self._lock.acquire(False):
        if _core.ON and not _inner_level(self._lock, True):
            try:  # (free unless raised) nothing of ours may reach the program
                st = current_state()
                f = _getframe(1)
                by = _code_sites_get(id(f.f_code))
                sid = by[1].get(f.f_lasti) if by is not None and by[1] is not None \
                    else None
                if _core._buffered < _core._limit and st.gap is None:  # append_event inlined
                    task = task_of(st) if st.aio else None
                    sid = sid or site_id(2)
                    st.buf.append((mono_ns(), "acquire", self, sid, task))
                    _core._buffered += 1
                    if task is not None and _core.task_acquired is not None:
                        _core.task_acquired(self, task, sid)
                else:
                    _core.append_slow(st, "acquire", self, sid or site_id(2),
                                      task_of(st) if st.aio else None)
            except Exception:
                pass
        return True
    return self._ls_acquire_slow(blocking, timeout)


def _py_release(self: Any) -> None:
    if _core.ON:
        try:
            ts = mono_ns()
        except Exception:
            ts = None
        self._lock.release()
        if ts is None or _inner_level(self._lock, False):
            return
        try:
            st = current_state()
            # (stamped before the inner release: the next owner's acquire comes after)
            if _core._buffered < _core._limit and st.gap is None:  # append_event inlined
                st.buf.append((ts, "release", self, 0, task_of(st) if st.aio else None))
                _core._buffered += 1
            else:
                _core.append_slow(st, "release", self, 0, task_of(st) if st.aio else None,
                                  None, ts)
        except Exception:
            pass
    else:
        self._lock.release()


def _py_exit(self: Any, t: Any, v: Any, tb: Any) -> None:
    _py_release(self)


class _PyLockCore:
    """The hot path of a traced Lock/RLock in pure Python; ``_speedups.LockCore``
    is the same in C (used when it was built)."""

    __slots__ = ("_lock", "_ls_def")  # (the C LockCore has _ls_def built in)

    acquire = _py_acquire
    __enter__ = _py_acquire
    release = _py_release
    __exit__ = _py_exit


_LockCore = _core.speedups.LockCore if _core.speedups is not None else _PyLockCore


class _PicklesAsOriginal(type):
    """Metaclass of the traced lock types, which present themselves as _thread's:
    pickled (a multiprocessing Manager's registry holds threading.Lock), such a type
    stands for the original, as the original itself would (see ``_reduce_type``)."""


def _reduce_type(cls: type) -> tuple:
    # itemgetter(0)((original,)): the original type, pickled by reference.
    return operator.itemgetter(0), ((_ORIGINAL_OF[cls],),)


class _LockBase(_LockCore, metaclass=_PicklesAsOriginal):
    """What traced Lock and RLock share: definition, description, the slow path."""

    # (_ls_def is _LockCore's: in C, a lock's definition is made only when read)
    __slots__ = ("_ls_id", "__weakref__")

    def _ls_record(self) -> dict:
        return self._ls_def

    def _ls_define(self, type_: str, reentrant: bool, depth: int = 2) -> None:
        """Define the lock; ``depth``: its creator's frame, as _getframe counts here."""
        if _core.ON:
            f = _getframe(depth)
            if id(f.f_code) in _OWNER_TYPES or f.f_code.co_filename == __file__:
                oid, _otype, _ = _owner_of(f)
                if oid is not None:
                    define(self, "lock", type_, depth + 2, reentrant=reentrant, owner=oid)
                    return
        define(self, "lock", type_, depth + 2, reentrant=reentrant)

    # The C core hands acquires with arguments to this one (same frame depth).
    _ls_acquire = _py_acquire

    def _ls_acquire_slow(self, blocking: bool, timeout: float, depth: int = 3) -> bool:
        """Contention, a timeout or a try: ``depth`` is the caller's frame as seen
        from site_id() here (2 when called from the C core, which has no frame)."""
        lock = self._lock
        if blocking is not True or timeout.__class__ is not int or timeout != -1:
            _check_acquire_args(blocking, timeout)
        if not blocking or timeout == 0 or timeout < 0 and timeout != -1 \
                or timeout > TIMEOUT_MAX:
            # Invalid combinations raise exactly as the original does; a valid
            # non-blocking acquire, or one with a zero timeout, is a try.
            ok = lock.acquire(blocking, timeout)
            if _core.ON and not (ok and _inner_level(lock, True)):
                _record(_state(), "acquire" if ok else "try-fail", self, site_id(depth))
            return ok
        if lock.acquire(False):
            if _core.ON and not _inner_level(lock, True):
                _record(_state(), "acquire", self, site_id(depth))
            return True
        if not _core.ON:
            return lock.acquire(True, timeout)
        st = _state()
        site = site_id(depth)
        _record(st, "wait", self, site)
        try:
            ok = lock.acquire(True, timeout)
        except BaseException as exc:  # a signal handler raised: the wait ended without it
            _interrupted(st, self, site, exc)
            raise
        _record(st, "acquire" if ok else "timeout", self, site)
        return ok

    def _ls_interrupted(self, site: int, exc: BaseException) -> None:
        """The C core's contended acquire was ended by ``exc``: the ``cancel`` event."""
        _interrupted(_state(), self, site, exc)

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()


class Lock(_LockBase):
    """A traced ``threading.Lock``."""

    __slots__ = ()

    def __new__(cls) -> Any:
        if _LOCK_NOT_INSTANTIABLE is not None:
            # type(threading.Lock())() fails where the original type cannot be called
            raise TypeError(_LOCK_NOT_INSTANTIABLE)
        if _in_thread_internals():
            return _allocate_lock()
        return super().__new__(cls)

    def __init__(self) -> None:
        if not _init_lock(self, _allocate_lock(), "threading.Lock", False):
            self._ls_define("threading.Lock", False, 2)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # the original lock type cannot be subclassed (threading.Lock itself from 3.13)
        if _LOCK_NOT_SUBCLASSABLE is not None:
            raise TypeError(_LOCK_NOT_SUBCLASSABLE)
        super().__init_subclass__(**kwargs)

    def locked(self) -> bool:
        return self._lock.locked()

    def _py_is_owned(self) -> bool:
        # Condition's ownership probe; must not be recorded as an acquire.
        lock = self._lock
        if lock.acquire(False):
            lock.release()
            return False
        return True

    # (in C when built: Condition.notify and wait call it every time)
    _is_owned = getattr(_LockCore, "_probe_owned", _py_is_owned)

    acquire_lock = _LockBase.acquire
    release_lock = _LockBase.release
    locked_lock = locked

    def __repr__(self) -> str:
        state = "locked" if self._lock.locked() else "unlocked"
        return f"<{state} lockscope.Lock object #{self._ls_id} at {id(self):#x}>"


class RLock(_LockBase):
    """A traced ``threading.RLock`` (wraps the C implementation)."""

    __slots__ = ()

    def _py_init(self, *args: Any, **kwargs: Any) -> None:
        if (args or kwargs) and _RLOCK_ARGS_DEPRECATED:
            import warnings  # as threading.RLock() does on 3.13+

            warnings.warn("Passing arguments to RLock is deprecated and will be removed in 3.15",
                          DeprecationWarning, stacklevel=2)
        if not _init_lock(self, _CRLock(*args, **kwargs), "threading.RLock", True):
            self._ls_define("threading.RLock", True, 2)

    _py_init.__name__, _py_init.__qualname__ = "__init__", "RLock.__init__"
    # (in C when built, arguments aside: a Future's condition makes one per job)
    __init__ = getattr(_LockCore, "_rlock_init", _py_init)

    def locked(self) -> bool:  # Python 3.13+ has RLock.locked
        lock = self._lock
        if hasattr(lock, "locked"):
            return lock.locked()
        if lock._is_owned():  # (its owner's try would take it again)
            return True
        if lock.acquire(False):
            lock.release()
            return False
        return True

    # Condition's internal interface: release all levels / restore them.
    def _py_release_save(self) -> Any:
        on = _core.ON
        if on:
            try:
                ts = mono_ns()
            except Exception:
                on = False
        state = self._lock._release_save()
        if on:
            try:
                st = _state()
                task = task_of(st) if st.aio else None
                _append(st, "release", self, 0, task, None, ts)  # (the outermost level)
            except Exception:
                pass
        return state

    def _py_acquire_restore(self, state: Any) -> None:
        lock = self._lock
        if not _core.ON:
            lock._acquire_restore(state)
            return
        try:
            st = _state()
            site = site_id(3)
        except Exception:
            lock._acquire_restore(state)
            return
        # The C RLock offers no try-restore, so report a wait only when it is held.
        if _rlock_is_free(lock):
            lock._acquire_restore(state)
        else:
            _record(st, "wait", self, site)
            try:
                lock._acquire_restore(state)
            except BaseException as exc:
                _interrupted(st, self, site, exc)
                raise
        try:
            ts = mono_ns()
            task = task_of(st) if st.aio else None
            _append(st, "acquire", self, site, task, None, ts)  # (the outermost level)
        except Exception:
            pass

    # (in C when built: Condition.wait calls them each time)
    _release_save = getattr(_LockCore, "_rlock_release_save", _py_release_save)
    _acquire_restore = getattr(_LockCore, "_rlock_acquire_restore", _py_acquire_restore)

    def _py_is_owned(self) -> bool:
        return self._lock._is_owned()

    _is_owned = getattr(_LockCore, "_inner_is_owned", _py_is_owned)  # (in C when built)

    def _recursion_count(self) -> int:
        return self._lock._recursion_count()

    def __repr__(self) -> str:
        return repr(self._lock).replace("_thread.RLock", f"lockscope.RLock #{self._ls_id}")


_new_core = _LockCore.__new__


def _py_init_lock(lock: Any, inner: Any, type_: str, reentrant: bool) -> bool:
    """(speedups.init_lock without the C accelerator: set the inner lock only)"""
    lock._lock = inner
    return False


def _py_in_thread_internals() -> bool:
    return _inside_thread_internals(sys._getframe(2))


if _core.speedups is not None:
    # (the same in C, without a frame object: each is called at every creation)
    _init_lock = _core.speedups.init_lock
    _init_condition = _core.speedups.init_condition
    _in_thread_internals = _core.speedups.in_thread_internals
    _core.speedups.set_lock_creators(__file__, _OWNER_TYPES, _EVENT_INIT,
                                     _THREAD_INIT)
    # Their instances can be part of no reference cycle: hidden from the cyclic GC.
    _core.speedups.set_plain_lock_types((Lock, RLock))
else:
    _init_lock = _py_init_lock
    _init_condition = lambda cond, lock, own_lock: False  # noqa: E731
    _in_thread_internals = _py_in_thread_internals


class _LockFactory:
    """``threading.Lock`` where the original is the function ``_thread.allocate_lock``
    (before 3.13): named like it (code listing threading's API by ``__module__`` sees
    the same names) and pickled as it."""

    __slots__ = ()
    __module__ = _allocate_lock.__module__
    __name__ = __qualname__ = _allocate_lock.__name__

    def __call__(self) -> Any:
        # Lock.__new__ and __init__ inlined: every frame counts at each creation.
        if _in_thread_internals():
            return _allocate_lock()
        lock = _new_core(Lock)
        if not _init_lock(lock, _allocate_lock(), "threading.Lock", False):
            lock._ls_define("threading.Lock", False, 2)
        return lock

    def __reduce__(self) -> tuple:
        return operator.itemgetter(0), ((_allocate_lock,),)

    def __repr__(self) -> str:
        return repr(_allocate_lock)


def _not_instantiable_message() -> str | None:
    """The original lock type's refusal to be called, or None where it can be."""
    try:
        type(_allocate_lock())()
    except TypeError as exc:
        return str(exc)
    return None


_LOCK_NOT_INSTANTIABLE = _not_instantiable_message()


def _not_subclassable_message() -> str | None:
    """The original lock type's refusal to be subclassed, or None where it can be."""
    try:
        type("_Probe", (type(_allocate_lock()),), {})
    except TypeError as exc:
        return str(exc)
    return None


_LOCK_NOT_SUBCLASSABLE = _not_subclassable_message()
# (named as the original factory: code listing a module's API by __module__ sees it)


def _rlock_is_free(lock: Any) -> bool:
    if lock.acquire(False):
        lock.release()
        return True
    return False


class _PyCondHooks:
    """notify/notify_all of the traced Condition in pure Python; ``_speedups.CondHooks``
    is the same in C (used when it was built)."""

    def notify(self, n: int = 1) -> None:
        if _core.ON and self._is_owned():
            _emit_here("signal", self, 2, {"sig": "notify", "n": n})
        _orig_notify(self, n)

    def notify_all(self) -> None:
        n = len(self._waiters)
        if _core.ON and self._is_owned():
            _emit_here("signal", self, 2, {"sig": "notify_all", "n": n})
        _orig_notify(self, n)


if _core.speedups is not None:
    _CondHooks = _core.speedups.CondHooks
    _core.speedups.set_condition_hooks(_orig_notify, _OrigCondition.notify_all)
else:
    _CondHooks = _PyCondHooks


def _define_condition(cond: Any, lock: Any, own_lock: bool, up: int) -> None:
    """A traced Condition's definition where ``_init_condition`` (C) leaves it to
    Python; ``up``: its creator's frame, as _getframe counts here (1 from the C
    constructor, which has no frame; 2 from the Python ``__init__``)."""
    fields: dict = {"lock": getattr(lock, "_ls_id", None)}
    type_ = "threading.Condition"
    if _core.ON:
        oid, otype, owner = _owner_of(sys._getframe(up))
        if oid is not None:
            fields["owner"] = oid
            type_ = otype
            if otype.startswith("queue."):
                n = getattr(owner, "_ls_nconds", 0)
                owner._ls_nconds = n + 1
                if n < len(_QUEUE_ROLES):
                    fields["role"] = _QUEUE_ROLES[n]
    define(cond, "resource", type_, 2 + up, **fields)
    if (type_ in _STANDS_FOR_OWNER or "role" in fields) and _core.ON:
        # An Event's (Barrier's) condition is the Event, a queue's condition one
        # side of the queue: named by the line that made the Event (queue)
        _renamed(cond._ls_def, sys._getframe(up))
    if fields["lock"] is not None:
        _core.set_deps(cond, (lock,))  # its definition names the lock: define that first
    if own_lock and isinstance(lock, RLock):
        lock._ls_def["owner"] = cond._ls_id


def _py_condition_new(cls: type, lock: Any = None) -> Any:
    if _in_thread_internals():
        return _OrigCondition(lock)
    return _CondHooks.__new__(cls)


def _py_condition_init(self: Any, lock: Any = None) -> None:
    own_lock = lock is None
    if own_lock:
        lock = RLock()
    _OrigCondition.__init__(self, lock)
    if not _init_condition(self, lock, own_lock):
        _define_condition(self, lock, own_lock, 2)


# (named as in the class: the original's argument errors name Condition.__init__)
_py_condition_new.__name__, _py_condition_new.__qualname__ = "__new__", "Condition.__new__"
_py_condition_init.__name__, _py_condition_init.__qualname__ = "__init__", "Condition.__init__"


class Condition(_CondHooks, _OrigCondition):
    """A traced ``threading.Condition``: its waits and notifications are recorded
    on the condition; the release and re-acquire of its lock on the lock."""

    if _core.speedups is None:  # (else _CondHooks' own, in C: no frame per condition)
        __new__ = _py_condition_new
        __init__ = _py_condition_init

    def _ls_record(self) -> dict:
        return self._ls_def

    def wait(self, timeout: float | None = None) -> bool:
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        waiter = _allocate_lock()
        waiter.acquire()
        self._waiters.append(waiter)
        saved_state = self._release_save()
        on = _core.ON
        if on:
            st = _state()
            site = site_id()
            seconds = _join_timeout(timeout)  # (a number in the trace, or no field)
            _emit_x(st, "wait-begin", self, site,
                    {"timeout": seconds} if seconds is not None else None)
        gotit = False
        outcome = {"outcome": "error"}
        try:
            if timeout is None:
                waiter.acquire()
                gotit = True
            elif timeout > 0:
                gotit = waiter.acquire(True, timeout)
            else:
                gotit = waiter.acquire(False)
            outcome["outcome"] = "ok" if gotit else "timeout"
            return gotit
        except BaseException as exc:
            outcome["error"] = _error_name(exc)
            raise
        finally:
            if on:
                _emit_x(st, "wait-end", self, site, outcome)
            self._acquire_restore(saved_state)
            if not gotit:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass

    if _core.speedups is not None:  # (in C: no frame per wait; odd arguments: this one)
        _core.speedups.set_condition_wait(wait)
        wait = _core.speedups.condition_wait_method

    # notify and notify_all: _CondHooks'.  notifyAll is the original's: it warns (DeprecationWarning), then calls notify_all.


if _core.speedups is not None:
    _core.speedups.set_constructors(_OrigCondition, RLock, _define_condition,
                                    _py_condition_init, _CRLock, RLock._py_init, Lock,
                                    _allocate_lock)
    if _LOCK_NOT_INSTANTIABLE is None:  # (threading.Lock is the type: 3.13+)
        _core.speedups.set_py_lock_new(Lock.__new__)
        Lock.__new__ = _core.speedups.lock_new
        Lock.__init__ = object.__init__  # (lock_new initialises it)


def _emit_x(st: Any, op: str, obj: Any, site: int, extra: dict | None) -> None:
    try:
        _core.append_event(st, op, obj, site, task_of(st) if st.aio else None, extra)
    except Exception:
        pass


def _error_name(exc: BaseException) -> str:
    return type(exc).__qualname__


def _interrupted(st: Any, lock: Any, site: int, exc: BaseException) -> None:
    """A waiting acquire of ``lock`` ended by an exception (a signal handler raised):
    ``cancel``, naming the exception."""
    _emit_x(st, "cancel", lock, site, {"error": _error_name(exc)})


class _SemaphoreMixin:
    """Tracing shared by Semaphore and BoundedSemaphore (their internals stay untraced)."""

    def _ls_init(self, value: int, type_: str) -> None:
        # The semaphore's own internals stay untraced: one event per semaphore operation.
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._cond = _OrigCondition(_allocate_lock())
        self._value = value
        define(self, "lock", type_, 4, reentrant=False, value=value)

    def _ls_record(self) -> dict:
        return self._ls_def

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        if not blocking or timeout is not None and timeout <= 0:
            # A try (ThreadPoolExecutor.submit does one every time): the original
            # once, as the program calls it.
            ok = _orig_sem_acquire(self, blocking, timeout)
            if _core.ON:
                _emit_here("acquire" if ok else "try-fail", self, 2)
            return ok
        if _orig_sem_acquire(self, False):  # (one that gets it at once is no wait)
            if _core.ON:
                _emit_here("acquire", self, 2)
            return True
        return self._ls_acquire_waiting(timeout)

    __enter__ = acquire

    def _ls_acquire_waiting(self, timeout: float | None) -> bool:
        """A blocking acquire that found the semaphore taken (acquire's, Python or C)."""
        if not _core.ON:
            return _orig_sem_acquire(self, True, timeout)
        st = _state()
        site = site_id()
        _record(st, "wait", self, site)
        try:
            ok = _orig_sem_acquire(self, True, timeout)
        except BaseException as exc:
            _interrupted(st, self, site, exc)
            raise
        _record(st, "acquire" if ok else "timeout", self, site)
        return ok

    def __repr__(self) -> str:
        # Like the original's, which names its class as module.qualname.
        extra = f"/{self._initial_value}" if hasattr(self, "_initial_value") else ""
        return (f"<lockscope.{type(self).__qualname__} at {id(self):#x}:"
                f" value={self._value}{extra}>")

    def _ls_released(self, n: int) -> None:
        if _core.ON:
            for _ in range(n):
                _emit_here("release", self, -1)


class Semaphore(_SemaphoreMixin, _OrigSemaphore):
    """A traced ``threading.Semaphore``."""

    def __init__(self, value: int = 1) -> None:
        self._ls_init(value, "threading.Semaphore")

    def release(self, n: int = 1) -> None:
        _OrigSemaphore.release(self, n)
        self._ls_released(n)

    def __exit__(self, t: Any, v: Any, tb: Any) -> None:
        self.release()


class BoundedSemaphore(_SemaphoreMixin, _OrigBoundedSemaphore):
    """A traced ``threading.BoundedSemaphore``."""

    def __init__(self, value: int = 1) -> None:
        self._ls_init(value, "threading.BoundedSemaphore")
        self._initial_value = value

    def release(self, n: int = 1) -> None:
        _OrigBoundedSemaphore.release(self, n)
        self._ls_released(n)

    def __exit__(self, t: Any, v: Any, tb: Any) -> None:
        self.release()


if _core.speedups is not None:  # acquire and release in C: no recorder frame each
    _core.speedups.set_semaphore_hooks(_orig_sem_acquire, _OrigSemaphore.release,
                                       _OrigBoundedSemaphore.release,
                                       _SemaphoreMixin._ls_acquire_waiting)
    _SemaphoreMixin.acquire = _SemaphoreMixin.__enter__ = _core.speedups.semaphore_acquire
    Semaphore.release = _core.speedups.semaphore_release
    BoundedSemaphore.release = _core.speedups.bounded_semaphore_release


def _event_wait(self: threading.Event, timeout: float | None = None) -> bool:
    """``Event.wait`` (CPython's body): a wait that finds the event already set is a
    ``pass`` on its condition, recorded under the event's lock, so after the ``set``."""
    with self._cond:
        signaled = self._flag
        if not signaled:
            signaled = self._cond.wait(timeout)
        elif _core.ON and hasattr(self._cond, "_ls_id"):
            _emit_here("pass", self._cond, 2)
        return signaled


# (errors name it as the original does: "Event.wait() takes ...")
_event_wait.__name__, _event_wait.__qualname__ = "wait", "Event.wait"
_event_wait_hook = _event_wait
if _core.speedups is not None:  # (in C: Thread.start waits on one each time)
    _core.speedups.set_event_hooks(_event_wait)
    _event_wait_hook = _core.typed(threading.Event, _core.speedups.event_wait)

# ------------------------------------------------------------------ threads

def _thread_start(self: threading.Thread) -> None:
    # (without the C accelerator, as its thread_start_method: the start event
    # appended once the original returned, stamped when it was called)
    start = None
    if _core.ON:
        if _core.speedups is None:
            start = _start_parts(self, 3)
            pool = start is not None and start[-1]
        else:
            pool = _record_start(self)
        if pool:  # (a pool's worker: its module is imported)
            try:
                _jobs.install()
            except Exception:  # (nothing of ours may reach the program)
                pass
    _orig_start(self)
    if start is not None:
        parent, child, site, ts, _pool = start
        try:
            _append(parent, "start", child, site, task_of(parent) if parent.aio else None,
                    None, ts)
        except Exception:
            pass


def _start_parts(thread: threading.Thread, depth: int) -> tuple | None:
    """The start event of an initialised, unstarted Thread, made (its state given
    to it) but not appended: (parent, child, site, ts, runs a pool's worker), or
    None (not such a Thread: nothing recorded).  ``depth``: Thread.start's
    caller, as site_id() counts from here."""
    try:
        if not (thread._initialized and not thread._started.is_set()):
            return None
        parent = _state()
        child = _core.ThreadState(thread._name, parent.tid, thread)
        child.parent_ref = _weakref(parent)
        thread._ls_state = child
        parts = (parent, child, site_id(depth), mono_ns())
    except Exception:
        return None
    try:
        return (*parts, _jobs.runs_pool_worker(thread))
    except Exception:
        return (*parts, False)


def _py_record_start(thread: threading.Thread) -> bool | None:
    """(speedups.thread_start without the C accelerator) Records the start of an
    initialised, unstarted Thread; then says whether it runs a pool's worker."""
    start = _start_parts(thread, 4)
    if start is None:
        return None
    parent, child, site, _ts, pool = start
    _record(parent, "start", child, site)
    return pool


def _py_thread_begin(thread: threading.Thread) -> Any:
    """(speedups.thread_begin without the C accelerator)"""
    st = getattr(thread, "_ls_state", None)
    if st is not None:
        try:
            st.ident = _thread.get_ident()
            _core.bind_state(st)
        except Exception:
            st = None
    return st


def _py_thread_end(st: Any, thread: threading.Thread) -> None:
    """(speedups.thread_end without the C accelerator)"""
    st.remember(thread)  # the last word on its name etc.: the Thread may go now
    if _core.ON:
        try:
            _record(st, "end", st, 0)
        except Exception:
            pass
    st.ended = True


if _core.speedups is not None:
    _record_start = _core.speedups.thread_start
    _thread_begin = _core.speedups.thread_begin
    _thread_end = _core.speedups.thread_end
else:
    _record_start, _thread_begin, _thread_end = (
        _py_record_start, _py_thread_begin, _py_thread_end)


def _thread_bootstrap_inner(self: threading.Thread) -> None:
    st = _thread_begin(self)
    try:
        _orig_bootstrap_inner(self)
    finally:
        if st is not None:
            _thread_end(st, self)
        if _core.on_thread_end is not None:
            try:
                _core.on_thread_end()
            except Exception:
                pass


if _core.speedups is not None:  # (the same in C: no recorder frame per thread)
    _core.speedups.set_thread_start(_orig_start, _jobs.install, _orig_bootstrap_inner)
    _start_hook = _core.typed(threading.Thread, _core.speedups.thread_start_method)
    _bootstrap_hook = _core.typed(threading.Thread, _core.speedups.thread_bootstrap_method)
else:
    _start_hook, _bootstrap_hook = _thread_start, _thread_bootstrap_inner


def _join_timeout(timeout: Any) -> float | None:
    """A join's ``timeout`` field: an int or float as it is, another number as a
    float, else None (no field: the original join raises on it, and a trace holds
    numbers there)."""
    if timeout is None or type(timeout) in (int, float):
        return timeout
    try:
        return float(timeout)
    except Exception:
        return None


def _thread_join(self: threading.Thread, timeout: float | None = None) -> None:
    target = getattr(self, "_ls_state", None)
    if target is None or not _core.ON or not self._started.is_set() \
            or self is threading.current_thread():
        return _orig_join(self, timeout)
    st = _state()
    site = site_id()
    alive = self.is_alive()
    if alive:
        seconds = _join_timeout(timeout)
        _emit_x(st, "wait-begin", target, site,
                {"timeout": seconds} if seconds is not None else None)
    outcome = {"outcome": "error"}
    try:
        _orig_join(self, timeout)
        outcome["outcome"] = "timeout" if self.is_alive() else "ok"
    except BaseException as exc:
        outcome["error"] = _error_name(exc)
        raise
    finally:
        if alive:
            _emit_x(st, "wait-end", target, site, outcome)
        if outcome["outcome"] == "ok" or not alive:
            _record(st, "join", target, site)


if _core.speedups is not None:  # (the same in C: no recorder frame per join)
    _core.speedups.set_thread_join(_orig_join, threading._active)
    _join_hook = _core.typed(threading.Thread, _core.speedups.thread_join_method)
else:
    _join_hook = _thread_join


# The types present themselves as the originals do (repr, __module__, __name__): the
# lock types as _thread's, the others as threading's.
_ORIGINAL_OF = {Lock: type(_allocate_lock()), RLock: _CRLock}
copyreg.pickle(_PicklesAsOriginal, _reduce_type)

for _cls, _like in ((Lock, type(_allocate_lock())), (RLock, _CRLock),
                    (Condition, _OrigCondition), (Semaphore, _OrigSemaphore),
                    (BoundedSemaphore, _OrigBoundedSemaphore)):
    _cls.__module__, _cls.__name__, _cls.__qualname__ = (
        _like.__module__, _like.__name__, _like.__qualname__)


for _cls in (Lock, RLock, Condition, Semaphore, BoundedSemaphore):
    _core.own_c_methods(_cls)


def _lock_factory() -> Any:
    """``threading.Lock`` where the original is ``_thread.allocate_lock``: the C
    accelerator's LockFactory (called without a frame or a type lookup: a Thread
    makes a Lock for its ``_started`` Event), else a ``_LockFactory``."""
    plain = _LockFactory()
    if _core.speedups is None:
        return plain
    return _core.speedups.LockFactory(_allocate_lock, plain.__reduce__())


_PATCHED = {
    "Lock": _lock_factory() if _LOCK_NOT_INSTANTIABLE is not None else Lock,
    "RLock": RLock,
    "Condition": Condition,
    "Semaphore": Semaphore,
    "BoundedSemaphore": BoundedSemaphore,
}


def install() -> None:
    """Replace the threading primitives and hook Thread start/join/end."""
    for name, cls in _PATCHED.items():
        setattr(threading, name, cls)
    threading.Thread.start = _start_hook
    threading.Thread._bootstrap_inner = _bootstrap_hook
    threading.Thread.join = _join_hook
    threading.Event.wait = _event_wait_hook
    _on_import.when_imported("queue", _queue_imported)
    _jobs.install()


def _queue_imported(queue: Any) -> None:
    """The program imported ``queue`` (recording never imports it: 1 ms): its Queue
    makes its locks as their owner, and its SimpleQueue is traced."""
    _OWNER_TYPES[id(queue.Queue.__init__.__code__)] = "queue.Queue"
    from . import _simplequeue

    _simplequeue.install()


def uninstall() -> None:
    """Put the original threading primitives and Thread methods back."""
    for name, orig in ORIGINALS.items():
        setattr(threading, name, orig)
    threading.Thread.start = _orig_start
    threading.Thread._bootstrap_inner = _orig_bootstrap_inner
    threading.Thread.join = _orig_join
    threading.Event.wait = _orig_event_wait
    _on_import.forget("queue")
    simplequeue = sys.modules.get(__package__ + "._simplequeue")
    if simplequeue is not None:
        simplequeue.uninstall()
    _jobs.uninstall()


__all__ = ["Lock", "RLock", "Condition", "Semaphore", "BoundedSemaphore",
           "install", "uninstall"]
