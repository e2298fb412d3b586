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
  the trace), holds over it, try-acquire failures, timeouts, cancellations, waits
  on events/queues/conditions/joins/tasks begun while holding a lock, thread and
  task starts/ends/joins, and the first signals of each distinct kind (resource,
  signal, site, locks held) for up to ``ACTORS_PER_DEP`` actors.

Events written out of their thread's order (the acquires of locks held, written
when something under them is) carry their own time stamps; readers order events
by ``ts``. Everything here runs in the writer thread only. Memory is bounded: the
dependency and signal tables are written out and cleared at ``MAX_KEYS`` entries.
"""

from __future__ import annotations

import time
from typing import Any

ACTORS_PER_DEP = 4     # distinct threads/tasks whose occurrences of a dependency are written
MAX_KEYS = 50_000      # dependencies (and signal kinds) remembered before the tables are cleared
MAX_HELD = 64          # locks remembered per actor (older ones are forgotten)
MAX_SIGNALS = 4096     # resources whose last unwritten signals are kept
LIFECYCLE = frozenset(("start", "end", "join", "segment-begin", "segment-end"))
GIVE_UP = frozenset(("timeout", "cancel", "try-fail"))


class _Actor:
    """What one thread or task holds, and what it is waiting for."""

    __slots__ = ("st", "task", "held", "sig", "lock_wait", "waits")

    def __init__(self, st: Any, task: Any) -> None:
        self.st, self.task = st, task
        # entries [obj, site, ts, written, actor, release_ts]
        self.held: list[list] = []
        self.sig: tuple = ()           # ((lock id, site), ...) of `held`, in order
        self.lock_wait: list | None = None   # [event, written]
        self.waits: dict[int, list] = {}     # resource id -> [event, written]

    def resign(self) -> None:
        self.sig = tuple((e[0]._ls_id, e[1]) for e in self.held)


class _Dep:
    """Counts of one distinct dependency (held set -> lock, site)."""

    __slots__ = ("id", "obj", "site", "held", "n", "first", "last", "actors", "dirty")

    def __init__(self, did: int, obj: Any, site: int, held: list, ts: int) -> None:
        self.id, self.obj, self.site = did, obj, site
        self.held = [(e[0], e[1]) for e in held]
        self.n, self.first, self.last = 0, ts, ts
        self.actors: list[tuple] = []  # (thread state, task or None)
        self.dirty = True


def _bucket(ns: int) -> int:
    return ns.bit_length() - 1 if ns > 0 else 0


class _Hist:
    """log2 histograms of one lock's hold and wait times in one interval."""

    __slots__ = ("obj", "hold", "wait", "hold_sum", "wait_sum", "hold_max", "wait_max")

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.hold: dict[int, int] = {}
        self.wait: dict[int, int] = {}
        self.hold_sum = self.wait_sum = self.hold_max = self.wait_max = 0


