"""Happens-before between the actors of one run, from the synchronisation the trace shows.

An edge ``(X, sx) -> (Y, sy)`` says: every event of actor X up to seq ``sx`` happens
before every event of actor Y from seq ``sy`` on. Edges come from

* thread start (the starter's ``start`` -> the new thread's first event) and join
  (everything the thread did -> the joiner's ``join``);
* a wait that found its event already set (``pass``): the last signal on it before;
* a wait that ended ``ok`` (event, condition, queue side, thread, task, future): the
  signal that ended it (``set``, ``notify``, ``put``... or the awaited thread/task's
  ``end``) -> the waiter's ``wait-end``. The signal taken is the first one on that
  object after the wait began; a plain ``notify`` is used only when a single actor
  signalled during the wait (with several, which one woke the waiter is unknown);
* queue hand-off: the k-th ``put`` of a queue -> its k-th ``get`` (the item the k-th get
  takes was put by then), in runs that lost no events;
* a barrier: every party's arrival -> the last party's release of all of them;
* asyncio task creation: the creating task's last event before the task's creation ->
  the new task's first event;
* a thread-pool job's submission (``signal`` ``submit`` on its ``job`` segment) -> the
  job's first event.

Lock release -> acquire is deliberately not an edge (it orders this run only, not the
program). Actors are tasks (else threads) or threads, as the analysis' ``--actors``,
and thread-pool jobs (``job`` segments); other segments are never ordered here.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .context import Context

_INF = 1 << 62

_EDGES_SQL = """
WITH ev AS (
    SELECT run, {actor} AS a, obj, op, seq, ts, site, sig, outcome FROM {source} e
    WHERE op IN ('start', 'join', 'wait-begin', 'wait-end', 'signal', 'end', 'pass')
),
submits AS (
    SELECT e.run, e.a AS src, e.seq AS src_seq, e.obj AS dst, 0 AS dst_seq,
           'submit' AS kind, e.obj AS via, e.site, e.sig
    FROM ev e JOIN segments g ON g.run = e.run AND g.id = e.obj
    WHERE e.op = 'signal' AND e.sig = 'submit' AND g.kind = 'job'
),
starts AS (
    SELECT e.run, e.a AS src, e.seq AS src_seq, e.obj AS dst, 0 AS dst_seq,
           'start' AS kind, e.obj AS via, e.site, NULL AS sig
    FROM ev e JOIN threads t ON t.run = e.run AND t.id = e.obj WHERE e.op = 'start'
),
joins AS (
    SELECT e.run, e.obj AS src, {inf} AS src_seq, e.a AS dst, e.seq AS dst_seq,
           'join' AS kind, e.obj AS via, e.site, NULL AS sig
    FROM ev e JOIN threads t ON t.run = e.run AND t.id = e.obj WHERE e.op = 'join'
),
begins AS (SELECT run, a, obj, seq FROM ev WHERE op = 'wait-begin'),
oks AS (SELECT run, a, obj, seq FROM ev WHERE op = 'wait-end' AND outcome = 'ok'),
waited AS (
    SELECT o.run, o.a, o.obj, b.seq AS begin_seq, o.seq AS end_seq
    FROM oks o ASOF JOIN begins b ON b.run = o.run AND b.a = o.a AND b.obj = o.obj AND b.seq < o.seq
),
signals AS (
    SELECT run, a, obj, seq, site, sig FROM ev WHERE op = 'signal'
    UNION ALL
    SELECT run, a, obj, seq, site, 'end' FROM ev WHERE op = 'end'
),
window_signals AS (
    SELECT w.run, w.a AS waiter, w.obj, w.begin_seq, w.end_seq, s.a AS signaller, s.seq, s.site, s.sig
    FROM waited w JOIN signals s ON s.run = w.run AND s.obj = w.obj
     AND s.seq > w.begin_seq AND s.seq < w.end_seq AND s.a <> w.a
),
wakes AS (
    SELECT run, arg_min(signaller, seq) AS src, min(seq) AS src_seq, waiter AS dst, end_seq AS dst_seq,
           'wake' AS kind, obj AS via, arg_min(site, seq) AS site, arg_min(sig, seq) AS sig,
           count(DISTINCT signaller) AS signallers, bool_and(sig = 'notify') AS only_notify,
           min(begin_seq) AS begin_seq
    FROM window_signals GROUP BY run, waiter, obj, end_seq
),
passes AS (
    SELECT s.run, s.a AS src, s.seq AS src_seq, p.a AS dst, p.seq AS dst_seq,
           'wake' AS kind, p.obj AS via, s.site, s.sig
    FROM (SELECT run, a, obj, seq FROM ev WHERE op = 'pass') p
    ASOF JOIN signals s ON s.run = p.run AND s.obj = p.obj AND s.seq < p.seq
    WHERE s.a <> p.a
),
barrier_arrivals AS (
    SELECT w.run, w.dst AS src, w.begin_seq AS src_seq, w.src AS dst, w.src_seq AS dst_seq,
           'barrier' AS kind, w.via, w.site, w.sig
    FROM wakes w JOIN resources r ON r.run = w.run AND r.id = w.via
    WHERE r.type = 'threading.Barrier' AND w.sig = 'notify_all'
),
queue_sides AS (
    SELECT run, id, owner, role FROM resources
    WHERE owner IS NOT NULL AND role IN ('not_empty', 'not_full')
),
queue_ops AS (
    SELECT e.run, q.owner, q.id AS side_id, e.a, e.seq, e.site,
           CASE WHEN q.role = 'not_empty' THEN 'put' ELSE 'get' END AS side,
           row_number() OVER (PARTITION BY e.run, q.owner, q.role ORDER BY e.seq) AS k
    FROM ev e JOIN queue_sides q ON q.run = e.run AND q.id = e.obj
    WHERE e.op = 'signal' AND e.sig IN ('notify', 'put', 'get')
      AND e.run NOT IN (SELECT run FROM dropped)
),
handoffs AS (
    SELECT p.run, p.a AS src, p.seq AS src_seq, g.a AS dst, g.seq AS dst_seq,
           'queue' AS kind, p.side_id AS via, p.site, 'put' AS sig
    FROM queue_ops p JOIN queue_ops g ON g.run = p.run AND g.owner = p.owner AND g.k = p.k
    WHERE p.side = 'put' AND g.side = 'get' AND p.a <> g.a AND p.seq < g.seq
)
SELECT run, src, src_seq, dst, dst_seq, kind, via, site, sig FROM starts
UNION ALL SELECT run, src, src_seq, dst, dst_seq, kind, via, site, sig FROM submits
UNION ALL SELECT run, src, src_seq, dst, dst_seq, kind, via, site, sig FROM joins
UNION ALL SELECT run, src, src_seq, dst, dst_seq, kind, via, site, sig FROM wakes
    WHERE signallers = 1 OR NOT only_notify
