"""deadlock: a moment when actors were all blocked in a wait-for cycle, each
waiting for a lock held by the next; with how long it lasted and what ended it."""
from __future__ import annotations

from ..context import Context
from ..durations import fmt_ns
from ..findings import Finding
from ..fold import hold_key, keys, wait_key
from ..waitfor import blocking

KINDS = ("deadlock",)
PREPARE = blocking


def find(ctx: Context) -> list[Finding]:
    b = blocking(ctx)
    out = []
    for chain in b.deadlocks:
        k = len(chain)
        run = chain[0].run
        formed = max(e.at_ts for e in chain)  # (the last edge: a wait, or a hold taken during one)
        ended = [e for e in chain if e.end_op is not None]
        if ended:
            first_end = min(ended, key=lambda e: e.end_seq)
            until, resolved = first_end.end_ts, first_end.end_op
        else:
            until, resolved = b.end_ts.get(run, formed), None
        locks = [chain[i].lk for i in range(k)]
        steps, lines, fp = [], [], []
        for i in range(k):
            prev, cur = chain[i], chain[(i + 1) % k]
            who = ctx.actor(run, cur.actor)
            held_at = ctx.site_text(run, prev.hold_site)
            site = ctx.site(run, cur.site) or {}
            steps.append({
                "actor": who,
                "holds": [{"lock": ctx.lock(prev.lk)["id"], "name": ctx.lock(prev.lk)["name"], "acquired_at": held_at}],
                "requests": {"lock": ctx.lock(cur.lk)["id"], "name": ctx.lock(cur.lk)["name"]},
                "site": site.get("site"), "func": site.get("func"), "stack": ctx.stack(run, cur.site),
                "ts": cur.ts, "wall": ctx.wall(run, cur.ts), "count": 1,
            })
            lines.append(f"  {who['kind']} '{who['name']}' holds '{ctx.lock_label(prev.lk)}' (taken at {held_at}) "
                         f"and waits for '{ctx.lock_label(cur.lk)}' at {site.get('site')}")
            fp.append((ctx.lock_identity(prev.lk), site.get("site") or ""))
        chain_text = " -> ".join(ctx.lock_label(lk) for lk in [*locks, locks[0]])
        broke = {"error": "an exception (no outcome recorded)", "lost": "something lost with dropped events"}
        how = (f"It lasted {fmt_ns(until - formed)} until {broke.get(resolved, 'a ' + str(resolved))} broke it."
               if resolved
               else f"It lasted {fmt_ns(until - formed)}, until the end of the trace: the program hung.")
        sites, seen = [], set()
        for i in range(k):
            for s in (ctx.site(run, chain[(i + 1) % k].site), ctx.site(run, chain[i].hold_site)):
                if s and s["site"] not in seen:
                    seen.add(s["site"])
                    sites.append(s)
        rotations = [fp[i:] + fp[:i] for i in range(k)]
        out.append(Finding(
            kind="deadlock",
            title=f"Deadlock: {k} {'threads/tasks' if k > 1 else 'thread'} blocked in a cycle {chain_text}",
            message="\n".join([f"At {ctx.wall(run, formed) or formed} these were all blocked, each waiting for "
                               "a lock held by the next:", *lines, how,
                               "Fix: take the locks in one global order."]),
            fingerprint_parts=[f"{a}>{s}" for a, s in min(rotations)],
            locks=[ctx.lock(lk) for lk in locks], threads=[s["actor"] for s in steps], sites=sites,
            steps=steps, count=1, run=run, first_ts=formed, last_ts=until,
            details={"cycle": [ctx.lock(lk)["id"] for lk in locks], "length": k, "duration_ns": until - formed,
                     "ended": resolved is not None, "resolved_by": resolved},
            partial=("a lock of the cycle was taken in a gap of lost events (known from the recorder's resync); "
                     "where is unknown") if any(e.hold_start_unknown for e in chain) else None,
            about=keys(k for e in chain for k in (wait_key(e.run, e.seq), hold_key(e.run, e.obj, e.hold_seq))),
        ))
    return out