class Summary:
    """Filters the writer's batches (see the module docstring)."""

    def __init__(self, threshold_ms: float = 10.0, interval_s: float = 10.0) -> None:
        self.threshold = int(threshold_ms * 1e6)
        self.interval = int(interval_s * 1e9)
        self.actors: dict[Any, _Actor] = {}
        self.owner: dict[int, list] = {}          # id(lock) -> latest unreleased entry
        self.deps: dict[tuple, _Dep] = {}
        self.next_dep = 1
        self.retired: list[_Dep] = []             # counted, then forgotten (table full)
        self.signals: dict[tuple, list] = {}      # signal kind -> actors written
        self.hists: dict[int, _Hist] = {}
        self.hist_since = time.monotonic_ns()  # start of the histograms' interval
        self.last_hist = 0
        self.out: dict[Any, list] = {}            # thread state -> events to write
        self.order: list = []

    # -------------------------------------------------------------- output

    def _emit(self, st: Any, ev: tuple) -> None:
        events = self.out.get(st)
        if events is None:
            events = self.out[st] = []
            self.order.append(st)
        events.append(ev)

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
            self._emit(actor.st, pending[0])

    # ------------------------------------------------------------- process

    def process(self, batches: list, final: bool = False, now: int = 0) -> list:
        """The events of ``batches`` (``[(thread state, events)]``) worth writing,
        in the same shape; waits open for longer than the threshold at ``now`` (all
        of them when ``final``) are written too."""
        self.out, self.order = {}, []
        for st, events in batches:
            for ev in events:
                try:
                    self._event(st, ev)
                except Exception:  # an odd event must not lose the rest of the batch
                    self._emit(st, ev)
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
            self._acquire(self._actor(st, ev[4]), ev)
        elif op == "release":
            self._release(self._actor(st, ev[4]), ev)
        elif op == "wait":
            actor = self._actor(st, ev[4])
            actor.lock_wait = [ev, False]
        elif op in GIVE_UP:
            actor = self._actor(st, ev[4])
            lw = actor.lock_wait
            if lw is not None and lw[0][2] is ev[2]:
                actor.lock_wait = None
                self._count_wait(ev[2], ev[0] - lw[0][0])
                self._write_pending(actor, lw)
            self._write_context(actor)
            self._emit(st, ev)
        elif op == "wait-begin":
            actor = self._actor(st, ev[4])
            pending = [ev, False]
            actor.waits[ev[2]._ls_id] = pending
            if actor.held:
                self._write_pending(actor, pending)
        elif op == "wait-end":
            actor = self._actor(st, ev[4])
            pending = actor.waits.pop(ev[2]._ls_id, None)
            if pending is None:
                return
            if not pending[1] and ev[0] - pending[0][0] >= self.threshold:
                self._write_pending(actor, pending)
            if pending[1]:
                self._emit(st, ev)
        elif op == "signal":
            self._signal(self._actor(st, ev[4]), ev)
        elif op in LIFECYCLE:
            self._emit(st, ev)
            if op == "end":
                self._ended(st, ev)
        elif op == "pass" or op == "suspend" or op == "resume":
            return
        else:  # dropped, resync, name, and anything unknown: as recorded
            if op == "resync":
                self._resync(st, ev[2])
            self._emit(st, ev)

    def _acquire(self, actor: _Actor, ev: tuple) -> None:
        ts, _op, obj, site, task = ev[:5]
        entry = [obj, site, ts, False, actor, None]
        lw = actor.lock_wait
        if lw is not None and lw[0][2] is obj:  # (an asyncio task may take other locks meanwhile)
            actor.lock_wait = None
            wait_ns = ts - lw[0][0]
            self._count_wait(obj, wait_ns)
            if lw[1] or wait_ns >= self.threshold:
                self._write_pending(actor, lw)
                entry[3] = True
                self._emit(actor.st, ev)
        key = (actor.sig, obj._ls_id, site)
        dep = self.deps.get(key)
        if dep is None:
            if len(self.deps) >= MAX_KEYS:  # bounded: counts so far go out at the next records
                self.retired += [d for d in self.deps.values() if d.dirty]
                self.deps.clear()
            dep = self.deps[key] = _Dep(self.next_dep, obj, site, actor.held, ts)
            self.next_dep += 1
        dep.n += 1
        dep.last = ts
        dep.dirty = True
        who = (actor.st, task)
        if len(dep.actors) < ACTORS_PER_DEP and who not in dep.actors:
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
        self.owner[id(obj)] = entry

    def _release(self, actor: _Actor, ev: tuple) -> None:
        ts, obj = ev[0], ev[2]
        held = actor.held
        entry = None
        for i in range(len(held) - 1, -1, -1):
            if held[i][0] is obj:
                entry = held.pop(i)
                break
        if entry is None:  # released by another thread or task (a lock handed off)
            entry = self.owner.get(id(obj))
            if entry is None or entry[0] is not obj or entry[5] is not None:
                return
            other = entry[4]
            try:
                other.held.remove(entry)
            except ValueError:
                pass
            other.resign()
        else:
            actor.resign()
        if self.owner.get(id(obj)) is entry:
            del self.owner[id(obj)]
        entry[5] = ts
        hold_ns = ts - entry[2]
        self._count_hold(obj, hold_ns)
        if not entry[3] and hold_ns >= self.threshold:
            self._write_entry(entry)  # a long hold: acquire and release
        elif entry[3]:
            self._emit(actor.st, ev)

    def _signal(self, actor: _Actor, ev: tuple) -> None:
        """A signal is written the first time its kind (resource, signal, site, locks
        held) is seen for each of up to ACTORS_PER_DEP actors, or while a written
        wait on its resource is open."""
        obj = ev[2]
        extra = ev[5] if len(ev) > 5 else None
        rdef = getattr(obj, "_ls_def", None)
        res_key = rdef.get("site") if rdef else None
        key = (res_key if res_key else obj._ls_id, extra.get("sig") if extra else None,
               ev[3], actor.sig)
        seen = self.signals.get(key)
        if seen is None:
            if len(self.signals) >= MAX_KEYS:
                self.signals.clear()
            seen = self.signals[key] = []
        who = (actor.st, actor.task)
        write = False
        if len(seen) < ACTORS_PER_DEP and who not in seen:
            seen.append(who)
            write = True
        elif self._waited_on(obj._ls_id):
            write = True
        if write:
            self._write_context(actor)
            self._emit(actor.st, ev)

    def _waited_on(self, rid: int) -> bool:
        for a in self.actors.values():
            w = a.waits.get(rid)
            if w is not None and w[1]:
                return True
        return False

    def _ended(self, st: Any, ev: tuple) -> None:
        obj, task = ev[2], ev[4]
        if task is not None and obj is task:
            self.actors.pop(task, None)
        elif obj is st:
            for key in [k for k, a in self.actors.items() if a.st is st]:
                del self.actors[key]

    def _resync(self, st: Any, gap: Any) -> None:
        """Events of ``st`` were lost: apply what the gap says about its locks."""
        for obj, task, acquired, released in list(gap.locks.values()):
            actor = self._actor(st, task)
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

    def _count_hold(self, obj: Any, ns: int) -> None:
        h = self.hists.get(id(obj))
        if h is None:
            h = self.hists[id(obj)] = _Hist(obj)
        b = _bucket(ns)
        h.hold[b] = h.hold.get(b, 0) + 1
        h.hold_sum += ns
        if ns > h.hold_max:
            h.hold_max = ns

    def _count_wait(self, obj: Any, ns: int) -> None:
        h = self.hists.get(id(obj))
        if h is None:
            h = self.hists[id(obj)] = _Hist(obj)
        b = _bucket(ns)
        h.wait[b] = h.wait.get(b, 0) + 1
        h.wait_sum += ns
        if ns > h.wait_max:
            h.wait_max = ns

    # ------------------------------------------------------------- records

    def records(self, define: Any, now: int, final: bool = False, rotated: bool = False) -> list[dict]:
        """The ``dep`` and ``hist`` records due at ``now``: dependencies whose
        counts changed and histograms, every ``interval`` (and when ``final``, or
        in a new part: ``rotated`` writes every dependency again). ``define(obj)``
        writes an object's definition and returns its id."""
        if not (final or rotated or now - self.last_hist >= self.interval):
            return []
        self.last_hist = now
        out = []
        retired, self.retired = self.retired, []
        for dep in retired + list(self.deps.values()):
            if not (dep.dirty or rotated):
                continue
            dep.dirty = False
            out.append({
                "k": "dep", "ts": now, "id": dep.id, "obj": define(dep.obj),
                "site": dep.site or None,
                "held": [{"obj": define(o), "site": s or None} for o, s in dep.held],
                "n": dep.n, "first": dep.first, "last": dep.last,
                "actors": [{"th": define(st), "task": define(task) if task is not None else None}
                           for st, task in dep.actors]})
        for h in self.hists.values():
            rec: dict = {"k": "hist", "ts": now, "since": self.hist_since, "obj": define(h.obj)}
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
