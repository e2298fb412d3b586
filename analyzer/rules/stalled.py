"""stalled: lock waits that never ended before the end of the trace and are in no cycle."""
from __future__ import annotations

from ..context import Context
from ..durations import fmt_ns
from ..findings import Finding
from ..waitfor import blocking

KINDS = ("stalled",)


def find(ctx: Context) -> list[Finding]:
    b = blocking(ctx)
    groups: dict[tuple, list] = {}
    for w in b.stalled:
        groups.setdefault((w["run"], w["lk"], w["site"]), []).append(w)
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
            details={"duration_ns": longest, "what": f"lock {ctx.lock(lk)['id']}"},
        ))
    return out
