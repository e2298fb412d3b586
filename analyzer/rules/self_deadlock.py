"""self-deadlock: a thread/task waits for a non-reentrant lock it already holds,
and the wait never ended (see analyzer/waitfor.py for what is not one: a
hand-off, a wait that gave up, an acquire that raised)."""
from __future__ import annotations

from ..context import Context
from ..durations import fmt_ns
from ..findings import Finding
from ..fold import hold_key, keys, wait_key
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
        end = b.end_ts.get(run, first.ts)
        longest = max(end - e.ts for e in waits)
        who = ctx.actor(run, first.actor)
        label = ctx.lock_label(lk)
        site, held = ctx.site(run, site_id), ctx.site(run, hold_site)
        held_text = (held["site"] if held else "a gap of lost events (where it was taken is unknown)"
                     if first.hold_start_unknown else "?")
        out.append(Finding(
            kind="self-deadlock",
            severity="critical",
            title=f"Self-deadlock: {who['kind']} '{who['name']}' waits for '{label}' it already holds",
            message="\n".join([
                f"{who['kind']} '{who['name']}' waited for '{label}' at {site['site'] if site else '?'} while "
                f"holding it since {held_text}; it never ended: the program hung "
                f"(for {fmt_ns(longest)}, until the end of the trace).",
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
            count=len(waits), run=run, first_ts=first.ts, last_ts=end,
            details={"duration_ns": longest, "ended": False},
            partial=("the lock was taken in a gap of lost events (known from the recorder's resync); "
                     "where is unknown") if any(e.hold_start_unknown for e in waits) else None,
            about=keys(k for e in waits for k in (wait_key(e.run, e.seq), hold_key(e.run, e.obj, e.hold_seq))),
        ))
    return out
