"""Holds paired per lock, and across gaps of lost events.

derive.sql pairs each acquire with the same actor's next release, which is exact
while every actor's acquires and releases of a lock alternate. The lock
instances it leaves out (`lock_pairing`) are paired here, in one pass over each
lock's operations in event order:

* a non-reentrant mutex (Lock, semaphore of value 1) is paired per lock: a
  release by any thread, task or loop callback closes the current hold (lock
  hand-off, asyncio `Condition.wait`, `call_soon(lock.release)`); a release of a
  lock that is not held (taken before recording started, or in a gap) closes
  nothing;
* an RLock is paired per owner, by nesting depth; a semaphore of another value
  per actor (each acquire one hold, each release the actor's oldest);
* at a gap of thread T (`gaps`), holds of T's actors still open are closed
  there with an unknown end (`end_unknown`) — unless the gap is a `resync`,
  which tells exactly what T's actors acquired and released of each lock in the
  gap: a lock it does not list was not touched (the hold goes on); one released
  in the gap closes the open hold there (end unknown); one acquired and not
  released opens a hold at the resync whose start is unknown (`start_unknown`).

Linear: one sort of the operations of these locks, one pass.
"""
from __future__ import annotations

from collections import defaultdict, deque

import duckdb

# a hold opened by a recorded acquire: the rest of its columns come from that event
ENDS = ("seq", "end_seq", "end_ts", "end_actor", "end_unknown")
# a hold opened in a gap (resync)
OPENED_IN_GAP = ("run", "obj", "actor", "th", "task", "seq", "ts", "end_seq", "end_ts", "end_actor", "end_unknown")

OPS_SQL = """
SELECT e.run::VARCHAR, e.obj, e.seq, e.ts, e.th, e.task, e.actor, e.op::VARCHAR, e.site, e.reentrant, e.mutex
FROM lock_events e SEMI JOIN lock_pairing p ON p.run = e.run AND p.obj = e.obj
WHERE e.op IN ('acquire', 'release')
ORDER BY e.run, e.obj, e.seq
"""
# The gaps of the runs concerned, less each `dropped` gap that a `resync` of the
# same thread tells about: one with no event of that thread between them (the
# writer counts the loss at a flush, the thread writes its resync where it
# resumes, so they come in either order).
GAPS_SQL = """
WITH g AS (
    SELECT * FROM gaps WHERE run IN (SELECT DISTINCT run FROM lock_pairing)
), covered AS (
    SELECT DISTINCT d.run, d.seq
    FROM g d JOIN g r ON r.run = d.run AND r.th = d.th AND r.kind = 'resync'
    WHERE d.kind = 'dropped' AND NOT EXISTS (
        SELECT 1 FROM events e WHERE e.run = d.run AND e.th = d.th
        AND e.seq > least(d.seq, r.seq) AND e.seq < greatest(d.seq, r.seq))
)
SELECT run::VARCHAR, seq, ts, th FROM g ANTI JOIN covered c USING (run, seq) ORDER BY run, seq
"""
LOCKS_SQL = """
SELECT p.run::VARCHAR, p.obj, k.reentrant, k.mutex
FROM lock_pairing p JOIN lock_keys k ON k.run = p.run AND k.id = p.obj ORDER BY p.run, p.obj
"""
RESYNC_SQL = """
SELECT run::VARCHAR, gap_seq, th, obj, task, acquired, released FROM resync_locks
WHERE (run, obj) IN (SELECT run, obj FROM lock_pairing)
"""


class _Hold:
    __slots__ = ("actor", "th", "task", "seq", "ts", "site", "start_unknown")

    def __init__(self, actor, th, task, seq, ts, site, start_unknown=False):
        self.actor, self.th, self.task = actor, th, task
        self.seq, self.ts, self.site, self.start_unknown = seq, ts, site, start_unknown


