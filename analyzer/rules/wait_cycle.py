"""wait-cycle: a thread/task waits on an event, condition, queue, join, task or
future while holding a lock that the signaller of that resource takes before it
signals — the waiter waits for the signal, the signaller for the lock.

One finding per code path: (held lock, resource, where the lock was taken, where
the wait was made, where the signaller takes the lock, where it signals).
Critical when it was observed blocked: the wait gave up (timeout, cancelled) or
never ended while the signaller was waiting for the lock.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import queries
from ..context import Context
from ..durations import fmt_ns
from ..findings import Finding

KINDS = ("wait-cycle",)
MAX_ACTORS = 50


@dataclass
class _Group:
    rows: list[dict] = field(default_factory=list)
    waits: set = field(default_factory=set)


def cycles(ctx: Context) -> list[dict]:
    """The rows of the wait_cycles query (one per wait, held lock and signalling path), computed once."""
    if "wait_cycles" not in ctx.cache:
        ctx.cache["wait_cycles"] = _run(ctx)
    return ctx.cache["wait_cycles"]


def _run(ctx: Context) -> list[dict]:
    stmts = queries.statements("wait_cycles")
    for stmt in stmts[:-1]:
        ctx.con.execute(stmt)
        # nothing waited on, or nothing waited on with a lock held: skip the signal scans
        for table in ("sync_waits", "wait_held"):
            if f"TABLE {table} AS" in stmt and not ctx.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
                return []
    return ctx.rows(stmts[-1])


def cycle_waits(ctx: Context) -> set[tuple[str, int]]:
    """(run, seq) of every wait-begin that is part of a wait-cycle (for rules that
    must not report the same wait again, such as `stalled`)."""
    return {(r["run"], r["wseq"]) for r in cycles(ctx)}


def resource(ctx: Context, run: str, res: int) -> dict:
    """`{"id", "name", "type", "created_at"}` of a resource, thread or task."""
    key = ("resources", run)
    if key not in ctx.cache:
        ctx.cache[key] = {r["id"]: r for r in ctx.rows(
            "SELECT r.id, r.type, r.name, s.site AS created_at FROM resources r "
            "LEFT JOIN sites s ON s.run = r.run AND s.id = r.site WHERE r.run = $run", {"run": run})}
    r = ctx.cache[key].get(res)
    if r is not None:
        name = r["name"] or (f"{r['type']}@{r['created_at']}" if r["created_at"] else f"{r['type']} #{res}")
        return {"id": f"{run}/{res}", "name": name, "type": r["type"], "created_at": r["created_at"]}
    actor = ctx.actor(run, res)
    return {"id": actor["id"], "name": actor["name"], "type": actor["kind"], "created_at": None}


def _what(res: dict) -> str:
    if res["type"] == "thread":
        return f"thread '{res['name']}' to finish (join)"
    if res["type"] == "task":
        return f"task '{res['name']}' to finish"
    return f"{res['type']} '{res['name']}'"


def find(ctx: Context) -> list[Finding]:
    groups: dict[tuple, _Group] = {}
    for r in cycles(ctx):
        run = r["run"]
        key = (ctx.lock_identity(r["lk"]), r["lk"] if ctx.options.group_by == "instance" else None,
               resource(ctx, run, r["res"])["created_at"] or resource(ctx, run, r["res"])["type"],
               *(ctx.site_text(run, r[s]) for s in ("hold_site", "wsite", "att_site", "sig_site")))
        g = groups.setdefault(key, _Group())
        g.rows.append(r)
        g.waits.add((run, r["wseq"]))
    return [_finding(ctx, g) for g in groups.values()]


def _finding(ctx: Context, g: _Group) -> Finding:
    rows = sorted(g.rows, key=lambda r: (not r["blocked"], r["run"], r["wseq"]))
    r = rows[0]  # the shown occurrence: a blocked one if any
    run, lk = r["run"], r["lk"]
    label, res = ctx.lock_label(lk), resource(ctx, run, r["res"])
    holder, signaller = ctx.actor(run, r["holder"]), ctx.actor(run, r["signaller"])
    waiter = ctx.actor(run, r["waiter"])
    hold_at, wait_at = ctx.site_text(run, r["hold_site"]), ctx.site_text(run, r["wsite"])
    att_at, sig_at = ctx.site_text(run, r["att_site"]), ctx.site_text(run, r["sig_site"])
    blocked = [x for x in rows if x["blocked"]]
    ended = None
    if blocked:
        ended = blocked[0]["outcome"] or "end-of-trace"
    signal_text = ("it finishes" if r["sig"] == "end" else "it could finish" if r["sig"] == "pending"
                   else f"it signals ({r['sig']}) at {sig_at or 'an unknown site'}")

    wait_step = {
        "actor": holder,
        "holds": [{"lock": ctx.lock(lk)["id"], "name": ctx.lock(lk)["name"], "acquired_at": hold_at}],
        "requests": {"lock": None, "resource": res["id"], "name": res["name"], "type": res["type"]},
        "site": wait_at, "func": (ctx.site(run, r["wsite"]) or {}).get("func"),
        "stack": ctx.stack(run, r["wsite"]), "ts": r["wts"], "wall": ctx.wall(run, r["wts"]),
        "count": len(g.waits),
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
        "count": sum(x["signals"] for x in {(x["run"], x["signaller"]): x for x in rows}.values()),
    }
    signallers = list({(x["run"], x["signaller"]): ctx.actor(x["run"], x["signaller"])
                       for x in rows}.values())[:MAX_ACTORS]
    waiters = list({(x["run"], x["holder"]): ctx.actor(x["run"], x["holder"]) for x in rows}.values())
    signal_step["actors"] = signallers
    wait_step["actors"] = waiters[:MAX_ACTORS]

    who = f"{holder['kind']} '{holder['name']}'"
    by = f"{signaller['kind']} '{signaller['name']}'"
    lines = [
        f"{who} waits for {_what(res)} at {wait_at} while holding '{label}' (taken at {hold_at})"
        + (f" — the wait is made by its child task '{waiter['name']}'" if r["waiter"] != r["holder"] else "")
        + ".",
        f"{by} takes '{label}' at {att_at} before {signal_text}.",
        "Each waits for the other: the waiter for the signal, the signaller for the lock.",
    ]
    if blocked:
        b = blocked[0]
        since = max(x for x in (b["blocked_since"], b["wts"]) if x is not None)
        end = b["wend_ts"]
        how = {"timeout": "until the wait timed out", "cancelled": "until the wait was cancelled"}.get(
            b["outcome"], "until the end of the trace (it never ended)")
        lines.append(f"This really happened: both were blocked {how}"
                     + (f", for {fmt_ns(end - since)}." if end is not None else "."))
    lines.append(f"Fix: release '{label}' before waiting, or signal without taking '{label}'.")

    sites = []
    for run_, sid in ((run, r["wsite"]), (run, r["hold_site"]), (run, r["att_site"]), (run, r["sig_site"])):
        s = ctx.site(run_, sid)
        if s and s["site"] not in {x["site"] for x in sites}:
            sites.append(s)
    runs = [x for x in rows if x["run"] == run]
    details = {
        "resource": res, "held_lock": ctx.lock(lk),
        "waiter_depth": r["depth"], "signal": r["sig"], "ended": ended,
        "blocked_ns": (blocked[0]["wend_ts"] - max(x for x in (blocked[0]["blocked_since"], blocked[0]["wts"])
                                                   if x is not None))
        if blocked and blocked[0]["wend_ts"] is not None else None,
    }
    return Finding(
        kind="wait-cycle",
        severity="critical" if blocked else "error",
        title=f"Wait cycle: waits for {res['name']} while holding '{label}', which its signaller needs",
        message="\n".join(lines),
        fingerprint_parts=[ctx.lock_identity(lk), res["created_at"] or res["type"],
                           hold_at or "", wait_at or "", att_at or "", sig_at or ""],
        locks=[ctx.lock(lk)],
        threads=list({a["id"]: a for a in [holder, signaller, *waiters, *signallers]}.values()),
        sites=sites, steps=[wait_step, signal_step], count=len(g.waits), run=run,
        first_ts=min(x["wts"] for x in runs), last_ts=max(x["wts"] for x in runs), details=details,
    )
