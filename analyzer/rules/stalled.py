"""stalled: waits that never ended before the end of the trace and are in no cycle:
lock waits, and waits on events, conditions, queues, joins and futures. A wait that
a wait-cycle explains (the waiter, or the signaller blocked on its lock) is reported
there, once."""
from __future__ import annotations

from .. import queries
from ..context import Context
from ..durations import fmt_ns
from ..findings import Finding
from ..fold import hold_key, keys, wait_key
from ..waitfor import blocking
from .wait_cycle import cycle_waits, hung_actors, resource, what

KINDS = ("stalled",)
PREPARE = blocking


def find(ctx: Context) -> list[Finding]:
    b = blocking(ctx)
    explained = cycle_waits(ctx)
    groups: dict[tuple, list] = {}
    for w in b.stalled:
        if (str(w["run"]), w["seq"]) in explained:
            continue
        groups.setdefault((w["run"], w["lk"], w["site"]), []).append(w)
    behind = {(e.run, e.seq): e for e in b.edges if e.end_op is None}  # the hold a lock wait is stuck behind
    out = []
    for (run, lk, site_id), waits in groups.items():
        end = b.end_ts.get(run)
        longest = max((end or w["ts"]) - w["ts"] for w in waits)
        site = ctx.site(run, site_id)
        label = ctx.lock_label(lk)
        actors = [ctx.actor(run, w["actor"]) for w in waits]
        names = ", ".join(f"{a['kind']} '{a['name']}'" for a in actors[:5])
        out.append(Finding(
            kind="stalled",
            title=f"Stalled: {len(waits)} wait(s) for '{label}' at {site['site'] if site else '?'} never ended",
            message=(f"{names} waited for '{label}' at {site['site'] if site else '?'} until the end of the trace "
                     f"(up to {fmt_ns(longest)}), and no wait-for cycle explains it: the holder may be stuck "
                     "elsewhere, or the process was stopped while it waited."),
            fingerprint_parts=[ctx.lock_identity(lk), site["site"] if site else ""],
            locks=[ctx.lock(lk)], threads=actors, sites=[site] if site else [], count=len(waits), run=run,
            first_ts=min(w["ts"] for w in waits), last_ts=end,
            details={"duration_ns": longest, "what": f"lock '{ctx.lock_label(lk)}'"},
            about=keys(_lock_wait_keys(waits, behind)),
        ))
    out += resource_stalls(ctx, b.end_ts, explained)
    return out


def resource_stalls(ctx: Context, end_ts: dict, explained: set | frozenset = frozenset()) -> list[Finding]:
    """One finding per (resource, wait site) whose waits were still open at the end
    (except those in `explained`, and joins/awaits of threads/tasks that hung)."""
    groups: dict[tuple, list] = {}
    hung = hung_actors(ctx)
    for w in ctx.rows(queries.statements("stalled_waits")[-1]):
        if (str(w["run"]), w["seq"]) in explained or (str(w["run"]), w["obj"]) in hung:
            continue  # reported with the wait cycle, or a join/await of a thread/task in a hang
        groups.setdefault((w["run"], w["obj"], w["site"]), []).append(w)
    out = []
    for (run, obj, site_id), waits in groups.items():
        end = end_ts.get(run)
        first = waits[0]
        longest = max((end or w["ts"]) - w["ts"] for w in waits)
        site = ctx.site(run, site_id)
        where = site["site"] if site else "an unknown site"
        rtype = first["res_type"] or "resource"
        res = resource(ctx, run, obj)
        rname = res["name"]
        actors = [ctx.actor(run, w["actor"]) for w in waits]
        names = ", ".join(f"{a['kind']} '{a['name']}'" for a in actors[:5])
        out.append(Finding(
            kind="stalled",
            title=f"Stalled: wait for {what(res)} at {where} never ended",
            message=(f"{names} waited for {what(res)} at {where} until the end of the trace "
                     f"(up to {fmt_ns(longest)}): nothing signalled it. Check that every path sets, "
                     "notifies or puts what this wait needs, or give the wait a timeout."),
            fingerprint_parts=[rtype, first["res_name"] or "", site["site"] if site else ""],
            locks=[], threads=actors, sites=[site] if site else [],
            steps=[{"actor": actors[0], "holds": [],
                    "requests": {"lock": None, "resource": f"{run}/{obj}", "name": rname, "type": rtype},
                    "site": site["site"] if site else None, "func": site["func"] if site else None,
                    "stack": ctx.stack(run, site_id), "ts": first["ts"], "wall": ctx.wall(run, first["ts"]),
                    "count": len(waits)}],
            count=len(waits), run=run, first_ts=min(w["ts"] for w in waits), last_ts=end,
            details={"duration_ns": longest, "what": what(res), "resource": f"{run}/{obj}",
                     "ended": "end-of-trace"},
            about=keys(wait_key(run, w["seq"]) for w in waits),
        ))
    return out


def _lock_wait_keys(waits: list[dict], behind: dict):
    """Each lock wait's key, and the key of the hold it was stuck behind (when known)."""
    for w in waits:
        yield wait_key(w["run"], w["seq"])
        e = behind.get((w["run"], w["seq"]))
        if e is not None:
            yield hold_key(e.run, e.obj, e.hold_seq)
