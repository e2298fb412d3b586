"""Shared state of the recorder and its hot path: ids, per-thread buffers, call sites.

Everything here runs inside the observed program, often while it holds locks, so it
must not block, must not take any lock user code can see, and must not raise.
Events are appended as tuples to a per-thread deque; the writer thread (see
``_sink``) turns them into JSON lines.  An event tuple is
``(ts, op, obj, site_id, task_id)`` or ``(ts, op, obj, site_id, task_id, extra)``
where ``obj`` is the traced object itself (it carries ``_ls_id`` and a
``_ls_record()`` for its definition) and ``extra`` is a dict of op-specific fields.
"""

from __future__ import annotations

import _thread
import itertools
import os
import sys
import time
from _weakref import ref as _weakref  # (the weakref module costs 1 ms at start-up)
from collections import deque

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs milliseconds at start-up)
    from typing import Any

mono_ns = time.monotonic_ns
_getframe = sys._getframe

# One id space for locks, resources, threads, tasks and segments (never reused).
next_id = itertools.count(1).__next__
# Sites have their own id space.
_next_site_id = itertools.count(1).__next__

# Set by start()/stop(). The hot path reads it on every operation: when false,
# traced primitives behave as plain ones and record nothing.
ON = False

# Options in force (set by start()).  Stacks are on by default: one is taken only
# when a call site is first seen, so steady-state events cost nothing more.
DEFAULT_STACK_DEPTH = 8
STACK_DEPTH = 0


class ThreadState:
    """Per-thread recording state: the thread's id and its event buffer.

    It holds no strong reference to the ``threading.Thread`` (the Thread holds this
    state, and a cycle would keep finished threads alive until a garbage
    collection): only a weak one, and copies of what the ``thread`` record needs."""

    __slots__ = ("tid", "_buf", "gap", "dropped", "dropped_reported", "name", "parent",
                 "parent_ref", "ident", "native_id", "daemon", "ts", "thread_ref", "aio",
                 "ended", "__weakref__")

    def __init__(self, name: str, parent: int | None, thread: Any = None) -> None:
        self.tid = next_id()
        self._buf: deque | None = new_buffer()  # (a state the C core makes: None, see buf)
        self.gap: Gap | None = None  # events being lost right now (owning thread only)
        self.dropped = 0            # written only by the owning thread
        self.dropped_reported = 0   # written only by the writer thread
        self.name = name
        self.parent = parent
        self.parent_ref = None      # weakref to the parent's state (to define it in any part)
        self.ident = None
        self.native_id = None
        self.daemon = None
        self.ts = mono_ns()
        self.thread_ref = None      # weakref to the threading.Thread, if any (see thread())
        self.aio = False            # set by the asyncio layer when a loop runs here
        self.ended = False          # the thread finished; drop the state once drained
        if thread is not None:
            self.remember(thread)

    @property
    def buf(self) -> deque:
        """The thread's event buffer, made at its first event: a state the C core
        makes for a new thread has none yet (in summary mode most request threads
        never buffer one).  Only the owning thread makes it here (readers of other
        threads' states use ``_buf``); the C core makes it atomically."""
        buf = self._buf
        if buf is None:
            buf = self._buf = new_buffer()
        return buf

    @buf.setter
    def buf(self, buf: deque) -> None:
        self._buf = buf

    def remember(self, thread: Any) -> None:
        """Copy what the ``thread`` record says about ``thread`` (and keep a weak
        reference to read it again later: it may be renamed)."""
        try:
            if self.thread_ref is None:
                self.thread_ref = _weakref(thread)
            self.name = thread._name
            self.daemon = thread._daemonic
            self.ident = thread._ident or self.ident
            self.native_id = getattr(thread, "_native_id", None) or self.native_id
        except Exception:
            pass

    @property
    def _ls_id(self) -> int:
        return self.tid

    def thread(self) -> Any:
        """Its threading.Thread, or None (none, or gone).  ``thread_ref`` is a weak
        reference to it, or, while a thread the C accelerator started runs, the
        Thread itself (no weak reference a thread; let go at its end)."""
        ref = self.thread_ref
        if ref is None:
            return None
        return ref() if type(ref) is _weakref else ref

    def _ls_record(self) -> dict:
        t = self.thread() if not self.ended else None
        if t is not None:  # (an ended thread's state remembered it last at its end)
            self.remember(t)
        return {"k": "thread", "id": self.tid, "name": self.name, "parent": self.parent,
                "ident": self.ident, "native_id": self.native_id, "daemon": self.daemon,
                "ts": self.ts}


