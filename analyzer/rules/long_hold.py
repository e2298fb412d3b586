"""long-hold: locks held longer than --long-hold (default 100ms), per lock, worst first."""
from __future__ import annotations

from .. import queries
from ..context import Context
from ..durations import fmt_ns
from ..findings import Finding
from ..fold import hold_key, keys

KINDS = ("long-hold",)


def find(ctx: Context) -> list[Finding]:
    threshold = ctx.options.long_hold_ns
    out = []
    for r in ctx.rows(queries.statements("long_holds")[-1], {"threshold": threshold}):
        lk, label = r["lk"], ctx.lock_label(r["lk"])
        worst = []
        for w in r["worst"]:
            worst.append({"duration_ns": w["hold_ns"], "site": ctx.site_text(w["run"], w["site"]),
                          "actor": ctx.actor(w["run"], w["actor"]), "ts": w["ts"],
                          "wall": ctx.wall(w["run"], w["ts"])})
        top = r["worst"][0]
        sites, seen = [], set()
        for w in r["worst"]:
            s = ctx.site(w["run"], w["site"])
            if s and s["site"] not in seen:
                seen.add(s["site"])
                sites.append(s)
        lines = [f"'{label}' was held for {fmt_ns(r['max_hold_ns'])} (threshold {fmt_ns(threshold)}); "
                 f"{r['over']} hold(s) exceeded the threshold. Longest:"]
        lines += [f"  {fmt_ns(w['duration_ns'])} by {w['actor']['kind']} '{w['actor']['name']}', "
                  f"taken at {w['site']}" for w in worst]
        lines.append("Everyone else waiting for this lock waits that long; move slow work "
                     "(I/O, sleeps, callbacks) out of the locked section.")
        out.append(Finding(
            kind="long-hold",
            title=f"Lock '{label}' held for {fmt_ns(r['max_hold_ns'])} at {worst[0]['site']}",
            message="\n".join(lines),
            fingerprint_parts=[ctx.lock_identity(lk), ctx.site_text(top["run"], top["site"]) or ""],
            locks=[ctx.lock(lk)],
            threads=list({w["actor"]["id"]: w["actor"] for w in worst}.values()),
            sites=sites, count=r["over"], run=r["run"], first_ts=r["first_ts"], last_ts=r["last_ts"],
            details={"lock": ctx.lock(lk)["id"], "max_hold_ns": r["max_hold_ns"],
                     "threshold_ns": threshold, "holds_over": r["over"], "worst": worst},
            about=keys(hold_key(h["run"], h["obj"], h["seq"]) for h in r["holds"]),
        ))
    return out
