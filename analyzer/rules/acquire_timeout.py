"""acquire-timeout: blocking acquires that gave up (timeout expired or cancelled).

A wait that was part of a deadlock or a self-deadlock is reported there, once."""
from __future__ import annotations

from .. import queries
from ..context import Context
from ..durations import fmt_ns
from ..findings import Finding
from ..fold import hold_key, keys, wait_key
from ..waitfor import blocking

KINDS = ("acquire-timeout",)
PREPARE = blocking

HOLDERS_SQL = """
SELECT DISTINCT h.run, h.actor, h.site FROM waits w
JOIN holds h ON h.obj = w.obj AND h.run = w.run AND h.seq < w.end_seq
     AND (h.end_seq IS NULL OR h.end_seq > w.end_seq)
WHERE w.run = $run AND w.lk = $lk AND w.site IS NOT DISTINCT FROM $site AND w.end_op IN ('timeout', 'cancel')
LIMIT 10
"""

# The holds open when each of these waits gave up (what it waited behind).
BEHIND_SQL = """
SELECT w.seq, h.obj, h.seq AS hold_seq FROM waits w
JOIN holds h ON h.obj = w.obj AND h.run = w.run AND h.seq < w.end_seq
     AND (h.end_seq IS NULL OR h.end_seq > w.end_seq)
WHERE w.run = $run AND w.seq IN (SELECT unnest($seqs))
ORDER BY w.seq, h.seq
"""


def find(ctx: Context) -> list[Finding]:
    b = blocking(ctx)
    reported = {(e.run, e.seq) for e in b.self_waits} | {(e.run, e.seq) for c in b.deadlocks for e in c}
    recursive = {(e.run, e.lk, e.site) for e in b.self_gave_up}
    ctx.con.execute("CREATE OR REPLACE TEMP TABLE reported_waits (run VARCHAR, seq BIGINT)")
    if reported:  # one statement (executemany runs one INSERT per row: about 1.5 ms each)
        rows = sorted(reported)
        ctx.con.execute("INSERT INTO reported_waits SELECT unnest($1), unnest($2)",
                        [[run for run, _ in rows], [seq for _, seq in rows]])
    out = []
    for r in ctx.rows(queries.statements("acquire_timeouts")[-1]):
        lk, run, label = r["lk"], r["run"], ctx.lock_label(r["lk"])
        site = ctx.site(run, r["site"])
        where = site["site"] if site else "an unknown site"
        holders = ctx.rows(HOLDERS_SQL, {"run": run, "lk": lk, "site": r["site"]})
        holder_text = [f"{ctx.actor(h['run'], h['actor'])['kind']} '{ctx.actor(h['run'], h['actor'])['name']}' "
                       f"(took it at {ctx.site_text(h['run'], h['site'])})" for h in holders]
        what = []
        if r["timeouts"]:
            what.append(f"timed out {r['timeouts']} time(s)")
        if r["cancels"]:
            what.append(f"was cancelled {r['cancels']} time(s)")
        lines = [f"Acquiring '{label}' at {where} {' and '.join(what)} after waiting up to "
                 f"{fmt_ns(r['max_wait_ns'])}."]
        if holder_text:
            lines.append("It was held by: " + "; ".join(holder_text) + ".")
        if (run, lk, r["site"]) in recursive:
            lines.append(f"At least once the waiter held '{label}' itself: a recursive acquire of a "
                         "non-reentrant lock, which only a release by another thread or task can let in "
                         "(without the timeout it would hang).")
        lines.append("A timeout hides a lock that is held too long, or a deadlock that was broken.")
        actors = [ctx.actor(run, a) for a in sorted(r["actors"])]
        out.append(Finding(
            kind="acquire-timeout",
            title=f"Acquire of '{label}' gave up at {where}",
            message="\n".join(lines),
            fingerprint_parts=[ctx.lock_identity(lk), site["site"] if site else ""],
            locks=[ctx.lock(lk)], threads=actors,
            sites=[s for s in [site, *[ctx.site(h["run"], h["site"]) for h in holders]] if s],
            count=r["timeouts"] + r["cancels"], run=run, first_ts=r["first_ts"], last_ts=r["last_ts"],
            details={"lock": ctx.lock(lk)["id"], "timeouts": r["timeouts"], "cancels": r["cancels"],
                     "max_wait_ns": r["max_wait_ns"],
                     "holders": [ctx.site_text(h["run"], h["site"]) for h in holders],
                     "recursive": (run, lk, r["site"]) in recursive},
            about=_about(ctx, run, r["seqs"]),
        ))
    return out


def _about(ctx: Context, run: str, seqs: list[int]) -> list[str]:
    """The waits that gave up, and the holds each waited behind."""
    out = [wait_key(run, s) for s in seqs]
    for b in ctx.rows(BEHIND_SQL, {"run": run, "seqs": seqs}):
        out.append(hold_key(run, b["obj"], b["hold_seq"]))
    return keys(out)