def new_buffer() -> deque:
    """An empty event buffer, which the cyclic GC does not scan (with the C
    accelerator).  It holds only event tuples, themselves untracked, so it can be
    part of no cycle the GC could free, but it often holds a million of them and
    a full collection would visit every one: 100 ms each time in a program that
    collects often (ThreadPoolExecutor.map of 30k jobs: 8 full collections cost
    0.78 s of its 2.96 s of CPU).  The events keep what they refer to alive until
    the writer takes them, as any reference would."""
    buf: deque = deque()
    if speedups is not None:
        speedups.untrack(buf)
    return buf


_tls = _thread._local()
# Every ThreadState that may hold buffered events; the writer drains them.
states: list[ThreadState] = []

# The memory bound is global: all buffers together hold at most ``_budget`` events
# (``max_buffer_events``), plus up to MIN_THREAD_CAP for each thread whose own buffer
# is nearly empty (so that a thread is never silenced by the others), and a thread
# alone may use all of it.  ``_buffered`` counts the events in all buffers: the hot
# path adds, the writer subtracts what it takes (the C accelerator keeps its own
# counter; see buffered()).  Once it reaches ``_wake_at`` the writer is woken at
# once instead of at its next flush interval.
_budget = 1_000_000
_buffered = 0
MIN_THREAD_CAP = 64
WAKE_FRACTION = 8  # wake the writer when 1/8 of the budget is buffered
_wake_at = _budget // WAKE_FRACTION
_wake_sent = False
_waker: Any = None  # set by the sink: wakes its writer (must never block)
# When the writer falls behind anyway (threads producing events faster than it
# writes them get most of the GIL), a thread that records with 3/4 of the budget
# buffered pauses PAUSE_S without the GIL so that the writer runs, rather than
# lose events; not when the writer has made no progress for STUCK_S (a hung disk):
# events are then dropped, and a stuck writer costs each thread at most STUCK_S.
PAUSE_S = 0.001
STUCK_S = 1.0
_high_water = _budget - _budget // 4
_progress = 0  # mono_ns() when the writer last took or wrote events
# The pure-Python fast path's bound: below it (and outside a gap) an event is just
# appended and counted.  _wake_at until the writer is woken, then _budget; -1 with
# the C accelerator, whose own counter every append must go through (append_slow
# is then its append too).
_limit = _wake_at


