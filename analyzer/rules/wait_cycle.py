"""wait-cycle: a thread/task waits on an event, condition, queue, join, task or
future while holding a lock that the signaller of that resource takes before it
signals — the waiter waits for the signal, the signaller for the lock.

One finding per code path: (held lock, resource, where the lock was taken, where
the wait was made, where the signaller takes the lock, where it signals).
Critical when it was observed blocked: the wait gave up (timeout, cancelled) or
never ended while the signaller was waiting for the lock.
"""
from __future__ import annotations

from .. import queries
from ..context import Context
from ..durations import fmt_ns
from ..findings import Finding
from ..fold import hold_key, keys, wait_key

KINDS = ("wait-cycle",)
MAX_ACTORS = 50


def cycles(ctx: Context) -> list[dict]:
    """The wait cycles grouped into findings by the wait_cycles query (one row per
    code path, see its last statement), computed once."""
    if "wait_cycles" not in ctx.cache:
        ctx.cache["wait_cycles"] = _run(ctx)
    return ctx.cache["wait_cycles"]


def _run(ctx: Context) -> list[dict]:
    stmts = queries.statements("wait_cycles", by_instance=str(ctx.options.group_by == "instance").lower())
    for stmt in stmts[:-1]:
        ctx.con.execute(stmt)
        # nothing waited on, or nothing waited on with a lock held: skip the signal scans
        for table in ("sync_waits", "wait_held"):
            if f"TABLE {table} AS" in stmt and not ctx.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
                ctx.con.execute("CREATE OR REPLACE TEMP TABLE wc_rows AS SELECT NULL::VARCHAR AS run, "
                                "NULL::BIGINT AS wseq, NULL::BIGINT AS blocked_seq, false AS blocked, "
                                "NULL::BIGINT AS wend_seq, NULL::BIGINT AS holder, "
                                "NULL::BIGINT AS signaller LIMIT 0")
                return []
    return ctx.rows(stmts[-1])


def cycle_waits(ctx: Context) -> set[tuple[str, int]]:
    """(run, seq) of every wait that is part of a wait-cycle: the resource waits, and
    the signallers' lock waits that blocked them (for rules that must not report the
    same wait again, such as `stalled`)."""
    cycles(ctx)
    return {(str(r), s) for r, s in ctx.con.execute(
        "SELECT run, wseq FROM wc_rows UNION SELECT run, blocked_seq FROM wc_rows "
        "WHERE blocked AND blocked_seq IS NOT NULL").fetchall()}


def hung_actors(ctx: Context) -> set[tuple[str, int]]:
    """(run, actor) of every thread/task in a wait cycle that never ended (a hang): a
    join or await of one of them never ends either, for the same reason."""
    cycles(ctx)
    return {(str(r), a) for r, a in ctx.con.execute(
        "SELECT run, holder FROM wc_rows WHERE blocked AND wend_seq IS NULL "
        "UNION SELECT run, signaller FROM wc_rows WHERE blocked AND wend_seq IS NULL").fetchall()}


def resource(ctx: Context, run: str, res: int) -> dict:
    """`{"id", "name", "type", "created_at", "role"}` of a resource, thread or task;
    `name` is the label reports show (`ctx.resource_label`)."""
    key = ("resources", run)
    if key not in ctx.cache:
        ctx.cache[key] = {r["id"]: r for r in ctx.rows(
            "SELECT r.id, r.type, r.role, s.site AS created_at FROM resources r "
            "LEFT JOIN sites s ON s.run = r.run AND s.id = r.site WHERE r.run = $run", {"run": run})}
    r = ctx.cache[key].get(res)
    if r is not None:
        return {"id": f"{run}/{res}", "name": ctx.resource_label(run, res), "type": r["type"],
                "created_at": r["created_at"], "role": r["role"]}
    actor = ctx.actor(run, res)
    return {"id": actor["id"], "name": actor["name"], "type": actor["kind"], "created_at": None, "role": None}


# what a wait on one side of a queue waits for
_ROLE = {"not_empty": "for an item", "not_full": "for room", "all_tasks_done": "join: until every task is done"}


def what(res: dict) -> str:
    """"thread 'reporter' to finish (join)", "threading.Event 'ready'", "queue.Queue
    'Worker.jobs' (for an item)"."""
    if res["type"] == "thread":
        return f"thread '{res['name']}' to finish (join)"
    if res["type"] == "task":
        return f"task '{res['name']}' to finish"
    role = _ROLE.get(res.get("role") or "")
    return f"{res['type']} '{res['name']}'" + (f" ({role})" if role else "")


def _last_seen(ctx: Context, run: str) -> int | None:
    """The last moment the run is known to have been alive (its last record of any kind)."""
    row = ctx.con.execute("SELECT last_ts FROM runs WHERE run = ?", [run]).fetchone()
    return row[0] if row else None


def find(ctx: Context) -> list[Finding]:
    return [_finding(ctx, g) for g in cycles(ctx)]


