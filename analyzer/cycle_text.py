"""Turn a lock-order cycle into finding parts (steps, sites, message) shared by
the cycle rules."""
from __future__ import annotations

from .context import Context
from .lockgraph import Cycle

MAX_EDGE_ACTORS = 50


def edge_actors(ctx: Context, cycle: Cycle, i: int) -> list[dict]:
    """Every actor that took edge `i` of the cycle (its held lock, then its requested
    lock, at any site), first seen first, with when and how often."""
    edge = (cycle.locks[i], cycle.locks[(i + 1) % len(cycle.locks)])
    seen: dict[tuple[str, int], list[int]] = {}
    for d in ctx.cache.get("edge_deps", {}).get(edge, ()):
        first = seen.setdefault(d.who, [d.first_ts, 0])
        first[0] = min(first[0], d.first_ts)
        first[1] += d.n
    ordered = sorted(seen.items(), key=lambda kv: (kv[1][0], kv[0]))[:MAX_EDGE_ACTORS]
    return [ctx.actor(run, actor) | {"ts": ts, "count": n} for (run, actor), (ts, n) in ordered]


def steps(ctx: Context, cycle: Cycle) -> list[dict]:
    """One step per edge: actor, held locks with where they were taken, requested lock and site."""
    out = []
    for i, d in enumerate(cycle.steps):
        site = ctx.site(d.run, d.site) or {}
        out.append({
            "actor": ctx.actor(d.run, d.actor),
            "actors": edge_actors(ctx, cycle, i) or [ctx.actor(d.run, d.actor)],
            "holds": [{"lock": ctx.lock(h["lk"])["id"], "name": ctx.lock(h["lk"])["name"],
                       "acquired_at": ctx.site_text(d.run, h["site"])} for h in d.held_at],
            "requests": {"lock": ctx.lock(d.lk)["id"], "name": ctx.lock(d.lk)["name"]},
            "site": site.get("site"),
            "func": site.get("func"),
            "stack": ctx.stack(d.run, d.site),
            "ts": d.first_ts,
            "wall": ctx.wall(d.run, d.first_ts),
            "count": d.n,
        })
    return out


def sites(ctx: Context, cycle: Cycle) -> list[dict]:
    """Requesting sites first (in cycle order), then where the held locks were taken."""
    out: list[dict] = []
    seen: set[str] = set()
    for d in cycle.steps:
        s = ctx.site(d.run, d.site)
        if s and s["site"] not in seen:
            seen.add(s["site"])
            out.append(s)
    for d in cycle.steps:
        for h in d.held_at:
            s = ctx.site(d.run, h["site"])
            if s and s["site"] not in seen:
                seen.add(s["site"])
                out.append(s)
    return out


def chain(ctx: Context, cycle: Cycle) -> str:
    names = [ctx.lock_label(lk) for lk in cycle.locks]
    return " -> ".join([*names, names[0]])


def edge_lines(ctx: Context, cycle: Cycle) -> list[str]:
    lines = []
    for d in cycle.steps:
        who = ctx.actor(d.run, d.actor)
        held = ", ".join(f"'{ctx.lock_label(h['lk'])}' (taken at {ctx.site_text(d.run, h['site'])})"
                         for h in d.held_at)
        lines.append(f"{who['kind']} '{who['name']}' requested '{ctx.lock_label(d.lk)}' at "
                     f"{ctx.site_text(d.run, d.site)} while holding {held}")
    return lines


def fingerprint_parts(ctx: Context, cycle: Cycle) -> list[str]:
    """Lock creation sites and request sites in a rotation-independent order."""
    k = len(cycle.locks)
    items = [(ctx.lock_identity(cycle.locks[i]), ctx.site_text(cycle.steps[i].run, cycle.steps[i].site) or "")
             for i in range(k)]
    rotations = [items[i:] + items[:i] for i in range(k)]
    best = min(rotations)
    return [f"{lock}>{site}" for lock, site in best]


def locks(ctx: Context, cycle: Cycle) -> list[dict]:
    return [ctx.lock(lk) for lk in cycle.locks]


def actors(ctx: Context, cycle: Cycle) -> list[dict]:
    out, seen = [], set()
    for d in cycle.steps:
        a = ctx.actor(d.run, d.actor)
        if a["id"] not in seen:
            seen.add(a["id"])
            out.append(a)
    return out
