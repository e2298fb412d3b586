"""hot-lock: the most contended locks, with lock_stat-style statistics."""
from __future__ import annotations

from ..context import Context
from ..durations import fmt_ns
from ..findings import Finding
from ..fold import hold_key, keys, wait_key
from ..stats import lock_stats
from ..waitfor import NEVER, blocking

KINDS = ("hot-lock",)
PREPARE = blocking


def find(ctx: Context) -> list[Finding]:
    out = []
    hot = [s for s in lock_stats(ctx) if s["contentions"] > 0][: ctx.options.hot_locks]
    about = _about(ctx, {s["lk"] for s in hot})
    for s in hot:
        label = ctx.lock_label(s["lk"])
        waits = ", ".join(f"{w['site']} ({w['count']}x, {fmt_ns(w['wait_total_ns'])})" for w in s["top_wait_sites"])
        holds = ", ".join(f"{h['site']} ({h['count']}x, {fmt_ns(h['hold_total_ns'])})" for h in s["top_hold_sites"])
        message = "\n".join([
            f"'{label}': {s['acquisitions']} acquisitions, {s['contentions']} contended "
            f"({100 * s['contentions'] / max(s['acquisitions'], 1):.1f}%), waited {fmt_ns(s['wait_total_ns'])} "
            f"in total (max {fmt_ns(s['wait_max_ns'])}, avg {fmt_ns(s['wait_avg_ns'])}).",
            f"Hold time: min {fmt_ns(s['hold_min_ns'])}, p50 {fmt_ns(s['hold_p50_ns'])}, "
            f"p95 {fmt_ns(s['hold_p95_ns'])}, p99 {fmt_ns(s['hold_p99_ns'])}, max {fmt_ns(s['hold_max_ns'])}.",
            f"Waiting sites: {waits or '-'}",
            f"Holder sites: {holds or '-'}",
        ])
        first_site = s["top_wait_sites"][0]["site"] if s["top_wait_sites"] else None
        sites = [_site(x["site"]) for x in s["top_wait_sites"] + s["top_hold_sites"] if x["site"]]
        details = {k: v for k, v in s.items() if k != "lk"}
        out.append(Finding(
            kind="hot-lock",
            title=f"Contended lock '{label}': {s['contentions']} waits, {fmt_ns(s['wait_total_ns'])} total",
            message=message,
            fingerprint_parts=[ctx.lock_identity(s["lk"])],
            locks=[ctx.lock(s["lk"])], sites=list({x["site"]: x for x in sites}.values()),
            count=s["contentions"], details=details | {"first_wait_site": first_site},
            about=about.get(s["lk"], []),
        ))
    return out


def _about(ctx: Context, lks: set[int]) -> dict[int, list[str]]:
    """Per lock key: the contended waits and the holds they waited behind, longest waits first."""
    edges: dict[int, list] = {}
    for e in blocking(ctx).edges:
        if e.lk in lks:
            edges.setdefault(e.lk, []).append(e)
    return {lk: keys(k for e in sorted(es, key=lambda e: -((e.end_ts or NEVER) - e.ts))
                     for k in (wait_key(e.run, e.seq), hold_key(e.run, e.obj, e.hold_seq)))
            for lk, es in edges.items()}


def _site(text: str) -> dict:
    """A "path:line" site text as a finding's site (a site without a line has no ":line")."""
    path, _, line = text.rpartition(":")
    if path and line.isdigit():
        return {"site": text, "path": path, "line": int(line), "func": None}
    return {"site": text, "path": text, "line": None, "func": None}