class _Lock:
    """The pairing state of one lock instance."""

    def __init__(self, run: str, obj: int, reentrant: bool, mutex: bool, out: list, gap_out: list) -> None:
        self.run, self.obj, self.out, self.gap_out = run, obj, out, gap_out
        self.per_lock = mutex and not reentrant
        self.reentrant = reentrant
        self.queue: deque[_Hold] = deque()                 # per lock: open holds, oldest first
        self.owned: dict[int, deque[_Hold]] = defaultdict(deque)  # per actor (RLock, semaphores)
        self.depth: dict[int, int] = defaultdict(int)       # RLock nesting per actor

    def _close(self, h: _Hold, seq: int | None, ts: int | None, actor: int | None, unknown: bool) -> None:
        if h.start_unknown:
            self.gap_out.append((self.run, self.obj, h.actor, h.th, h.task, h.seq, h.ts, seq, ts, actor, unknown))
        else:
            self.out.append((h.seq, seq, ts, actor, unknown))

    def acquire(self, seq, ts, th, task, actor, site) -> None:
        h = _Hold(actor, th, task, seq, ts, site)
        if self.per_lock:
            self.queue.append(h)
        elif self.reentrant:
            self.depth[actor] += 1
            if self.depth[actor] == 1:
                self.owned[actor].append(h)
        else:
            self.owned[actor].append(h)

    def release(self, seq, ts, actor) -> None:
        if self.per_lock:
            if self.queue:
                self._close(self.queue.popleft(), seq, ts, actor, False)
        elif self.reentrant:
            if self.depth[actor] > 0:
                self.depth[actor] -= 1
                if self.depth[actor] == 0 and self.owned[actor]:
                    self._close(self.owned[actor].popleft(), seq, ts, actor, False)
        elif self.owned[actor]:
            self._close(self.owned[actor].popleft(), seq, ts, actor, False)

    def _open_holds(self, th: int) -> list[_Hold]:
        if self.per_lock:
            return [h for h in self.queue if h.th == th]
        return [h for q in self.owned.values() for h in q if h.th == th]

    def _drop(self, h: _Hold) -> None:
        if self.per_lock:
            self.queue.remove(h)
        else:
            self.owned[h.actor].remove(h)
            self.depth[h.actor] = 0

    def gap(self, seq: int, ts: int, th: int) -> None:
        """Lost events of thread `th`, no resync: its open holds end here, unknown when."""
        for h in self._open_holds(th):
            self._drop(h)
            self._close(h, seq, ts, None, True)

    def resync(self, seq: int, ts: int, th: int, actor: int, task, acquired: int, released: int) -> None:
        """Apply what a resync says `actor` (of thread `th`) lost of this lock."""
        if self.per_lock:
            held = 1 if self.queue else 0
            if released and self.queue:
                self._close(self.queue.popleft(), seq, ts, actor, True)
            if acquired and held + acquired - released > 0 and not self.queue:
                self.queue.append(_Hold(actor, th, task, seq, ts, None, start_unknown=True))
            return
        if self.reentrant:
            before = self.depth[actor]
            after = max(0, before + acquired - released)
            if before and released >= before:  # it may have reached depth 0 in the gap
                self._close(self.owned[actor].popleft(), seq, ts, actor, True)
                before = 0
            self.depth[actor] = after
            if after and not before:
                self.owned[actor].append(_Hold(actor, th, task, seq, ts, None, start_unknown=True))
            return
        q = self.owned[actor]
        for _ in range(min(released, len(q))):
            self._close(q.popleft(), seq, ts, actor, True)
        for _ in range(max(0, acquired - released)):
            q.append(_Hold(actor, th, task, seq, ts, None, start_unknown=True))

    def finish(self) -> None:
        for h in [*self.queue, *(h for q in self.owned.values() for h in q)]:
            self._close(h, None, None, None, False)


