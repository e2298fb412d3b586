"""potential-deadlock: a lock-order cycle whose edges come from distinct actors
that could run at the same time and share no guard lock (iGoodlock)."""
from __future__ import annotations

from .. import cycle_text as ct
from ..context import Context
from ..findings import Finding
from ..lockgraph import find_cycles
from ..waitfor import blocking, cycle_lock_sets

KINDS = ("potential-deadlock",)
PREPARE = blocking


def find(ctx: Context) -> list[Finding]:
    out = []
    happened = cycle_lock_sets(ctx)  # reported once, as `deadlock`
    for cycle in find_cycles(ctx):
        if cycle.status != "potential" or frozenset(cycle.locks) in happened:
            continue
        first = min(cycle.steps, key=lambda d: d.first_ts)
        order = " before ".join(f"'{ctx.lock_label(lk)}'" for lk in sorted(
            cycle.locks, key=ctx.lock_label))
        message = "\n".join([
            f"Lock order cycle {ct.chain(ctx, cycle)} observed in {len(cycle.steps)} threads/tasks "
            "that could run at the same time:",
            *[f"  {line}" for line in ct.edge_lines(ctx, cycle)],
            "If these run at the same time, each waits for a lock the next one holds: deadlock.",
            f"Fix: take the locks in one global order (e.g. {order}), or guard the sections with one common lock.",
        ])
        steps = ct.steps(ctx, cycle)
        # a held lock without a site was taken in a gap of lost events (known from a resync)
        in_gap = any(h["acquired_at"] is None for step in steps for h in step["holds"])
        out.append(Finding(
            kind="potential-deadlock",
            title=f"Potential deadlock: lock order cycle {ct.chain(ctx, cycle)}",
            message=message,
            fingerprint_parts=ct.fingerprint_parts(ctx, cycle),
            locks=ct.locks(ctx, cycle), threads=ct.actors(ctx, cycle), sites=ct.sites(ctx, cycle),
            steps=steps, count=min(d.n for d in cycle.steps), run=first.run,
            first_ts=first.first_ts,
            last_ts=max(d.last_ts for d in cycle.steps if d.run == first.run),
            details={"cycle": [ctx.lock(lk)["id"] for lk in cycle.locks], "length": len(cycle.locks)},
            partial=("a lock of the cycle was held after a gap of lost events in which it was taken (known "
                     "from the recorder's resync); where is unknown") if in_gap else None,
        ))
    return out
