"""held-across-await: a lock held by an asyncio task while the task was suspended
at an await and other tasks of its event loop ran.

Suspension is inferred from the trace: other tasks' (or loop callbacks') events on
the task's loop thread between its acquire and its release (a `suspend` event of
the task alone does not make a finding: nothing else may have run). One finding
per lock and acquiring site, whose main site is the await at which the holder was
suspended (its first `suspend` event during the hold) when the trace says so.
Error instead of warning when
the lock is a threading lock and another task on the same loop thread blocked on
it during such a hold: the whole event loop froze (the holder cannot resume to
release it while the thread is blocked).
"""
from __future__ import annotations

from .. import queries
from ..context import Context
from ..durations import fmt_ns
from ..findings import Finding
from ..fold import hold_key, keys

KINDS = ("held-across-await",)
MAX_WAITERS_LISTED = 20

WAITERS_SQL = """
SELECT w.run, w.actor, w.th, w.task, w.site, w.ts, w.end_op, w.wait_ns
FROM waits w
WHERE w.run = $run AND w.obj = $obj AND w.actor <> $actor
  AND w.seq < coalesce($end_seq, 9000000000000000000) AND coalesce(w.end_seq, 9000000000000000000) > $seq
ORDER BY w.seq LIMIT {limit}
"""


def find(ctx: Context) -> list[Finding]:
    if ctx.options.actors == "thread":  # tasks are ignored: there is no task to be suspended
        return []
    stmts = queries.statements("held_across_await")
    for stmt in stmts[:-1]:
        ctx.con.execute(stmt)
    groups: dict[tuple, list[dict]] = {}
    for r in ctx.rows(stmts[-1]):
        groups.setdefault((ctx.lock_identity(r["lk"]), r["lk"] if ctx.options.group_by == "instance" else None,
                           ctx.site_text(r["run"], r["site"])), []).append(r)
    return [_finding(ctx, rows) for rows in groups.values()]


def _finding(ctx: Context, rows: list[dict]) -> Finding:
    worst = max(rows, key=lambda r: (r["froze"], r["worst_waiters"], r["worst_held_ns"]))
    run, lk = worst["run"], worst["lk"]
    label, lock = ctx.lock_label(lk), ctx.lock(lk)
    holder = ctx.actor(run, worst["worst_actor"])
    taken = ctx.site(run, worst["site"])
    taken_at = taken["site"] if taken else "an unknown site"
    # The await at which the holder was suspended (from the recorder's `suspend`
    # event), the finding's main site; the acquire is the evidence behind it.
    awaited = ctx.site(run, worst["worst_await_site"])
    main_at = awaited["site"] if awaited else taken_at
    waits = ctx.rows(WAITERS_SQL.format(limit=MAX_WAITERS_LISTED),
                     {"run": run, "obj": worst["worst_obj"], "actor": worst["worst_actor"],
                      "seq": worst["worst_seq"], "end_seq": worst["worst_end_seq"]})
    froze = any(r["froze"] for r in rows)
    freezing = [w for w in waits if w["task"] is not None and w["th"] == worst["worst_th"]]
    holds = sum(r["holds"] for r in rows)
    max_held = max(r["max_held_ns"] for r in rows)
    waiter_actors = list({(w["run"], w["actor"]): ctx.actor(w["run"], w["actor"]) for w in waits}.values())

    suspended = (f"at the await at {awaited['site']}" if awaited else "at an await")
    lines = [f"Task '{holder['name']}' held '{label}' (taken at {taken_at}) while it was suspended "
             f"{suspended} and other tasks of its event loop ran, for {fmt_ns(worst['worst_held_ns'])}"
             + (" (still held at the end of the trace)" if worst["worst_end_seq"] is None else "")
             + f"; {worst['worst_waiters']} wait(s) for the lock meanwhile"
             + (": " + ", ".join(f"{a['kind']} '{a['name']}'" for a in waiter_actors) if waiter_actors else "")
             + "."]
    if holds > 1:
        lines.append(f"Held across an await {holds} times at this site (longest {fmt_ns(max_held)}).")
    if froze and freezing:
        f = freezing[0]
        lines.append(f"'{label}' is a threading lock: task '{ctx.actor(run, f['actor'])['name']}' blocked on it at "
                     f"{ctx.site_text(run, f['site'])} on the same loop thread, so the whole event loop froze "
                     f"(the holder cannot run to release it)"
                     + (f" until the acquire gave up after {fmt_ns(f['wait_ns'])}." if f["end_op"] in
                        ("timeout", "cancel") else "."))
        lines.append("Fix: never await while holding a threading lock; use asyncio.Lock, or copy what you "
                     "need under the lock and await after releasing it.")
    else:
        lines.append("Fix: await first and take the lock only around the state update, or copy what you need "
                     "under the lock, release it, then await.")

    sites = [s for s in [awaited, taken] if s]
    shown = {s["site"] for s in sites}
    for w in (freezing or []) + waits:
        s = ctx.site(w["run"], w["site"])
        if s and s["site"] not in shown:
            shown.add(s["site"])
            sites.append(s)
    fp = [ctx.lock_identity(lk), taken["site"] if taken else ""]
    runs = [r for r in rows if r["run"] == run]
    return Finding(
        kind="held-across-await",
        severity="error" if froze else "warning",
        title=(f"Event loop froze: threading lock '{label}' held across an await at {main_at}" if froze
               else f"Lock '{label}' held across an await at {main_at}"),
        message="\n".join(lines),
        fingerprint_parts=fp,
        locks=[lock],
        threads=list({a["id"]: a for a in [holder, *waiter_actors]}.values()),
        sites=sites, steps=[], count=holds, run=run,
        first_ts=min(r["first_ts"] for r in runs), last_ts=max(r["last_ts"] for r in runs),
        details={
            "lock": lock["id"], "duration_ns": worst["worst_held_ns"], "max_duration_ns": max_held,
            "waiters": worst["worst_waiters"], "max_waiters": max(r["max_waiters"] for r in rows),
            "holds": holds, "loop_froze": froze, "freezes": sum(r["freezes"] for r in rows),
            "thread_lock": any(r["thread_lock"] for r in rows),
            "holder": holder, "acquired_at": taken["site"] if taken else None,
            "await_at": awaited["site"] if awaited else None,
            "await_sites": sorted(filter(None, {ctx.site_text(r["run"], a) for r in rows
                                                for a in (r["await_sites"] or [])})),
            "waiting": [{"actor": ctx.actor(w["run"], w["actor"]), "site": ctx.site_text(w["run"], w["site"]),
                         "ts": w["ts"], "wall": ctx.wall(w["run"], w["ts"]), "outcome": w["end_op"],
                         "wait_ns": w["wait_ns"]} for w in waits],
        },
        about=keys(hold_key(r["run"], h["obj"], h["seq"]) for r in rows for h in r["held"]),
    )