def set_buffer_cap(total: int) -> None:
    """Set the event budget of the whole process (``max_buffer_events``)."""
    global _budget, _wake_at, _high_water
    _budget = max(1, int(total))
    _wake_at = max(1, _budget // WAKE_FRACTION)
    _high_water = max(_wake_at, _budget - _budget // 4)
    recount_buffered()


def recount_buffered() -> None:
    """Set the buffered-event count from the buffers (at start, after a fork)."""
    global _buffered, _wake_sent, _limit, _progress
    _buffered = sum(len(st._buf or ()) for st in list(states))
    _wake_sent = False
    _limit = _wake_at if speedups is None else -1
    _progress = mono_ns()
    if speedups is not None:
        speedups.configure_buffers(_budget, _wake_at, _buffered, _waker, MIN_THREAD_CAP,
                                   _high_water, int(PAUSE_S * 1e9), int(STUCK_S * 1e9))


def set_waker(fn: Any) -> None:
    """Install the callable that wakes the writer early (None: no early wake)."""
    global _waker
    _waker = fn
    recount_buffered()


def buffered() -> int:
    """Events in all buffers now (what the budget is checked against)."""
    if speedups is not None:
        return speedups.buffered()
    return _buffered


_taken_total = 0  # events the writer took, ever (pure-Python path)


def events_taken() -> int:
    """How many events the writer has taken out of the buffers, ever."""
    if speedups is not None:
        return speedups.taken_count()
    return _taken_total


def taken(n: int) -> None:
    """The writer took ``n`` events out of a buffer (pure-Python path; the C
    accelerator's take() counts them itself).  Re-arms the early wake."""
    global _buffered, _wake_sent, _limit, _progress, _taken_total
    _buffered -= n
    _taken_total += n
    _wake_sent = False
    _limit = _rearmed_limit()
    _progress = mono_ns()


def writer_progress() -> None:
    """The writer wrote a batch: it is not stuck (threads may pause for it)."""
    global _progress
    _progress = mono_ns()
    if speedups is not None:
        speedups.progress()


def rearm_waker() -> None:
    """The writer is draining: the next crossing of the threshold wakes it again."""
    global _wake_sent, _limit
    _wake_sent = False
    _limit = _rearmed_limit()
    if speedups is not None:
        speedups.rearm()


_wake_next = False  # (pure-Python path) the next buffered event wakes the writer


def _rearmed_limit() -> int:
    """The fast path's bound once the writer took events (see _limit): the next
    event when a wake after it is pending, else _wake_at; -1 with the accelerator."""
    if speedups is not None:
        return -1
    return 0 if _wake_next else _wake_at


def wake_after_next_event() -> None:
    """Have the next event any thread buffers wake the writer (once), after it is in
    its buffer: a new file gets its first events at once, not at the end of the
    flush interval.  (Waking the writer now could let it drain before that event
    is buffered: on 3.13 a forked child's first events then waited 30 s.)"""
    global _wake_next, _limit, _wake_sent
    if speedups is not None:
        speedups.wake_after_next()
        return
    _wake_next = True
    _wake_sent = False
    _limit = 0  # (the next append takes the slow path)


def _wake_first() -> None:
    global _wake_next, _limit
    _wake_next = False
    _limit = _high_water if _wake_sent else _wake_at
    waker = _waker
    if waker is not None:
        waker()


def _wake() -> None:
    global _wake_sent, _limit
    _wake_sent = True
    _limit = _high_water if speedups is None else -1
    waker = _waker
    if waker is not None:
        waker()


class Gap:
    """Events a thread is losing (its buffer share is spent): how many, since when,
    and per (lock, task) how many acquires and releases were lost, so that the
    ``resync`` record written when recording resumes says what the thread holds."""

    __slots__ = ("lost", "since", "locks")

    def __init__(self, since: int) -> None:
        self.lost = 0
        self.since = since
        # (id(obj), id(task)) -> [obj, task, acquired, released]; holds obj and task
        # so that their ids stay theirs until the record is written.
        self.locks: dict[tuple[int, int], list] = {}


def lose(st: ThreadState, op: str, obj: Any, task: Any) -> None:
    """Count one event of ``st`` that did not fit (the slow path: buffers are full)."""
    st.dropped += 1
    gap = st.gap
    if gap is None:
        gap = st.gap = Gap(mono_ns())
    gap.lost += 1
    if op == "acquire" or op == "release":
        key = (id(obj), id(task))
        counts = gap.locks.get(key)
        if counts is None:
            counts = gap.locks[key] = [obj, task, 0, 0]
        counts[2 if op == "acquire" else 3] += 1


def end_gap(st: ThreadState) -> tuple:
    """Close ``st``'s gap: the ``resync`` event to put in its buffer before the next."""
    gap, st.gap = st.gap, None
    return (mono_ns(), "resync", gap)


def current_state() -> ThreadState:
    """The calling thread's state, registering the thread on first use."""
    try:
        return _tls.st
    except AttributeError:
        return _register_current_thread()


def bound_state() -> ThreadState | None:
    """The calling thread's state, or None when it has none (nothing registered)."""
    return getattr(_tls, "st", None)


# Set by the recorder's process layer: called once when a thread state is next bound
# (the writer thread is started lazily, at the first thread that records).
on_bind: Any = None
# The forking thread's state in a forked child: bound again at that thread's next event.
fork_state: ThreadState | None = None
# Called after each threading.Thread ends, when set (a child forked from a non-main
# thread must finish its trace when its last thread ends: it never runs exit hooks).
on_thread_end: Any = None


def _register_current_thread() -> ThreadState:
    global fork_state
    ident = _thread.get_ident()
    st = fork_state
    if st is not None and st.ident == ident:
        fork_state = None
        bind_state(st)
        return st
    import threading  # already imported by anyone who can reach here

    t = threading._active.get(ident)  # no _DummyThread creation (it would make locks)
    st = ThreadState(t.name if t is not None else f"thread-{ident}", None, t)
    st.ident = ident
    try:
        st.native_id = _thread.get_native_id()
    except Exception:  # pragma: no cover - platform without native ids
        pass
    bind_state(st)
    return st


def bind_state(st: ThreadState) -> None:
    """Make ``st`` the calling thread's state and hand its buffer to the writer."""
    global on_bind
    _tls.st = st
    if speedups is not None:
        speedups.own_state(st)
    states.append(st)
    hook = on_bind
    if hook is not None:
        on_bind = None
        try:
            hook()
        except Exception:
            pass


def let_go_of_threads(keep: ThreadState | None) -> None:
    """(in a forked child) The states of the threads that ran in the parent hold
    their Threads until those threads end (see _speedups thread_begin), which they
    never will here: let go of them (but ``keep``'s, the forking thread's), or each
    Thread and its state would stay alive."""
    for st in list(states):
        ref = st.thread_ref
        if st is not keep and ref is not None and type(ref) is not _weakref:
            st.thread_ref = None


def reset_thread_local() -> None:
    """Forget every thread's state (after fork, or a new recording)."""
    global _tls
    _tls = _thread._local()
    if speedups is not None:  # (the thread-state dict entries of this recording)
        speedups.new_state_key()
    _forget_c_caches()
    states.clear()
    recount_buffered()


# Task lookup, installed by the asyncio layer: returns the current task's recording
# object (something with ``_ls_id`` and ``_ls_record()``) or None outside a task.
current_task_id = None
# Called (lock, task, site) after a task's acquire was buffered (set by the asyncio
# layer, see _aio_held; the C accelerator keeps its own copy: set_task_acquired()).
task_acquired: Any = None


def set_task_acquired(fn: Any) -> None:
    """Install the hook told of every acquire by an asyncio task (None: none)."""
    global task_acquired
    task_acquired = fn
    if speedups is not None:
        speedups.set_task_acquired(fn)


def task_of(st: ThreadState) -> int | None:
    if st.aio and current_task_id is not None:
        try:
            return current_task_id()
        except Exception:
            return None
    return None


def emit(op: str, obj: Any, site: int = 0, extra: dict | None = None,
         st: ThreadState | None = None) -> None:
    """Append one event for the calling thread (the general, slower path)."""
    if not ON:
        return
    try:
        if st is None:
            st = current_state()
        append_event(st, op, obj, site, task_of(st), extra)
    except Exception:
        pass


def emit_here(op: str, obj: Any, depth: int, extra: dict | None = None) -> None:
    """``emit(op, obj, site_id(depth), extra)`` as seen from the caller (depth -1:
    no site), in one call (in C with the accelerator)."""
    if not ON:
        return
    try:
        st = current_state()
        site = 0 if depth < 0 else site_id(depth + 1)
        append_event(st, op, obj, site, task_of(st), extra)
    except Exception:
        pass


def append_event(st: ThreadState, op: str, obj: Any, site: int, task: Any,
                 extra: dict | None = None, ts: int | None = None) -> None:
    """Append one event tuple to ``st``'s buffer (stamped now, or at ``ts``), or
    count it as lost when the budget is spent (after a loss, a ``resync`` event
    goes first)."""
    global _buffered
    if _buffered >= _limit or st.gap is not None:
        append_slow(st, op, obj, site, task, extra, ts)
        return
    if extra is None:
        st.buf.append((mono_ns() if ts is None else ts, op, obj, site, task))
    else:
        st.buf.append((mono_ns() if ts is None else ts, op, obj, site, task, extra))
    _buffered += 1
    if task is not None and op == "acquire" and task_acquired is not None:
        task_acquired(obj, task, site)


def append_slow(st: ThreadState, op: str, obj: Any, site: int, task: Any,
                extra: dict | None = None, ts: int | None = None) -> None:
    """append_event() past the fast path's bound: wake the writer, close a gap,
    keep the per-thread minimum, or count the event lost."""
    global _buffered
    pause = False
    if _buffered >= _wake_at and _waker is not None:
        if not _wake_sent:
            _wake()
        pause = _buffered >= _high_water and mono_ns() - _progress < STUCK_S * 1e9
    buf = st.buf
    if _buffered < _budget or len(buf) < MIN_THREAD_CAP:
        if st.gap is not None:
            buf.append(end_gap(st))
            _buffered += 1
        if ts is None:
            ts = mono_ns()
        if extra is None:
            buf.append((ts, op, obj, site, task))
        else:
            buf.append((ts, op, obj, site, task, extra))
        _buffered += 1
        if task is not None and op == "acquire" and task_acquired is not None:
            task_acquired(obj, task, site)
    else:
        lose(st, op, obj, task)
    if _wake_next:
        _wake_first()
    if pause:  # (after the event: its time stamp is the operation's)
        time.sleep(PAUSE_S)


# ---------------------------------------------------------------- call sites

RECORDER_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
# ids of the recorder's own code objects among code_sites' keys
recorder_codes: set[int] = set()

# Frames in these files are library internals: a site is the first frame outside them.
_SKIP_DIRS: tuple[str, ...] = ()
_SKIP_FILES: set[str] = set()
# Frames of lockscope itself (recorder/, its start-up hook, and runpy, through which
# `lockscope run` / `python -m recorder` run the program): never in a recorded stack.
_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_OWN_FILES: set[str] = set()
# Keyed by file name / by id() of the code object: code objects compare equal by
# content, so two identical functions in two files would share entries.  An id()
# key is safe without holding the code object (which would keep every function
# compiled at run time alive): watch_code() drops the code's entries from every
# cache in code_caches when the code object is freed, before its id can be reused.
_skip_by_file: dict[str, bool] = {}
MAX_SKIP_FILES = 4096  # a memo: cleared when a program compiles code in many files
_lines_by_id: dict[int, dict] = {}
# site id -> (file, line, func, stack or None)
sites: dict[int, tuple] = {}
# (file, line, func) -> site id: code compiled again at the same place (an exec per
# request) gets the same site, so sites grow with the program's places only.
_site_by_place: dict[tuple, int] = {}
# Caches keyed by id(code) (other modules add theirs); _watched: id -> weakref.
code_caches: list[dict] = []
_watched: dict[int, Any] = {}


def watch_code(code: Any) -> None:
    """Forget ``code`` in every cache of code_caches when it is freed."""
    key = id(code)
    if key not in _watched:
        try:
            _watched[key] = _weakref(code, lambda _ref, key=key: _forget_code(key))
        except TypeError:  # no weak references to this code object: keep it alive
            _watched[key] = code


def _forget_code(key: int) -> None:
    try:
        _watched.pop(key, None)
        for cache in code_caches:
            cache.pop(key, None)
        recorder_codes.discard(key)
        if speedups is not None:
            speedups.forget_code(key)
    except Exception:  # (a weakref callback: never raise into whoever freed the code)
        pass


def init_skips() -> None:
    """Compute the library locations whose frames are never a call site
    (without importing those libraries: this may run at interpreter start-up)."""
    global _SKIP_DIRS
    stdlib = os.path.dirname(os.__file__)
    _OWN_FILES.update({os.path.join(stdlib, "runpy.py"), "<frozen runpy>"})
    startup = sys.modules.get("lockscope_startup")
    if getattr(startup, "__file__", None):
        _OWN_FILES.add(startup.__file__)
    _OWN_FILES.add(os.path.join(os.path.dirname(_OWN_DIR.rstrip(os.sep)), "lockscope_startup.py"))
    _SKIP_FILES.update(_OWN_FILES)
    _SKIP_DIRS = (
        _OWN_DIR,
        os.path.join(stdlib, "asyncio") + os.sep,
        os.path.join(stdlib, "concurrent", "futures") + os.sep,
        os.path.join(stdlib, "logging") + os.sep,
    )
    _SKIP_FILES.update({os.path.join(stdlib, "threading.py"), os.path.join(stdlib, "queue.py"),
                        # a module-level lock's site is the import statement's line
                        "<frozen importlib._bootstrap>",
                        "<frozen importlib._bootstrap_external>"})
    _skip_by_file.clear()
    code_sites.clear()
    _forget_c_sites()


def _is_library(code: Any) -> bool:
    fn = code.co_filename
    skip = _skip_by_file.get(fn)
    if skip is None:
        if len(_skip_by_file) >= MAX_SKIP_FILES:
            _skip_by_file.clear()
        skip = _skip_by_file[fn] = fn in _SKIP_FILES or fn.startswith(_SKIP_DIRS)
    return skip


def lines_for(code: Any) -> dict:
    """The line -> site id map of one code object."""
    lines = _lines_by_id.get(id(code))
    if lines is None:
        watch_code(code)
        lines = _lines_by_id[id(code)] = {}
    return lines


# The hot path's cache: id(code) -> (id(code), {instruction offset: site id} or None
# for a library frame).  Keyed by id() because hashing a code object hashes its
# contents; the entry goes when the code object is freed (watch_code).
code_sites: dict[int, tuple] = {}
code_caches += [code_sites, _lines_by_id]


def site_id(depth: int = 2) -> int:
    """Intern the call site of the first frame outside the recorder and the
    synchronisation library, starting ``depth`` frames up; 0 when none."""
    try:
        return site_from(_getframe(depth))
    except Exception:  # ValueError: no frame that deep
        return 0


def site_from(f: Any) -> int:
    """site_id() from the frame ``f`` on (the C site_id's path for a site not cached)."""
    try:
        get = code_sites.get
        while f is not None:
            code = f.f_code
            entry = get(id(code))
            if entry is None:
                entry = _code_entry(code)
            by_lasti = entry[1]
            if by_lasti is not None:
                sid = by_lasti.get(f.f_lasti)
                if sid is None:
                    sid = _site_at(f, code, by_lasti)
                return sid
            f = f.f_back
    except Exception:  # never the program's
        pass
    return 0


def _code_entry(code: Any) -> tuple:
    watch_code(code)
    entry = (id(code), None if _is_library(code) else {})
    if code.co_filename.startswith(RECORDER_DIR):
        recorder_codes.add(id(code))
    code_sites[id(code)] = entry
    return entry


def _site_at(f: Any, code: Any, by_lasti: dict) -> int:
    """First time at this instruction of a user frame: intern its line."""
    lines = lines_for(code)
    line = f.f_lineno
    sid = lines.get(line)
    if sid is None:
        sid = _new_site(f, code, line, lines)
    by_lasti[f.f_lasti] = sid
    return sid


def _new_site(f: Any, code: Any, line: int, lines: dict) -> int:
    place = (code.co_filename, line, code.co_name)
    sid = _site_by_place.get(place)
    if sid is not None:
        lines[line] = sid
        return sid
    sid = _next_site_id()
    _site_by_place[place] = sid
    stack = frames_of(f, STACK_DEPTH) if STACK_DEPTH > 0 else None
    sites[sid] = (code.co_filename, line, code.co_name, stack)
    lines[line] = sid
    return sid


def is_own(filename: str) -> bool:
    """True for a frame of lockscope itself (see _OWN_FILES)."""
    return filename.startswith(_OWN_DIR) or filename in _OWN_FILES


def frames_of(f: Any, depth: int) -> list:
    """Up to ``depth`` frames from ``f`` outwards, ``[file, line, function]``
    innermost first, without lockscope's own frames."""
    stack: list = []
    while f is not None and len(stack) < depth:
        code = f.f_code
        if not is_own(code.co_filename):
            stack.append([code.co_filename, f.f_lineno, code.co_name])
        f = f.f_back
    return stack


def place_site(file: str, line: int, func: str, stack: list | None = None) -> int:
    """Intern a site known by its place (and the stack given, if it is new)."""
    place = (file, line, func)
    sid = _site_by_place.get(place)
    if sid is None:
        sid = _next_site_id()
        _site_by_place[place] = sid
        sites[sid] = (file, line, func, stack or None)
    return sid


def site_of_frame(f: Any) -> int:
    """Intern the site of frame ``f`` itself (a frame of the program's own code)."""
    code = f.f_code
    entry = code_sites.get(id(code))
    if entry is None:
        entry = _code_entry(code)
    by_lasti = entry[1]
    if by_lasti is None:  # a library frame: never a site
        return 0
    sid = by_lasti.get(f.f_lasti)
    if sid is None:
        sid = _site_at(f, code, by_lasti)
    return sid


def site_record(sid: int) -> dict:
    file, line, func, stack = sites[sid]
    rec = {"k": "site", "id": sid, "file": file, "line": line, "func": func}
    if stack:
        rec["stack"] = stack
    return rec


def reset_sites() -> None:
    code_sites.clear()
    _lines_by_id.clear()
    sites.clear()
    _site_by_place.clear()
    _forget_c_sites()


# ------------------------------------------------------------ definitions

def define(obj: Any, kind: str, type_: str, depth: int = 3, **fields: Any) -> None:
    """Give ``obj`` an id and remember how to describe it (written lazily).
    ``depth``: the frame of the code that created it, as site_id() counts, or a
    recorder frame below it."""
    obj._ls_id = next_id()
    if not ON:
        rec = {"k": kind, "id": obj._ls_id, "type": type_, "name": None,
               "site": None, "ts": mono_ns(), "th": None}
        rec.update(fields)
        if speedups is not None:  # (first: a traced Condition keeps _ls_def on its Ref)
            speedups.attach_ref(obj, obj._ls_id, rec)
        obj._ls_def = rec
        return
    st = current_state()
    # One walk up the stack: the maker (the first frame outside the recorder: it
    # names the object) and the site (the first outside the synchronisation library).
    site = 0
    maker = None
    info = None
    try:
        f = _getframe(depth - 1)  # (site_id's own frame is its 0)
        get = code_sites.get
        while f is not None:
            code = f.f_code
            key = id(code)
            entry = get(key)
            if entry is None:
                entry = _code_entry(code)
            if maker is None and key not in recorder_codes:
                maker = f
                names = names_by_code.get(key)
                if names is not None:
                    info = names.get(f.f_lasti)
            by_lasti = entry[1]
            if by_lasti is not None:
                site = by_lasti.get(f.f_lasti) or _site_at(f, code, by_lasti)
                break
            f = f.f_back
    except Exception:
        pass
    rec = {"k": kind, "id": obj._ls_id, "type": type_, "name": None,
           "site": site or None, "ts": mono_ns(), "th": st.tid}
    rec.update(fields)
    if maker is not None:
        # The name the source gives it: worked out once per creation site (_naming)
        if info is None:
            info = work_out_name(maker)
        expr, lib = info
        if expr is not None:
            rec["expr"] = expr
        if lib is not None:
            rec["lib"] = lib
            rec["user_site"] = user_site(maker.f_back) or None
    if speedups is not None:  # (first: a traced Condition keeps _ls_def on its Ref)
        speedups.attach_ref(obj, obj._ls_id, rec)
    obj._ls_def = rec


def set_deps(obj: Any, deps: tuple) -> None:
    """Name the objects whose definitions ``obj``'s definition refers to (written
    first by the writer), on the object and on its Ref."""
    obj._ls_deps = deps
    ref = getattr(obj, "_ls_ref", None)
    if ref is not None:
        try:
            ref._ls_deps = tuple(getattr(d, "_ls_ref", None) or d for d in deps)
        except TypeError:  # a dependency without a Ref: events name the object itself
            del obj._ls_ref


# id(code) -> {f_lasti: (expr or None, library or None)}, filled by _naming.
names_by_code: dict[int, dict] = {}
# id(code) -> True when its file is library code (_naming.is_library_file), filled
# by _naming.user_site: the C define() finds a library object's user site with it.
lib_codes: dict[int, bool] = {}
code_caches += [names_by_code, lib_codes]
_NO_NAME = (None, None)
# Set by _naming: work out (and cache) the name of what frame ``f`` creates; the
# first frame of the program's own code from ``f`` up.
work_out_name: Any = lambda f: _NO_NAME  # noqa: E731
user_site: Any = lambda f: 0  # noqa: E731


def label(obj: Any, name: str) -> None:
    """Set the user-visible name of a traced object (lock, resource, thread state)."""
    rec = getattr(obj, "_ls_def", None)
    if rec is not None:
        rec["name"] = name
        emit("name", obj, 0, {"name": name})


# ------------------------------------------------------------ C accelerator
speedups: Any = None  # set below once the module is complete


def _forget_c_caches() -> None:
    """Thread states were bound or forgotten, or the site caches cleared: the C
    accelerator's per-thread state entries and per-lock last sites are stale."""
    if speedups is not None:
        speedups.invalidate()


def _forget_c_sites() -> None:
    """The site caches were cleared: so is what the C accelerator keeps of them."""
    if speedups is not None:
        speedups.invalidate()
        speedups.forget_sites()


def _load_speedups() -> Any:
    """recorder._speedups when it was built from this source (its API number
    matches), else None (LOCKSCOPE_PURE_PYTHON=1 forces the pure-Python recorder)."""
    if os.environ.get("LOCKSCOPE_PURE_PYTHON"):
        return None
    try:
        from . import _speedups as mod
    except ImportError:
        return None
    if getattr(mod, "API", None) != 22:  # a stale build: rebuild with pip install
        return None
    try:
        mod.configure(sys.modules[__name__], "acquire", "release")
    except Exception:
        return None
    return mod


def typed(cls: type, descr: Any) -> Any:
    """``descr``, a C method of a base of ``cls`` (or one the accelerator made for
    any class), as a method of ``cls`` itself when the accelerator is there: on an
    instance of exactly ``cls`` CPython then checks its type in one comparison and
    specialises the calls (see _speedups.typed_method); else ``descr``."""
    return speedups.typed_method(cls, descr) if speedups is not None else descr


def own_c_methods(cls: type) -> None:
    """Make the C methods ``cls`` inherits (from the accelerator's types, or set on
    a base from its functions for any class) ``cls``'s own (see ``typed``)."""
    seen: set = set()
    for klass in cls.__mro__[:-1]:  # (not object's own methods)
        for name, value in list(vars(klass).items()):
            if name in seen:
                continue
            seen.add(name)
            if type(value) is _MethodDescriptor and value.__objclass__ is not cls:
                setattr(cls, name, typed(cls, value))


_MethodDescriptor = type(str.join)

speedups = _load_speedups()
if speedups is not None:
    from . import _text

    _text.fast_dumps = speedups.dumps  # (records without orjson: see _text)
    append_event = speedups.append  # noqa: F811  (same contract, in C)
    append_slow = speedups.append  # noqa: F811
    _py_site_id = site_id  # (the reference the C one is tested against)
    site_id = speedups.site_id  # noqa: F811
    _py_define = define  # (the C one's slow path, and the reference it is tested against)
    define = speedups.define  # noqa: F811
    _py_emit_here = emit_here
    emit_here = speedups.emit_here  # noqa: F811
    # A thread bound in C is bound in the accelerator's thread-locals or its
    # thread-state dict only (a threading.local costs a thread per request 3k
    # instructions): read it back from there.
    current_state = speedups.current_state  # noqa: F811
    bound_state = speedups.bound_state  # noqa: F811
    _limit = -1
