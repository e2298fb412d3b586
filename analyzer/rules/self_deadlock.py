"""self-deadlock: a thread/task waits for a non-reentrant lock it already holds."""
from __future__ import annotations

from ..context import Context
from ..durations import fmt_ns
from ..findings import Finding
from ..waitfor import blocking

KINDS = ("self-deadlock",)
PREPARE = blocking


def find(ctx: Context) -> list[Finding]:
    b = blocking(ctx)
    groups: dict[tuple, list] = {}
    for e in b.self_waits:
        groups.setdefault((e.run, e.lk, e.site, e.hold_site), []).append(e)
    out = []
    for (run, lk, site_id, hold_site), waits in groups.items():
        first = waits[0]
        never = [e for e in waits if e.end_op is None]
        last_end = max((e.end_ts or b.end_ts.get(run, e.ts)) for e in waits)
        longest = max((e.end_ts or b.end_ts.get(run, e.ts)) - e.ts for e in waits)
        who = ctx.actor(run, first.actor)
        label = ctx.lock_label(lk)
        site, held = ctx.site(run, site_id), ctx.site(run, hold_site)
        outcome = ("it never ended: the program hung" if never else
                   f"it ended by {', '.join(sorted({e.end_op for e in waits}))} after {fmt_ns(longest)}")
        out.append(Finding(
            kind="self-deadlock",
            severity="critical" if never else "error",
            title=f"Self-deadlock: {who['kind']} '{who['name']}' waits for '{label}' it already holds",
            message="\n".join([
                f"{who['kind']} '{who['name']}' waited for '{label}' at {site['site'] if site else '?'} while "
                f"holding it since {held['site'] if held else '?'}; {outcome}.",
                "The lock is not reentrant: use an RLock, or do not call back into code that takes it.",
            ]),
            fingerprint_parts=[ctx.lock_identity(lk), site["site"] if site else "", held["site"] if held else ""],
            locks=[ctx.lock(lk)], threads=[who], sites=[s for s in (site, held) if s],
            steps=[{"actor": who,
                    "holds": [{"lock": ctx.lock(lk)["id"], "name": ctx.lock(lk)["name"],
                               "acquired_at": held["site"] if held else None}],
                    "requests": {"lock": ctx.lock(lk)["id"], "name": ctx.lock(lk)["name"]},
                    "site": site["site"] if site else None, "func": site["func"] if site else None,
                    "stack": ctx.stack(run, site_id), "ts": first.ts, "wall": ctx.wall(run, first.ts),
                    "count": len(waits)}],
            count=len(waits), run=run, first_ts=first.ts, last_ts=last_end,
            details={"duration_ns": longest, "ended": not never},
        ))
    return out