def _finding(ctx: Context, g: dict) -> Finding:
    r = g["shown"]  # the shown occurrence: a blocked one if any
    run, lk = r["run"], r["lk"]
    label, res = ctx.lock_label(lk), resource(ctx, run, r["res"])
    holder, signaller = ctx.actor(run, r["holder"]), ctx.actor(run, r["signaller"])
    waiter = ctx.actor(run, r["waiter"])
    hold_at, wait_at = ctx.site_text(run, r["hold_site"]), ctx.site_text(run, r["wsite"])
    att_at, sig_at = ctx.site_text(run, r["att_site"]), ctx.site_text(run, r["sig_site"])
    blocked = r["blocked"]
    ended = (r["outcome"] or "end-of-trace") if blocked else None
    signal_text = ("it finishes" if r["sig"] == "end" else "it could finish" if r["sig"] == "pending"
                   else f"it signals ({r['sig']}) at {sig_at or 'an unknown site'}")

    wait_step = {
        "actor": holder,
        "holds": [{"lock": ctx.lock(lk)["id"], "name": ctx.lock(lk)["name"], "acquired_at": hold_at}],
        "requests": {"lock": None, "resource": res["id"], "name": res["name"], "type": res["type"]},
        "site": wait_at, "func": (ctx.site(run, r["wsite"]) or {}).get("func"),
        "stack": ctx.stack(run, r["wsite"]), "ts": r["wts"], "wall": ctx.wall(run, r["wts"]),
        "count": g["waits"],
    }
    if r["waiter"] != r["holder"]:
        wait_step["via"] = waiter  # the child task (e.g. asyncio.wait_for's) that made the wait
    signal_step = {
        "actor": signaller,
        "holds": [],
        "requests": {"lock": ctx.lock(lk)["id"], "name": ctx.lock(lk)["name"]},
        "site": att_at, "func": (ctx.site(run, r["att_site"]) or {}).get("func"),
        "stack": ctx.stack(run, r["att_site"]), "ts": r["att_ts"], "wall": ctx.wall(run, r["att_ts"]),
        "signals": {"resource": res["id"], "sig": r["sig"], "site": sig_at, "ts": r["sig_ts"],
                    "wall": ctx.wall(run, r["sig_ts"])},
        "count": g["signal_count"],
    }
    signallers = [ctx.actor(str(x["run"]), x["actor"]) for x in g["signallers"][:MAX_ACTORS]]
    waiters = [ctx.actor(str(x["run"]), x["actor"]) for x in g["waiters"]]
    signal_step["actors"] = signallers
    wait_step["actors"] = waiters[:MAX_ACTORS]

    opened_in_gap = ctx.con.execute("SELECT coalesce(bool_or(start_unknown), false) FROM holds WHERE seq = ?",
                                    [r["hold_seq"]]).fetchone()[0]
    # (no site: taken in a gap of lost events, or with no frame of the program on the
    # stack -- a library's own thread, as a pool's manager)
    taken = (f"taken at {hold_at}" if hold_at else "taken at an unknown site, in a gap of lost events"
             if opened_in_gap else "taken in library code, with no frame of the program on the stack")
    who = f"{holder['kind']} '{holder['name']}'"
    by = f"{signaller['kind']} '{signaller['name']}'"
    lines = [
        f"{who} waits for {what(res)} at {wait_at} while holding '{label}' ({taken})"
        + (f" — the wait is made by its child task '{waiter['name']}'" if r["waiter"] != r["holder"] else "")
        + ".",
        f"{by} takes '{label}' at {att_at} before {signal_text}.",
        "Each waits for the other: the waiter for the signal, the signaller for the lock.",
    ]
    blocked_ns = None
    hung = blocked and r["wend_ts"] is None
    if blocked:
        since = max(x for x in (r["blocked_since"], r["wts"]) if x is not None)
        end = r["wend_ts"] if not hung else _last_seen(ctx, run)
        blocked_ns = end - since if end is not None and end > since else None
        if hung:
            lines.insert(0, "The program hung here: both were still blocked when the trace ended"
                         + (f", for {fmt_ns(blocked_ns)} until the process was last seen alive."
                            if blocked_ns is not None else "."))
        else:
            how = {"timeout": "until the wait timed out", "cancelled": "until the wait was cancelled",
                   "error": "until the wait ended by an exception"}.get(
                r["outcome"], "until it ended")
            lines.append(f"This really happened: both were blocked {how}"
                         + (f", for {fmt_ns(blocked_ns)}." if blocked_ns is not None else "."))
    lines.append(f"Fix: release '{label}' before waiting, or signal without taking '{label}'.")

    sites = []
    for run_, sid in ((run, r["wsite"]), (run, r["hold_site"]), (run, r["att_site"]), (run, r["sig_site"])):
        s = ctx.site(run_, sid)
        if s and s["site"] not in {x["site"] for x in sites}:
            sites.append(s)
    details = {
        "resource": res, "held_lock": ctx.lock(lk),
        "waiter_depth": r["depth"], "signal": r["sig"], "ended": ended,
        "blocked_ns": blocked_ns, "hung": hung,
    }
    return Finding(
        kind="wait-cycle",
        severity="critical" if blocked else "error",
        title=(f"Hang: {who} waits for {res['name']} while holding '{label}', which {by} is blocked on"
               if hung else
               f"Wait cycle: waits for {res['name']} while holding '{label}', which its signaller needs"),
        message="\n".join(lines),
        fingerprint_parts=[ctx.lock_identity(lk), res["created_at"] or res["type"],
                           hold_at or "", wait_at or "", att_at or "", sig_at or ""],
        locks=[ctx.lock(lk)],
        threads=list({a["id"]: a for a in [holder, signaller, *waiters, *signallers]}.values()),
        sites=sites, steps=[wait_step, signal_step], count=g["waits"], run=run,
        first_ts=g["first_ts"], last_ts=g["last_ts"], details=details,
        partial=(f"'{label}' was taken in a gap of lost events (known from the recorder's resync); where is "
                 "unknown") if opened_in_gap else None,
        about=keys(k for a in g["about"] for k in (
            hold_key(a["run"], a["lobj"], a["hold_seq"]), wait_key(a["run"], a["wseq"]),
            wait_key(a["run"], a["bseq"]) if a["bseq"] is not None else None) if k is not None),
    )
