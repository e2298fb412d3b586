"""guarded-cycle: lock-order cycles that cannot deadlock, listed with the reason
(a common gate lock, all edges in one thread/task, or happens-before order)."""
from __future__ import annotations

from .. import cycle_text as ct
from ..context import Context
from ..findings import Finding
from ..lockgraph import find_cycles

KINDS = ("guarded-cycle",)


def _explanation(ctx: Context, cycle) -> str:
    if cycle.reason == "gate-lock":
        gates = ", ".join(f"'{ctx.lock_label(g)}'" for g in cycle.gate_locks)
        return f"every pair of edges is taken under the common gate lock {gates}, so they cannot interleave"
    if cycle.reason == "single-actor":
        who = ctx.actor(cycle.steps[0].run, cycle.steps[0].actor)
        return (f"every edge was observed only in {who['kind']} '{who['name']}': one thread/task cannot "
                "deadlock with itself this way")
    return cycle.order or "ordered by thread start/join"


def find(ctx: Context) -> list[Finding]:
    out = []
    for cycle in find_cycles(ctx):
        if cycle.status != "guarded":
            continue
        first = min(cycle.steps, key=lambda d: d.first_ts)
        why = _explanation(ctx, cycle)
        out.append(Finding(
            kind="guarded-cycle",
            title=f"Guarded lock order cycle {ct.chain(ctx, cycle)} ({cycle.reason})",
            message="\n".join([f"Lock order cycle {ct.chain(ctx, cycle)} is not a potential deadlock: {why}.",
                               *[f"  {line}" for line in ct.edge_lines(ctx, cycle)]]),
            fingerprint_parts=ct.fingerprint_parts(ctx, cycle),
            locks=ct.locks(ctx, cycle), threads=ct.actors(ctx, cycle), sites=ct.sites(ctx, cycle),
            steps=ct.steps(ctx, cycle), count=min(d.n for d in cycle.steps), run=first.run,
            first_ts=first.first_ts,
            last_ts=max(d.last_ts for d in cycle.steps if d.run == first.run),
            details={"cycle": [ctx.lock(lk)["id"] for lk in cycle.locks], "length": len(cycle.locks),
                     "reason": cycle.reason, "explanation": why,
                     **({"gate_locks": [ctx.lock(g)["id"] for g in cycle.gate_locks]}
                        if cycle.reason == "gate-lock" else {}),
                     **({"order": cycle.order} if cycle.reason == "ordered" else {})},
        ))
    return out