def pair(con: duckdb.DuckDBPyConnection, actors: str = "task") -> None:
    """Pair the holds of the lock instances in `lock_pairing` and add them to `holds`."""
    if not con.execute("SELECT count(*) FROM lock_pairing").fetchone()[0]:
        return
    gaps: dict[tuple, list[tuple]] = defaultdict(list)  # (run, thread) -> its gaps
    for run, seq, ts, th in con.execute(GAPS_SQL).fetchall():
        gaps[(run, th)].append((seq, ts, th))
    resyncs: dict[tuple, list[tuple]] = defaultdict(list)  # (run, obj) -> entries
    resync_gaps: set[tuple[str, int]] = set()  # (run, gap seq) of the gaps that are resyncs
    for run, gap_seq, th, obj, task, acq, rel in con.execute(RESYNC_SQL).fetchall():
        resyncs[(run, obj)].append((gap_seq, th, task, acq, rel))
    resync_gaps.update((run, s) for run, s in con.execute(
        "SELECT run::VARCHAR, seq FROM gaps WHERE kind = 'resync'").fetchall())
    ops: dict[tuple, list[tuple]] = defaultdict(list)
    for row in con.execute(OPS_SQL).fetchall():
        ops[(row[0], row[1])].append(row)
    out: list[tuple] = []
    gap_out: list[tuple] = []
    for run, obj, reentrant, mutex in con.execute(LOCKS_SQL).fetchall():
        lock = _Lock(run, obj, bool(reentrant), bool(mutex), out, gap_out)
        _pair_lock(lock, ops.get((run, obj), []), gaps, resyncs.get((run, obj), []), resync_gaps, actors)
    if out:
        con.execute(
            "INSERT INTO holds BY NAME SELECT e.run, e.obj, e.lk, e.mutex, e.actor, e.th, e.task, e.seq, e.ts, e.site, "
            "p.end_seq, p.end_ts, p.end_ts - e.ts AS hold_ns, p.end_actor, false AS start_unknown, p.end_unknown "
            "FROM (SELECT " + ", ".join(f"unnest(${c}) AS {c}" for c in ENDS) + ") p "
            "JOIN lock_events e ON e.seq = p.seq",
            {c: list(v) for c, v in zip(ENDS, zip(*out, strict=True), strict=True)})
    if gap_out:
        con.execute(
            "INSERT INTO holds BY NAME SELECT p.*, k.lk, k.mutex, NULL AS site, p.end_ts - p.ts AS hold_ns, "
            "true AS start_unknown FROM ("
            + "SELECT " + ", ".join(f"unnest(${c}) AS {c}" for c in OPENED_IN_GAP) + ") p "
            "JOIN lock_keys k ON k.run = p.run AND k.id = p.obj",
            {c: list(v) for c, v in zip(OPENED_IN_GAP, zip(*gap_out, strict=True), strict=True)})


def _pair_lock(lock: _Lock, ops: list[tuple], gaps: dict[tuple, list[tuple]], resyncs: list[tuple],
               resync_gaps: set[tuple[str, int]], actors: str) -> None:
    """One lock's operations and the gaps of the threads that used it, in event order."""
    run = lock.run
    threads = {o[4] for o in ops} | {r[1] for r in resyncs}
    by_gap: dict[int, list[tuple]] = defaultdict(list)
    for r in resyncs:
        by_gap[r[0]].append(r)
    last_actor: dict[tuple, int] = {}  # (th, task) -> the actor of its latest operation on this lock
    events = [(g[0], 1, g) for th in threads for g in gaps.get((run, th), ())] + [(o[2], 0, o) for o in ops]
    events.sort(key=lambda e: e[0])
    for seq, is_gap, e in events:
        if not is_gap:
            _run, _obj, seq, ts, th, task, actor, op, site = e[:9]
            last_actor[(th, None if actors == "thread" else task)] = actor
            if op == "acquire":
                lock.acquire(seq, ts, th, task, actor, site)
            else:
                lock.release(seq, ts, actor)
            continue
        seq, ts, th = e
        if (run, seq) not in resync_gaps:
            lock.gap(seq, ts, th)
            continue
        for _gs, r_th, task, acq, rel in by_gap.get(seq, []):
            default = r_th if actors == "thread" or task is None else task
            actor = last_actor.get((r_th, None if actors == "thread" else task), default)
            lock.resync(seq, ts, r_th, actor, task, acq, rel)
    lock.finish()
