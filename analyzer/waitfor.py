"""Actual blocking: wait-for cycles (deadlocks), waits on a lock the waiter holds
(self-deadlocks), and waits that never ended (stalls).

A wait for a lock the waiter holds itself is a self-deadlock only when it never
ended while that hold was still open: one that got the lock was let in by a
release of another thread or task (a hand-off), and one that gave up (timeout,
cancel) or ended by an exception did not deadlock (`self_gave_up` keeps the ones
that gave up, for the acquire-timeout rule).

Each wait for a mutex gives an edge waiter -> holder for the holder when the wait
began, alive from the wait's start until the wait or the hold ended, and, for a
wait that did not end with the lock, one for each of the last 16 holds another
actor took while it went on (ahead of the waiter: locks are not fair), alive from
that hold's start. Since an actor waits for at most one lock at a time, and a
later holder replaces the earlier one, the live edges form a functional graph; a
sweep in event order follows the chain from each new edge and reports a cycle when
it comes back. Cost: O(edges x cycle length).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import queries
from .context import Context

NEVER = 1 << 62


@dataclass
class Edge:
    run: str
    actor: int
    obj: int
    lk: int
    seq: int
    ts: int
    site: int | None
    end_op: str | None
    end_seq: int | None
    end_ts: int | None
    holder: int
    hold_seq: int
    hold_ts: int
    hold_site: int | None
    hold_end_seq: int | None
    hold_end_ts: int | None
    hold_start_unknown: bool = False  # the hold was opened in a gap of lost events (resync)
    at: int = 0     # where the edge begins: the wait, or a hold taken during it
    at_ts: int = 0

    @property
    def until(self) -> int:
        return min(self.end_seq or NEVER, self.hold_end_seq or NEVER)


@dataclass
class Blocking:
    deadlocks: list[list[Edge]] = field(default_factory=list)   # each: the cycle's edges in order
    self_waits: list[Edge] = field(default_factory=list)     # waits that never ended on a lock held by the waiter
    self_gave_up: list[Edge] = field(default_factory=list)   # such waits that timed out or were cancelled
    stalled: list[dict] = field(default_factory=list)
    end_ts: dict[str, int] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)          # every wait for a held mutex, with its holder


def blocking(ctx: Context) -> Blocking:
    """Deadlocks, self-deadlocks and stalls of the trace (computed once)."""
    if "blocking" in ctx.cache:
        return ctx.cache["blocking"]
    out = Blocking(end_ts={r: t for r, t in ctx.con.execute("SELECT run, last_ts FROM runs").fetchall()})
    edges = [Edge(*row) for row in ctx.con.execute(queries.statements("wait_edges")[-1]).fetchall()]
    out.edges = edges
    live: dict[tuple[str, int], Edge] = {}
    seen_cycles: set[frozenset] = set()
    in_cycle: set[tuple[str, int]] = set()  # waits (run, seq) that are part of a reported cycle
    for e in edges:
        if e.holder == e.actor:
            if e.end_op is None and e.hold_end_seq is None:
                out.self_waits.append(e)
                in_cycle.add((e.run, e.seq))
            elif e.end_op in ("timeout", "cancel"):
                out.self_gave_up.append(e)
            continue
        live[(e.run, e.actor)] = e
        chain = [e]
        cur = e
        while True:
            nxt = live.get((cur.run, cur.holder))
            if nxt is None or nxt.until <= e.at or nxt.at > e.at:
                break
            if any(c is nxt for c in chain):
                break
            chain.append(nxt)
            if nxt.holder == e.actor:
                key = frozenset((c.run, c.actor, c.obj) for c in chain)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    out.deadlocks.append(chain)
                    in_cycle.update((c.run, c.seq) for c in chain)
                break
            cur = nxt
    for w in ctx.rows("SELECT run, actor, obj, lk, seq, ts, site FROM waits WHERE end_op IS NULL"):
        if (w["run"], w["seq"]) not in in_cycle:
            out.stalled.append(w)
    ctx.cache["blocking"] = out
    return out


def cycle_lock_sets(ctx: Context) -> set[frozenset[int]]:
    """Lock keys of each deadlock cycle (to report a potential deadlock that happened only once)."""
    return {frozenset(e.lk for e in cyc) for cyc in blocking(ctx).deadlocks}