UNION ALL SELECT run, src, src_seq, dst, dst_seq, kind, via, site, sig FROM passes
UNION ALL SELECT run, src, src_seq, dst, dst_seq, kind, via, site, sig FROM barrier_arrivals
UNION ALL SELECT run, src, src_seq, dst, dst_seq, kind, via, site, sig FROM handoffs
"""

_TASK_EDGES_SQL = """
WITH born AS (SELECT run, id, parent, ts FROM tasks WHERE parent IS NOT NULL),
parent_events AS (SELECT run, coalesce(task, th) AS a, ts, seq, site FROM events WHERE task IS NOT NULL)
SELECT b.run, b.parent AS src, p.seq AS src_seq, b.id AS dst, 0 AS dst_seq,
       'task' AS kind, b.id AS via, t.site, NULL AS sig
FROM born b ASOF JOIN parent_events p ON p.run = b.run AND p.a = b.parent AND p.ts <= b.ts
JOIN tasks t ON t.run = b.run AND t.id = b.id
"""


@dataclass(frozen=True)
class Edge:
    src: int
    src_seq: int
    dst: int
    dst_seq: int
    kind: str      # start | join | wake | barrier | queue | task
    via: int       # the thread, task, resource or queue the edge goes through
    site: int | None
    sig: str | None


class HappensBefore:
    """Answers whether two actors' lock dependencies are ordered in every schedule."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        mode = ctx.options.actors
        self.enabled = mode in ("task", "thread")
        self.out: dict[tuple[str, int], list[Edge]] = defaultdict(list)
        self.actors: set[tuple[str, int]] = set()
        self._memo: dict[tuple, list[Edge] | None] = {}
        if not self.enabled:
            return
        from .load import segment_actor_source, segment_actors

        jobs = segment_actors(ctx.con, mode)
        if jobs is not None:  # thread-pool jobs are actors of their own
            source = "(" + segment_actor_source(jobs) + ")"
            actor = "CASE WHEN e.task IS NULL AND e.segment > 0 THEN e.segment ELSE coalesce(e.task, e.th) END"
        else:
            source = "events"
            actor = "coalesce(e.task, e.th)" if mode == "task" else "e.th"
        rows = ctx.con.execute(_EDGES_SQL.format(actor=actor, source=source, inf=_INF)).fetchall()
        if mode == "task":
            rows += ctx.con.execute(_TASK_EDGES_SQL).fetchall()
        for run, src, src_seq, dst, dst_seq, kind, via, site, sig in rows:
            if src is None or dst is None or src_seq is None:
                continue
            self.out[(run, src)].append(Edge(src, src_seq, dst, dst_seq, kind, via, site, sig))
        self.actors = {(r, i) for r, i in ctx.con.execute("SELECT run, id FROM threads").fetchall()}
        if mode == "task":
            self.actors |= {(r, i) for r, i in ctx.con.execute("SELECT run, id FROM tasks").fetchall()}
            self.actors |= {(r, i) for r, i in ctx.con.execute(
                "SELECT run, id FROM segments WHERE kind = 'job'").fetchall()}

    def path(self, run: str, tx: int, sx: int, ty: int, sy: int) -> list[Edge] | None:
        """The edges by which event (tx, seq sx) happens before event (ty, seq sy), or None.

        Within one actor, program order ([] when sx < sy)."""
        if tx == ty:
            return [] if sx < sy else None
        key = (run, tx, sx, ty, sy)
        if key in self._memo:
            return self._memo[key]
        best: dict[int, int] = {tx: sx}
        came: dict[int, tuple[int, Edge]] = {}
        todo = [(tx, sx)]
        found: Edge | None = None
        while todo and found is None:
            t, s = todo.pop()
            for e in self.out.get((run, t), ()):
                if e.src_seq < s:
                    continue  # the edge leaves before the point we reached
                if e.dst == ty and e.dst_seq <= sy:
                    came[ty] = (t, e)
                    found = e
                    break
                if e.dst_seq < best.get(e.dst, _INF):
                    best[e.dst] = e.dst_seq
                    came[e.dst] = (t, e)
                    todo.append((e.dst, e.dst_seq))
        result = None
        if found is not None:
            result = []
            node = ty
            while node != tx:
                prev, edge = came[node]
                result.append(edge)
                node = prev
            result.reverse()
        self._memo[key] = result
        return result

    def order(self, a, b) -> list[Edge] | None:
        """The edges ordering every occurrence of dependency `a` before every one of `b`
        (or the other way round), or None when some schedule could run them together."""
        if not self.enabled or a.run != b.run or (a.run, a.actor) not in self.actors \
                or (b.run, b.actor) not in self.actors:
            return None
        found = self.path(a.run, a.actor, a.last_seq, b.actor, b.first_seq)
        if found is None:
            found = self.path(a.run, b.actor, b.last_seq, a.actor, a.first_seq)
        return found

    def ordered(self, a, b) -> bool:
        return self.order(a, b) is not None

    def describe(self, edges: list[Edge], run: str) -> str:
        """'ordered by the Event 'ready' set at app.py:12', or by start/join."""
        ctx = self.ctx
        signals = [e for e in edges if e.kind not in ("start", "join", "task", "submit")]
        if not signals:
            kinds = {e.kind for e in edges}
            if kinds == {"task"}:
                return "ordered by task creation (one task creates the other after its part)"
            if "submit" in kinds:
                return "ordered by the submission of a thread-pool job after the other's part"
            return "ordered by thread start/join"
        parts = []
        for e in signals:
            at = ctx.site_text(run, e.site)
            where = f" at {at}" if at else ""
            what, rtype, role = _resource_label(ctx, run, e.via)
            src = ctx.actor(run, e.src)
            if src["kind"] == "job" and e.kind == "wake":
                parts.append(f"the result of job '{src['name']}'")
            elif e.kind == "queue" or role == "not_empty":
                parts.append(f"the hand-off through {what} (put{where})")
            elif role == "not_full":
                parts.append(f"room made in {what} (get{where})")
            elif e.kind == "barrier":
                parts.append(f"{what}{where}")
            elif e.sig == "end":
                parts.append(f"the end of {what}")
            elif rtype in ("threading.Event", "asyncio.Event"):
                parts.append(f"{what} set{where}")
            else:
                parts.append(f"{what} {_VERB.get(e.sig or '', 'signalled')}{where}")
        return "ordered by " + ", then ".join(parts)


_VERB = {"set": "set", "notify": "notified", "notify_all": "notified", "put": "put",
         "get": "taken from", "task_done": "marked done", "result": "resolved",
         "exception": "resolved", "cancel": "cancelled"}


def _resource_label(ctx: Context, run: str, rid: int) -> tuple[str, str | None, str | None]:
    """(label, type, role): "the Event 'ready'", "the queue.Queue 'Worker.jobs'" (for a
    queue's side, the queue; role says which side), or a thread/task."""
    rows = ctx.con.execute("SELECT type, role FROM resources WHERE run = ? AND id = ?", [run, rid]).fetchall()
    if not rows:
        actor = ctx.actor(run, rid)
        return f"{actor['kind']} '{actor['name']}'", None, None
    rtype, role = rows[0]
    short = rtype.split(".")[-1] if rtype and rtype.startswith("threading.") else (rtype or "resource")
    return f"the {short} '{ctx.resource_label(run, rid)}'", rtype, role
