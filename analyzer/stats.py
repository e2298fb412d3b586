"""Per-lock statistics (the `locks` array of the findings JSON)."""
from __future__ import annotations

from . import queries
from .context import Context


def lock_stats(ctx: Context) -> list[dict]:
    """One dict per lock key, most contended first (see docs/findings-format.md)."""
    if "lock_stats" not in ctx.cache:
        stmt = queries.statements("lock_stats")[-1]
        rows = ctx.rows(stmt)
        for r in rows:
            r["top_wait_sites"] = [dict(s) for s in r["top_wait_sites"]]
            r["top_hold_sites"] = [dict(s) for s in r["top_hold_sites"]]
            r["label"] = ctx.lock_label(r["lk"])
        ctx.cache["lock_stats"] = rows
    return ctx.cache["lock_stats"]
