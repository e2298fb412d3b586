"""Summary mode: the writer keeps distinct behaviour and rare events, and counts the rest.

In summary mode (``mode="summary"``, ``LOCKSCOPE_MODE=summary``) the program's
threads record exactly as in full mode; the writer passes each batch of events
through a ``Summary`` before encoding it. What it writes (see docs/trace-format.md,
"Summary mode"):

* each distinct lock dependency -- (locks held with their sites) -> (lock acquired,
  site) -- is "validated once", as lockdep does: its first occurrences, for up to
  ``ACTORS_PER_DEP`` distinct threads/tasks, are written as ordinary events (the
  acquire, the acquires of the locks held then, and their releases), so the
  analyzer sees every edge of the lock-order graph with sites and distinct actors;
  later occurrences cost a dictionary lookup and are counted in a ``dep`` record;
* hold and wait times of every lock go into log2 histograms, written as ``hist``
  records per lock at most every ``interval_s`` and at the end;
* rare and important events in full, with the acquires of the locks their actor
  holds: lock waits and resource waits over ``threshold_ms`` (a wait still open at
  a flush is written once it has lasted that long, so a wait that never ends is in
  the trace, with the acquire of whoever holds the lock), holds over it, timeouts
  and cancellations, waits on events/queues/conditions/joins/tasks begun while
  holding a lock, and the lifecycle (start, end, join, job begin/end/submit) of
  every thread, task and job that has an event written;
* events of which only the kind matters are written the first time per kind and
  actor (for up to ``ACTORS_PER_DEP`` actors): try-acquire refusals (locks held,
  lock class, site) and signals (resource class, signal, site, locks held), and a
  signal also while a written wait on its resource is open (what woke it);
* what orders threads around a resource: for the first ``INSTANCES_PER_CLASS``
  resources of each class (creation site), their first ``ORDER_PER_RESOURCE``
  signals, waits (with what ends them) and passes (a pass only while every signal
  before it was written), so that a ready/handshake pattern is ordered as in full
  mode (``_first``, ``_on_pass``).

With the C accelerator, the program's threads do not even record the repeats: a
filter on the hot path (recorder/_summary_fast.c) keeps each actor's held locks and
counts, instead of buffering them, the acquires of dependencies already let through
for that actor (or for ``ACTORS_PER_DEP`` actors) and their releases (hold times in
per-lock histograms; a hold over the threshold still comes here), leaves out the
signals of a kind already let through for that actor (or for ``ACTORS_PER_DEP``
actors) while no wait on their resource is open, or while one is, those after
the actor's first (what ``_signal`` writes), counts refusals of a kind already
let through, lock waits that end within the threshold (a longer one comes here
at its end, or still open at ``before_take``), and the permits of semaphores
taken without waiting (they come here for a wait on the semaphore or a long
hold: ``summary_spilled``), holds back the lifecycle of threads and pool jobs as
``_hold_back`` does (a thread's start and joins, and its end while none of its
own events came here; a job's submission, and its begin and end while nothing of
its worker did; ``_show`` takes them), keeps each resource's ordering state and
says whose its first signals and waits were (``summary_first``), and drops
``suspend``, ``resume`` and the ``pass``es that ``_on_pass`` would not write.
Everything else still comes here, after the acquires of the counted locks its
actor holds (re-sent, marked ``SUMMARY_COUNTED``: their
occurrence is already counted). ``records()`` adds the filter's counts to the
tables before writing them.

Events written out of their thread's order (the acquires of locks held, written
when something under them is) carry their own time stamps; readers order events
by ``ts``. Everything here runs in the writer thread only. Memory is bounded: the
dependency and signal tables are written out and cleared at ``MAX_KEYS`` entries,
per-instance dependencies and histograms are kept for ``INSTANCES_PER_CLASS`` locks
of a class (creation site and type), then counted by class.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque

from . import _core

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs milliseconds at start-up)
    from typing import Any

ACTORS_PER_DEP = 4     # distinct threads/tasks whose occurrences of a dependency are written
MAX_KEYS = 50_000      # dependencies (and signal kinds) remembered before the tables are cleared
MAX_HELD = 64          # locks remembered per actor (older ones are forgotten)
INSTANCES_PER_CLASS = 64  # distinct per-instance dependencies written per dependency of lock classes
ORDER_PER_RESOURCE = 4  # signals, waits and passes written per resource to order threads by
MAX_SHOWN = 100_000    # threads, tasks and jobs remembered as shown
MAX_GONE = 4096        # threads/tasks/jobs that ended unshown, kept in case they are named later
# Summary._event: the method that judges each kind of event (but acquire and release)
_HANDLERS = {"wait": "_on_wait", "try-fail": "_on_try_fail", "timeout": "_on_give_up",
             "cancel": "_on_give_up", "wait-begin": "_on_wait_begin",
             "wait-end": "_on_wait_end", "signal": "_on_signal", "start": "_on_start",
             "join": "_on_start", "end": "_on_end", "segment-begin": "_on_segment_begin",
             "segment-end": "_on_segment_end", "pass": "_on_pass",
             "suspend": "_on_ignored", "resume": "_on_ignored"}
# The hot path's filter (C accelerator), when built; its mark on a re-sent acquire.
_fast = _core.speedups if hasattr(_core.speedups, "summary_take") else None
_COUNTED = getattr(_fast, "SUMMARY_COUNTED", object())


class _Actor:
    """What one thread or task holds, and what it is waiting for."""

    __slots__ = ("st", "task", "held", "sig", "csig", "lock_wait", "waits", "permits", "inner")

    def __init__(self, st: Any, task: Any) -> None:
        self.st, self.task = st, task
        # entries [obj, site, ts, written, actor, release_ts]
        self.held: list[list] = []
        self.sig: tuple = ()           # ((lock id, site), ...) of `held`, in order
        self.csig: tuple | None = ()   # the same by lock class (None: to compute again)
        self.lock_wait: list | None = None   # [event, written]
        self.waits: dict[int, list] = {}     # resource id -> [event, written]
        self.permits: dict[int, int] = {}    # id(semaphore) -> its holds by this actor
        self.inner: dict[int, int] = {}      # id(RLock held) -> its inner levels taken

    def unpermit(self, obj: Any) -> None:
        """One hold of semaphore ``obj`` by this actor ended."""
        n = self.permits.get(id(obj), 0) - 1
        if n > 0:
            self.permits[id(obj)] = n
        else:
            self.permits.pop(id(obj), None)

    def resign(self) -> None:
        self.sig = tuple((e[0]._ls_id, e[1]) for e in self.held)
        self.csig = None

    def class_sig(self) -> tuple:
        """The classes (and sites) of the locks held: kinds of signals and refusals are
        told apart by these, not by lock instances (a future's lock is new each time)."""
        csig = self.csig
        if csig is None:
            csig = self.csig = tuple((lock_class(e[0]), e[1]) for e in self.held)
        return csig


class _Dep:
    """Counts of one distinct dependency (held set -> lock, site)."""

    __slots__ = ("id", "obj", "site", "held", "n", "first", "last", "actors", "dirty", "by_site")

    def __init__(self, did: int, obj: Any, site: int, held: list, ts: int, by_site: bool = False) -> None:
        self.id, self.obj, self.site, self.by_site = did, obj, site, by_site
        self.held = [(e[0], e[1]) for e in held]
        self.n, self.first, self.last = 0, ts, ts
        self.actors: list[tuple] = []  # (thread state, task or None)
        self.dirty = True


class _Ord:
    """(Without the filter) what orders threads around one resource: its earliest
    signals seen, as (ts, written), and how many of its signals, waits and passes
    were judged as its first (Summary._first)."""

    __slots__ = ("signals", "signalled", "waits", "passes")

    def __init__(self) -> None:
        self.signals: list[tuple] = []
        self.signalled = self.waits = self.passes = 0


def lock_class(obj: Any) -> Any:
    """A lock's class, as lockdep keys them: its creation site and type (its id when
    it has no creation site)."""
    d = getattr(obj, "_ls_def", None)
    site = d.get("site") if d else None
    return (site, d.get("type")) if site else obj._ls_id


def is_mutex(obj: Any) -> bool:
    """Whether holding ``obj`` excludes others (not a semaphore of several permits)."""
    d = getattr(obj, "_ls_def", None)
    return not d or "Semaphore" not in d.get("type", "") or d.get("value", 1) == 1


def _drop(seq: Any, item: Any) -> bool:
    """Remove ``item`` itself (not an equal entry) from ``seq``, if there."""
    for i, x in enumerate(seq):
        if x is item:
            del seq[i]
            return True
    return False


def _bucket(ns: int) -> int:
    return ns.bit_length() - 1 if ns > 0 else 0


class _Hist:
    """log2 histograms of one lock's hold and wait times in one interval."""

    __slots__ = ("obj", "hold", "wait", "hold_sum", "wait_sum", "hold_max", "wait_max", "by_site", "fails")

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.by_site = False  # other locks of obj's class (creation site and type) are counted too
        self.hold: dict[int, int] = {}
        self.wait: dict[int, int] = {}
        self.hold_sum = self.wait_sum = self.hold_max = self.wait_max = 0
        self.fails = 0  # refused non-blocking acquires


class Summary:
    """Filters the writer's batches (see the module docstring)."""

    def __init__(self, threshold_ms: float = 10.0, interval_s: float = 10.0) -> None:
        self.threshold = int(threshold_ms * 1e6)
        self.interval = int(interval_s * 1e9)
        self.actors: dict[Any, _Actor] = {}
        self.owner: dict[int, deque] = {}         # id(lock) -> its unreleased entries, oldest first
        self.mutex: dict[int, bool] = {}          # lock id -> is_mutex()
        self.deps: dict[tuple, _Dep] = {}
        self.next_dep = 1
        self.retired: list[_Dep] = []             # counted, then forgotten (table full)
        self.signals: dict[tuple, list] = {}      # signal kind -> actors written
        self.classes: dict[tuple, int] = {}      # dependency of classes -> instance deps made
        self.hists: dict[Any, _Hist] = {}         # lock id (or class) -> its histograms
        self.hist_members: dict[Any, set] = {}    # lock class -> ids with histograms of their own
        self.open_waits: dict[int, int] = {}      # resource id -> written waits on it still open
        self.woke: dict[int, list] = {}           # resource id -> actors whose signal was written
        self.ord: dict[int, Any] = {}             # resource id -> its _Ord, or False
        self.ord_classes: dict[Any, int] = {}     # resource class -> resources with a _first state
        self.firsts: dict[tuple, int] = {}        # (resource id, waiter, actor key) -> its firsts written
        self.passes: list[tuple] = []             # (without the filter) passes to judge
        self.shown: set[int] = set()              # threads/tasks/jobs with an event written
        self.waiting: dict[int, list] = {}        # id -> its start/join/submit, until shown
        # ids of threads/tasks/jobs that ended unshown -> their lifecycle events (bounded)
        self.gone: OrderedDict[int, list] = OrderedDict()
        self.segment: dict[Any, Any] = {}         # thread state -> the job it runs
        self.hist_since = time.monotonic_ns()  # start of the histograms' interval
        self.last_hist = 0
        self.out: dict[Any, list] = {}            # thread state -> events to write
        self.order: list = []
        self.fast = False                         # the hot path's filter counts repeats
        self.resent = 0                           # counted acquires it re-sent

    def start_filter(self) -> None:
        """Turn on the hot path's filter for this recording (C accelerator only)."""
        if _fast is not None:
            _fast.summary_start(self.threshold, INSTANCES_PER_CLASS)
            self.fast = True

    def _take_filter(self, final: bool) -> None:
        """Add what the hot path's filter counted to the dependency and hold tables."""
        if not self.fast:
            return
        deps, holds, resent = _fast.summary_take(final)
        if final:
            self.fast = False
        self.resent += resent
        for held, obj, site, n, first, last, by_class in deps:
            held = [(o, s) for o, s in held if self._is_mutex(o)]
            if by_class:  # (counted as its lock classes' once that many were seen)
                dep = self._class_dep(self._class_key(held, obj, site), held, obj, site, first)
            else:
                key = (tuple((o._ls_id, s) for o, s in held), obj._ls_id, site)
                dep = self.deps.get(key)
                if dep is None:  # (its first occurrences were counted by an earlier table)
                    dep = self._new_dep(key, held, obj, site, first)
            dep.n += n
            dep.first = min(dep.first, first)
            dep.last = max(dep.last, last)
            dep.dirty = True
        for obj, _n, total, longest, buckets, fails, by_class, *waits in holds:
            h = self._class_hist(obj) if by_class else self._hist(obj)
            h.fails += fails
            _wn, wait_total, wait_longest, wait_buckets = waits
            for b, count in wait_buckets:
                h.wait[b] = h.wait.get(b, 0) + count
            h.wait_sum += wait_total
            h.wait_max = max(h.wait_max, wait_longest)
            for b, count in buckets:
                h.hold[b] = h.hold.get(b, 0) + count
            h.hold_sum += total
            if longest > h.hold_max:
                h.hold_max = longest

    # -------------------------------------------------------------- output

    def _emit(self, st: Any, ev: tuple) -> None:
        events = self.out.get(st)
        if events is None:
            events = self.out[st] = []
            self.order.append(st)
        events.append(ev)
        shown = self.shown
        if st.tid not in shown:
            self._show(st)
        task = ev[4]
        if task is not None and task._ls_id not in shown:
            self._show(task)
        job = self.segment.get(st)
        if job is not None and job._ls_id not in shown:
            self._show(job)
        obj = ev[2]
        oid = getattr(obj, "_ls_id", None)
        if oid is not None and oid not in shown and getattr(obj, "_ls_def", None) is None:
            self._show(obj)  # a thread, task or job named by the event

    # ----------------------------------------------------------- lifecycle
    # A thread, task or job (segment) is "shown" once an event of its own, or one
    # naming it, is written: its lifecycle events (start, end, join, segment-begin/
    # end, submit) are written then, so a thread per request that does nothing
    # notable costs nothing.

    def _show(self, x: Any) -> None:
        if len(self.shown) >= MAX_SHOWN:
            self.shown.clear()
        self.shown.add(x._ls_id)
        pending = self.waiting.pop(x._ls_id, None) or self.gone.pop(x._ls_id, None)
        if self.fast:  # (what the hot path's filter held back comes first)
            held = _fast.summary_shown(x)
            if held:
                pending = held + pending if pending else held
        if pending:
            for st, ev in pending:
                self._emit(st, ev)

    def _hold_back(self, target: Any, st: Any, ev: tuple) -> None:
        """Write ``ev`` (about ``target``) now if ``target`` is shown, else when it is."""
        tid = target._ls_id
        if tid in self.shown:
            self._emit(st, ev)
            return
        pending = self.gone.get(tid)
        if pending is None:
            if len(self.waiting) >= MAX_SHOWN:
                self.waiting.clear()
            pending = self.waiting.setdefault(tid, [])
        pending.append((st, ev))

    def _finish(self, target: Any, st: Any, ev: tuple) -> None:
        """``target`` ended (``ev``): written if shown, else kept a while with the rest."""
        tid = target._ls_id
        if tid in self.shown:
            self._emit(st, ev)
            return
        pending = self.waiting.pop(tid, [])
        pending.append((st, ev))
        self.gone[tid] = pending
        if len(self.gone) > MAX_GONE:
            self.gone.popitem(last=False)

    def _write_entry(self, e: list) -> None:
        """Write a hold's acquire (and its release, if it is over) once."""
        if e[3]:
            return
        e[3] = True
        actor = e[4]
        self._emit(actor.st, (e[2], "acquire", e[0], e[1], actor.task))
        if e[5] is not None:
            self._emit(actor.st, (e[5], "release", e[0], 0, actor.task))

    def _write_context(self, actor: _Actor) -> None:
        """Write the acquires of every lock ``actor`` holds (its held set)."""
        for e in actor.held:
            if not e[3]:
                self._write_entry(e)

    def _write_pending(self, actor: _Actor, pending: list) -> None:
        if not pending[1]:
            pending[1] = True
            self._write_context(actor)
            ev = pending[0]
            self._emit(actor.st, ev)
            if ev[1] == "wait":  # and who holds the lock it waits for
                for e in self.owner.get(id(ev[2]), ()):
                    if not e[3]:
                        self._write_context(e[4])
                        self._write_entry(e)
            elif ev[1] == "wait-begin":
                rid = ev[2]._ls_id
                self.open_waits[rid] = self.open_waits.get(rid, 0) + 1
                self.woke.pop(rid, None)

    def _closed_wait(self, pending: list) -> None:
        if pending[1] and pending[0][1] == "wait-begin":
            rid = pending[0][2]._ls_id
            left = self.open_waits.get(rid, 0) - 1
            if left > 0:
                self.open_waits[rid] = left
            else:
                self.open_waits.pop(rid, None)
                self.woke.pop(rid, None)

    # ------------------------------------------------------------- process

    def before_take(self, final: bool = False) -> None:
        """The writer is about to take the buffers: the lock waits the hot path's
        filter held back and that are now as old as the threshold (all when
        ``final``) go into their threads' buffers, to be judged here."""
        if self.fast:
            _fast.summary_waits(time.monotonic_ns(), final)

    def process(self, batches: list, final: bool = False, now: int = 0) -> list:
        """The events of ``batches`` (``[(thread state, events)]``) worth writing,
        in the same shape; waits open for longer than the threshold at ``now`` (all
        of them when ``final``) are written too."""
        if self.fast and _fast.summary_due():  # (its tables fill between records)
            self._take_filter(False)
        self.out, self.order = {}, []
        spilled = _fast.summary_spilled() if self.fast else None
        if spilled:  # (counted by the filter, now needed here: before what follows)
            batches = [(st, [ev]) for st, ev in spilled] + batches
        for st, events in batches:
            for ev in events:
                try:
                    self._event(st, ev)
                except Exception:  # an odd event must not lose the rest of the batch
                    self._emit(st, ev)
        if self.passes:
            self._write_passes()
        for actor in list(self.actors.values()):
            lw = actor.lock_wait
            if lw is not None and not lw[1] and (final or now - lw[0][0] >= self.threshold):
                self._write_pending(actor, lw)
            for w in actor.waits.values():
                if not w[1] and (final or now - w[0][0] >= self.threshold):
                    self._write_pending(actor, w)
        return [(st, self.out[st]) for st in self.order]

    def _actor(self, st: Any, task: Any) -> _Actor:
        key = st if task is None else task
        actor = self.actors.get(key)
        if actor is None:
            actor = self.actors[key] = _Actor(st, task)
        return actor

    def _event(self, st: Any, ev: tuple) -> None:
        op = ev[1]
        if op == "acquire":
            if len(ev) > 5 and ev[5] is _COUNTED:  # re-sent by the filter: counted there
                self._acquire(self._actor(st, ev[4]), ev[:5], counted=True)
            else:
                self._acquire(self._actor(st, ev[4]), ev)
        elif op == "release":
            self._release(self._actor(st, ev[4]), ev)
        else:  # (one lookup, not a chain of comparisons: a thread per request ends here)
            getattr(self, _HANDLERS.get(op, "_on_other"))(st, ev)

    def _on_wait(self, st: Any, ev: tuple) -> None:
        self._actor(st, ev[4]).lock_wait = [ev, False]

    def _on_try_fail(self, st: Any, ev: tuple) -> None:
        self._try_fail(self._actor(st, ev[4]), ev)

    def _on_give_up(self, st: Any, ev: tuple) -> None:
        actor = self._actor(st, ev[4])
        lw = actor.lock_wait
        if lw is not None and lw[0][2] is ev[2]:
            actor.lock_wait = None
            self._count_wait(ev[2], max(0, ev[0] - lw[0][0]))
            self._write_pending(actor, lw)
        self._write_context(actor)
        self._emit(st, ev)

    def _on_wait_begin(self, st: Any, ev: tuple) -> None:
        actor = self._actor(st, ev[4])
        pending = [ev, False]
        actor.waits[ev[2]._ls_id] = pending
        first = self._first(actor, ev[2], True)  # (consumed even when written anyway)
        if actor.held or first:
            self._write_pending(actor, pending)

    def _on_wait_end(self, st: Any, ev: tuple) -> None:
        actor = self._actor(st, ev[4])
        pending = actor.waits.pop(ev[2]._ls_id, None)
        if pending is None:
            return
        if not pending[1] and ev[0] - pending[0][0] >= self.threshold:
            self._write_pending(actor, pending)
        if pending[1]:
            self._emit(st, ev)
            self._closed_wait(pending)

    def _on_signal(self, st: Any, ev: tuple) -> None:
        self._signal(self._actor(st, ev[4]), ev)

    def _on_start(self, st: Any, ev: tuple) -> None:  # (and join)
        self._hold_back(ev[2], st, ev)

    def _on_end(self, st: Any, ev: tuple) -> None:
        self._finish(ev[2], st, ev)
        self._ended(st, ev)

    def _on_segment_begin(self, st: Any, ev: tuple) -> None:
        self.segment[st] = ev[2]
        self._hold_back(ev[2], st, ev)

    def _on_segment_end(self, st: Any, ev: tuple) -> None:
        self.segment.pop(st, None)
        self._finish(ev[2], st, ev)

    def _on_pass(self, st: Any, ev: tuple) -> None:
        """A wait that found its resource signalled: written if it is one of the
        resource's first ORDER_PER_RESOURCE while all its signals so far were
        written (see _first), so that the analyzer orders the last signaller before
        the passer. (The hot path's filter lets through only those.)"""
        if self.fast:
            self._emit(st, ev)
        else:  # (judged once the batches' signals are all seen: _write_passes)
            self.passes.append((st, ev))

    def _write_passes(self) -> None:
        """(Without the filter) write the passes of each resource's first
        ORDER_PER_RESOURCE that followed only written signals on it."""
        for st, ev in self.passes:
            o = self.ord.get(ev[2]._ls_id)
            if not o or o.passes >= ORDER_PER_RESOURCE:
                continue
            before = [s for s in o.signals if s[0] < ev[0]]
            if 0 < len(before) <= ORDER_PER_RESOURCE and all(s[1] for s in before):
                o.passes += 1
                self._emit(st, ev)
        self.passes = []

    def _on_ignored(self, st: Any, ev: tuple) -> None:  # (suspend, resume)
        return

    def _on_other(self, st: Any, ev: tuple) -> None:
        """dropped, resync, name, and anything unknown: as recorded."""
        if ev[1] == "resync":
            self._resync(st, ev[2])
        self._emit(st, ev)

    def _is_mutex(self, obj: Any) -> bool:
        mutex = self.mutex.get(obj._ls_id)
        if mutex is None:
            if len(self.mutex) >= MAX_KEYS:
                self.mutex.clear()
            mutex = self.mutex[obj._ls_id] = is_mutex(obj)
        return mutex

    def _acquire(self, actor: _Actor, ev: tuple, counted: bool = False) -> None:
        ts, _op, obj, site, task = ev[:5]
        if actor.held and self._reenters(actor, obj):
            return
        entry = [obj, site, ts, False, actor, None]
        lw = actor.lock_wait
        if lw is not None and lw[0][2] is obj:  # (an asyncio task may take other locks meanwhile)
            actor.lock_wait = None
            wait_ns = max(0, ts - lw[0][0])
            self._count_wait(obj, wait_ns)
            if lw[1] or wait_ns >= self.threshold:
                self._write_pending(actor, lw)
                entry[3] = True
                self._emit(actor.st, ev)
        owners = self.owner.get(id(obj))
        if owners is None:
            owners = self.owner[id(obj)] = deque()
        elif len(owners) >= MAX_HELD:  # acquired and never released: forget the oldest
            gone = owners.popleft()
            if not self._is_mutex(obj):
                gone[4].unpermit(obj)
        owners.append(entry)
        if not self._is_mutex(obj):  # a semaphore with several permits excludes nothing
            actor.permits[id(obj)] = actor.permits.get(id(obj), 0) + 1
            return
        key = (actor.sig, obj._ls_id, site)
        dep = self.deps.get(key)
        if dep is None:
            dep = self._new_dep(key, actor.held, obj, site, ts)
        if not counted:
            dep.n += 1
            dep.last = max(dep.last, ts)
            dep.dirty = True
        who = (actor.st, task)
        if not dep.by_site and len(dep.actors) < ACTORS_PER_DEP and who not in dep.actors:
            dep.actors.append(who)
            if not entry[3]:
                self._write_context(actor)
                entry[3] = True
                self._emit(actor.st, ev)
        held = actor.held
        held.append(entry)
        if len(held) > MAX_HELD:
            del held[0]
            actor.resign()
        else:
            actor.sig += ((obj._ls_id, site),)
            actor.csig = None

    def _new_dep(self, key: tuple, held: list, obj: Any, site: int, ts: int) -> _Dep:
        """A dependency not seen before on these lock instances: a new one, unless its
        dependency of lock classes has INSTANCES_PER_CLASS already (locks made per
        request or per item): then the class's own, counted and not written."""
        self._make_room()
        ckey = self._class_key(held, obj, site)
        made = self.classes.get(ckey, 0)
        if made >= INSTANCES_PER_CLASS:
            return self._class_dep(ckey, held, obj, site, ts)
        self.classes[ckey] = made + 1
        dep = self.deps[key] = _Dep(self.next_dep, obj, site, held, ts)
        self.next_dep += 1
        return dep

    def _make_room(self) -> None:
        """Bound the dependency table: when full, its counts so far go out at the
        next records and it starts again."""
        if len(self.deps) >= MAX_KEYS:
            self.retired += [d for d in self.deps.values() if d.dirty]
            self.deps.clear()
            self.classes.clear()

    @staticmethod
    def _class_key(held: list, obj: Any, site: int) -> tuple:
        """The key of a dependency of lock classes: each held lock's class and site,
        the lock's class, the site (the C filter hashes the same: sf_class_dep)."""
        return (tuple((lock_class(e[0]), e[1]) for e in held), lock_class(obj), site)

    def _class_dep(self, ckey: tuple, held: list, obj: Any, site: int, ts: int) -> _Dep:
        """The dependency of lock classes ``ckey`` (made, named by these instances,
        if new)."""
        dep = self.deps.get(ckey)
        if dep is None:
            self._make_room()
            dep = self.deps[ckey] = _Dep(self.next_dep, obj, site, held, ts, by_site=True)
            self.next_dep += 1
        return dep

    @staticmethod
    def _reenters(actor: _Actor, obj: Any) -> bool:
        """Whether this acquire of ``obj`` is an inner level of a reentrant lock the
        actor holds: counted here, no dependency (its owner never waits for it) and
        no hold of its own (a hold runs from the outermost acquire to its release,
        as the analyzer pairs them).  The C accelerator leaves these out at the
        source (rlock_inner_level)."""
        if not any(e[0] is obj for e in actor.held):
            return False
        d = getattr(obj, "_ls_def", None)
        if not d or not d.get("reentrant"):
            return False
        actor.inner[id(obj)] = actor.inner.get(id(obj), 0) + 1
        return True

    def _release(self, actor: _Actor, ev: tuple) -> None:
        """Close the hold ``ev`` ends: the actor's own latest of that lock, else (a
        lock handed off, a semaphore released by another thread) the lock's oldest."""
        ts, obj = ev[0], ev[2]
        inner = actor.inner
        if inner and id(obj) in inner:  # an inner level of a reentrant lock ends
            if inner[id(obj)] > 1:
                inner[id(obj)] -= 1
            else:
                del inner[id(obj)]
            return
        owners = self.owner.get(id(obj))
        if not owners:
            return  # acquired before recording (or forgotten)
        held = actor.held
        entry = None
        if held and held[-1][0] is obj:  # the common case: the latest lock taken
            entry = held.pop()
            actor.sig = actor.sig[:-1]
            actor.csig = None
        else:
            for i in range(len(held) - 2, -1, -1):
                if held[i][0] is obj:
                    entry = held.pop(i)
                    actor.resign()
                    break
        mutex = entry is not None or self._is_mutex(obj)
        if entry is None:
            if not mutex and id(obj) in actor.permits:
                # a semaphore of several permits: the actor's own, oldest first
                entry = next((e for e in owners if e[4] is actor), None)
            if entry is None and owners[0][2] <= ts:
                # A lock handed off, or a permit given back by another thread (a pool's
                # idle semaphore): its oldest hold.  (Kept, such holds piled up to
                # MAX_HELD and every release scanned them.)
                entry = owners[0]
            if entry is None:
                return
            other = entry[4]
            if _drop(other.held, entry):
                other.resign()
        if not mutex:
            entry[4].unpermit(obj)
        _drop(owners, entry)
        if not owners:
            del self.owner[id(obj)]
        entry[5] = ts
        hold_ns = max(0, ts - entry[2])
        self._count_hold(obj, hold_ns)
        if not entry[3] and hold_ns >= self.threshold:
            self._write_entry(entry)  # a long hold: acquire and release
        elif entry[3]:
            self._emit(actor.st, ev)

    def _seen(self, key: tuple, actor: _Actor) -> bool:
        """Whether ``key`` (a kind of event) was written for ``actor`` or for
        ACTORS_PER_DEP actors already; if not, it is now."""
        seen = self.signals.get(key)
        if seen is None:
            if len(self.signals) >= MAX_KEYS:
                self.signals.clear()
            seen = self.signals[key] = []
        who = (actor.st, actor.task)
        if len(seen) >= ACTORS_PER_DEP or who in seen:
            return True
        seen.append(who)
        return False

    def _try_fail(self, actor: _Actor, ev: tuple) -> None:
        """A refused non-blocking acquire: counted; written the first time for each
        kind (locks held, lock class, site) and actor, as a dependency is (library
        code polls with them: a pool's idle semaphore)."""
        obj = ev[2]
        self._hist(obj).fails += 1
        if not self._seen(("try-fail", actor.class_sig(), lock_class(obj), ev[3]), actor):
            self._write_context(actor)
            self._emit(actor.st, ev)

    def _signal(self, actor: _Actor, ev: tuple) -> None:
        """A signal is written the first time its kind (resource, signal, site, locks
        held) is seen for each of up to ACTORS_PER_DEP actors, or while a written
        wait on its resource is open."""
        obj = ev[2]
        extra = ev[5] if len(ev) > 5 else None
        if extra and extra.get("sig") == "submit":  # a job's submission: with the job
            self._hold_back(obj, actor.st, ev)
            return
        rdef = getattr(obj, "_ls_def", None)
        res_key = rdef.get("site") if rdef else None
        key = (res_key if res_key else obj._ls_id, extra.get("sig") if extra else None,
               ev[3], actor.class_sig())
        first = self._first(actor, obj, False)
        write = not self._seen(key, actor) or first
        rid = obj._ls_id
        if not write and rid in self.open_waits:
            # a written wait on it is open: its first signal by each actor (what woke it)
            woke = self.woke.setdefault(rid, [])
            who = (actor.st, actor.task)
            if who not in woke and len(woke) < ACTORS_PER_DEP:
                woke.append(who)
                write = True
        if write:
            self._write_context(actor)
            self._emit(actor.st, ev)
        if not self.fast:
            self._signalled(rid, ev[0], write)

    # ------------------------------------------------- what orders actors
    # The first INSTANCES_PER_CLASS resources of each class (creation site) to be
    # signalled or waited on have their first ORDER_PER_RESOURCE signals, waits
    # (with the signals that end them) and passes written: what the analyzer's
    # happens-before needs to order a ready/handshake pattern (an Event set when a
    # server is ready, and again when it has done a request; a future's result)
    # at a cost bounded per class. The hot path's filter keeps the same (SfOrd in
    # _summary_fast.c) and says whose they are (summary_first).

    def _ord(self, obj: Any) -> _Ord | None:
        """The ordering state of resource ``obj``, or None when it is not one of its
        class's first INSTANCES_PER_CLASS (or has no creation site)."""
        rid = obj._ls_id
        o = self.ord.get(rid)
        if o is None:
            d = getattr(obj, "_ls_def", None)
            cls = d.get("site") if d else None
            if len(self.ord) >= MAX_KEYS:
                self.ord.clear()
                self.ord_classes.clear()
            made = self.ord_classes.get(cls, 0) if cls else INSTANCES_PER_CLASS
            if made < INSTANCES_PER_CLASS:
                self.ord_classes[cls] = made + 1
                o = self.ord[rid] = _Ord()
            else:
                o = self.ord[rid] = False
        return o or None

    def _first(self, actor: _Actor, obj: Any, waiter: bool) -> bool:
        """Whether this signal (a wait, if ``waiter``) of ``actor`` is one of the
        first ORDER_PER_RESOURCE on resource ``obj`` that order others (see _ord):
        written."""
        if self.fast:
            key = actor.st if actor.task is None else actor.task
            mark = (obj._ls_id, waiter, key)
            written = self.firsts.get(mark, 0)
            if written >= ORDER_PER_RESOURCE or _fast.summary_first(obj, key, waiter) <= written:
                return False
            self.firsts[mark] = written + 1  # (bounded by the filter's SfOrd)
            return True
        o = self._ord(obj)
        if o is None:
            return False
        if waiter:
            o.waits += 1
            return o.waits <= ORDER_PER_RESOURCE
        o.signalled += 1
        return o.signalled <= ORDER_PER_RESOURCE

    def _signalled(self, rid: int, ts: int, written: bool) -> None:
        """(Without the filter) a signal on resource ``rid``: its earliest
        ORDER_PER_RESOURCE + 1 kept (the batches of threads are judged one thread
        after the other)."""
        o = self.ord.get(rid)
        if o:
            o.signals.append((ts, written))
            o.signals.sort()
            del o.signals[ORDER_PER_RESOURCE + 1:]

    def _ended(self, st: Any, ev: tuple) -> None:
        obj, task = ev[2], ev[4]
        if task is not None and obj is task:
            gone = [self.actors.pop(task, None)]
        elif obj is st:
            self.segment.pop(st, None)
            gone = [self.actors.pop(k) for k in [k for k, a in self.actors.items() if a.st is st]]
        else:
            return
        for actor in gone:
            if actor is not None:
                for pending in actor.waits.values():
                    self._closed_wait(pending)

    def _resync(self, st: Any, gap: Any) -> None:
        """Events of ``st`` were lost: apply what the gap says about its locks."""
        for obj, task, acquired, released in list(gap.locks.values()):
            actor = self._actor(st, task)
            actor.inner.pop(id(obj), None)  # (its levels are counted below, each a hold)
            for _ in range(released):
                for i in range(len(actor.held) - 1, -1, -1):
                    if actor.held[i][0] is obj:
                        del actor.held[i]
                        break
            for _ in range(max(0, acquired - released)):
                # known to the reader from the resync record: its release is written
                actor.held.append([obj, 0, gap.since, True, actor, None])
            actor.resign()

    # ---------------------------------------------------------- histograms

    def _hist(self, obj: Any) -> _Hist:
        """The histograms of ``obj``: its own for the first INSTANCES_PER_CLASS locks
        of its class, then its class's (``by_site``)."""
        oid = obj._ls_id
        h = self.hists.get(oid)
        if h is not None:
            return h
        cls = lock_class(obj)
        members = self.hist_members.get(cls)
        if members is None:
            if len(self.hist_members) >= MAX_KEYS:
                self.hist_members.clear()
            members = self.hist_members[cls] = set()
        if oid in members or len(members) < INSTANCES_PER_CLASS:
            members.add(oid)
            h = self.hists[oid] = _Hist(obj)
            return h
        return self._class_hist(obj, cls)

    def _class_hist(self, obj: Any, cls: Any = None) -> _Hist:
        """The histograms of the class of ``obj`` (``by_site``): its locks past the
        first INSTANCES_PER_CLASS."""
        if cls is None:
            cls = lock_class(obj)
        h = self.hists.get(("class", cls))
        if h is None:
            h = self.hists[("class", cls)] = _Hist(obj)
            h.by_site = True
        return h

    def _count_hold(self, obj: Any, ns: int) -> None:
        h = self._hist(obj)
        b = _bucket(ns)
        h.hold[b] = h.hold.get(b, 0) + 1
        h.hold_sum += ns
        if ns > h.hold_max:
            h.hold_max = ns

    def _count_wait(self, obj: Any, ns: int) -> None:
        h = self._hist(obj)
        b = _bucket(ns)
        h.wait[b] = h.wait.get(b, 0) + 1
        h.wait_sum += ns
        if ns > h.wait_max:
            h.wait_max = ns

    # ------------------------------------------------------------- records

    def records(self, define: Any, now: int, final: bool = False, rotated: bool = False,
                define_site: Any = None) -> list[dict]:
        """The ``dep`` and ``hist`` records due at ``now``: dependencies whose
        counts changed and histograms, every ``interval`` (and when ``final``, or
        in a new part: ``rotated`` writes every dependency again). ``define(obj)``
        writes an object's definition and returns its id, ``define_site(sid)`` a
        site's (both once per part)."""
        site = define_site if define_site is not None else (lambda sid: sid)
        if not (final or rotated or now - self.last_hist >= self.interval):
            return []
        self.last_hist = now
        self._take_filter(final)
        out = []
        retired, self.retired = self.retired, []
        for dep in retired + list(self.deps.values()):
            if dep.n == 0 or not (dep.dirty or rotated):
                continue  # (n 0: made by an acquire the filter counted, its counts to come)
            dep.dirty = False
            out.append({
                "k": "dep", "ts": now, "id": dep.id, "obj": define(dep.obj),
                "site": site(dep.site) if dep.site else None,
                "held": [{"obj": define(o), "site": site(s) if s else None} for o, s in dep.held],
                "n": dep.n, "first": dep.first, "last": dep.last,
                "actors": [{"th": define(st), "task": define(task) if task is not None else None}
                           for st, task in dep.actors]})
            if dep.by_site:
                out[-1]["by_site"] = True
        for h in self.hists.values():
            rec: dict = {"k": "hist", "ts": now, "since": self.hist_since, "obj": define(h.obj)}
            if h.by_site:
                rec["by_site"] = True
            if h.fails:
                rec["try_fails"] = h.fails
            if h.hold:
                rec["hold"] = {"n": sum(h.hold.values()), "sum_ns": h.hold_sum, "max_ns": h.hold_max,
                               "buckets": sorted(h.hold.items())}
            if h.wait:
                rec["wait"] = {"n": sum(h.wait.values()), "sum_ns": h.wait_sum, "max_ns": h.wait_max,
                               "buckets": sorted(h.wait.items())}
            out.append(rec)
        self.hists = {}
        self.hist_since = now
        return out
