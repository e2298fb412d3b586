"""DuckDB queries behind the HTML report's charts: timeline bars, lock-order
edges, duration histograms and stacks.

They read the analyzer's tables (docs/database.md): `runs`, `threads`, `tasks`,
`segments`, `sites`, `lock_classes`, `holds`, `waits` and `deps`. All bulk work
(selecting a bounded set of bars out of millions of holds, binning durations)
happens in SQL; Python only sees the bounded result.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import orjson

TIMELINE_TABLES = ("runs", "threads", "tasks", "sites", "lock_classes", "holds", "waits")
GRAPH_TABLES = ("deps", "lock_classes", "sites")


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables and views of the connection's main database."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT internal "
        "UNION SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    return {r[0] for r in rows}


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[dict]:
    cur = con.execute(sql, params) if params is not None else con.execute(sql)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


@dataclass
class Clock:
    """Aligns the runs of a trace on one time axis (wall clock, ns since `t0`)."""

    anchors: dict[str, tuple[int, int]]          # run -> (mono_ns, wall_ns)
    t0: int                                      # earliest run start, wall ns
    end: int                                     # latest run end, ns since t0
    run_bounds: dict[str, tuple[int, int]] = field(default_factory=dict)  # run -> (first_ts, last_ts)

    def x(self, run: str, ts: int) -> int:
        mono, wall = self.anchors.get(run, (0, 0))
        return wall + (ts - mono) - self.t0


def clock(con: duckdb.DuckDBPyConnection) -> Clock | None:
    rows = con.execute(
        "SELECT run, coalesce(mono_ns, 0), coalesce(wall_ns, 0), first_ts, last_ts FROM runs "
        "WHERE first_ts IS NOT NULL").fetchall()
    if not rows:
        return None
    anchors = {r: (m, w) for r, m, w, _f, _l in rows}
    t0 = min(w + (f - m) for _r, m, w, f, _l in rows)
    end = max(w + (last - m) - t0 for _r, m, w, _f, last in rows)
    return Clock(anchors, t0, end, {r: (f, last) for r, _m, _w, f, last in rows})


# Holds and waits as spans; {hold_filter}/{wait_filter} restrict each table before
# anything is joined (constant filters DuckDB pushes into the scans).
_SPANS = """
    SELECT 'hold' AS what, h.run, h.actor, h.lk, h.site, h.ts, h.end_ts, NULL::VARCHAR AS end_op,
           coalesce(h.end_ts, {inf}) - h.ts AS dur
    FROM holds h WHERE {hold_filter}
    UNION ALL
    SELECT 'wait', w.run, w.actor, w.lk, w.site, w.ts, w.end_ts, w.end_op,
           coalesce(w.end_ts, {inf}) - w.ts
    FROM waits w WHERE {wait_filter}
"""
_INF = (1 << 62)

_NAMES = """
SELECT s.what, s.run, s.actor, s.lk, s.ts, coalesce(s.end_ts, r.last_ts) AS end_ts,
       s.end_ts IS NULL AS open, s.end_op,
       c.key AS lock_id, c.name AS lock_name, c.type AS lock_type, c.created_at AS lock_created_at,
       st.site AS site, st.func AS func,
       coalesce(t.name, k.name, g.name, '#' || s.actor) AS actor_name,
       CASE WHEN k.id IS NOT NULL THEN 'task' WHEN g.id IS NOT NULL AND t.id IS NULL THEN 'segment'
            ELSE 'thread' END AS actor_kind
FROM picked s
JOIN runs r ON r.run = s.run
LEFT JOIN lock_classes c ON c.lk = s.lk
LEFT JOIN sites st ON st.run = s.run AND st.id = s.site
LEFT JOIN threads t ON t.run = s.run AND t.id = s.actor
LEFT JOIN tasks k ON k.run = s.run AND k.id = s.actor
LEFT JOIN {segments} g ON g.run = s.run AND g.id = s.actor
ORDER BY s.run, s.actor, s.ts
"""


@dataclass
class Spans:
    """A bounded selection of holds and waits for one timeline."""

    rows: list[dict]
    total: int            # holds + waits that matched before bounding
    limit: int


def span_counts(con: duckdb.DuckDBPyConnection) -> int:
    """All holds and waits of the trace."""
    return con.execute("SELECT (SELECT count(*) FROM holds) + (SELECT count(*) FROM waits)").fetchone()[0]


def _spans_sql(where: str) -> str:
    return _SPANS.format(hold_filter=where.replace("{t}", "h"), wait_filter=where.replace("{t}", "w"), inf=_INF)


def _window_filter(i: int, params: dict, run: str, t0: int, t1: int) -> str:
    params.update({f"r{i}": run, f"a{i}": t0, f"b{i}": t1})
    return f"({{t}}.run = $r{i} AND {{t}}.ts <= $b{i} AND coalesce({{t}}.end_ts, {_INF}) >= $a{i})"


def select_spans(con: duckdb.DuckDBPyConnection, *, limit: int,
                 window: tuple[str, int, int] | None = None,
                 actors: list[tuple[str, int]] | None = None,
                 locks: list[str] | None = None,
                 near: list[tuple[str, int, int]] | None = None) -> Spans:
    """Holds and waits to draw, at most `limit`.

    `window` (run, t0, t1) restricts to spans overlapping it; `actors` (run,
    actor id) and `locks` (lock keys) restrict to spans of those actors or of
    those locks (either). When more match than `limit`, keep the spans that
    overlap the `near` windows (up to half the budget, shared among them,
    longest first) and fill up with the longest of the rest.
    """
    params: dict[str, Any] = {}
    conds = []
    if window:
        conds.append(_window_filter(0, params, *window))
    who = []
    if actors:
        params["actors"] = sorted({a for _r, a in actors})
        who.append("list_contains($actors, {t}.actor)")
    if locks:
        params["lks"] = [r[0] for r in con.execute(
            "SELECT lk FROM lock_classes WHERE list_contains($k, key)", {"k": locks}).fetchall()]
        who.append("list_contains($lks, {t}.lk)")
    if who:
        conds.append("(" + " OR ".join(who) + ")")
    where = " AND ".join(conds) or "TRUE"
    if conds:
        total = con.execute(f"SELECT count(*) FROM ({_spans_sql(where)})", params).fetchone()[0]
    else:
        total = span_counts(con)

    parts = []
    if near:
        per = max(1, limit // 2 // len(near))
        for i, (run, t0, t1) in enumerate(near, 1):
            cond = " AND ".join([where, _window_filter(i, params, run, t0, t1)])
            parts.append(f"(SELECT *, 0 AS pri FROM ({_spans_sql(cond)}) ORDER BY dur DESC, ts LIMIT {per})")
    parts.append(f"(SELECT *, 1 AS pri FROM ({_spans_sql(where)}) ORDER BY dur DESC, ts LIMIT {int(limit)})")
    # the near spans first, then the longest of the rest; a span in both counts once
    picked = (f"picked AS (SELECT * FROM ({' UNION ALL '.join(parts)}) "
              "QUALIFY row_number() OVER (PARTITION BY what, run, actor, lk, ts ORDER BY pri) = 1 "
              f"ORDER BY pri, dur DESC, ts LIMIT {int(limit)})")
    segments = "segments" if "segments" in tables(con) else \
        "(SELECT NULL::VARCHAR AS run, NULL::INTEGER AS id, NULL::VARCHAR AS name LIMIT 0)"
    sql = f"WITH {picked}\n" + _NAMES.format(segments=segments)
    return Spans(_rows(con, sql, params), total, limit)


def lock_edges(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Lock-order edges held -> requested from `deps`, with their sites and counts."""
    return _rows(con, """
        WITH e AS (
            SELECT d.run, d.actor, d.lk AS b, d.site AS req_site, d.n, unnest(d.held_at) AS ha FROM deps d
        ), f AS (
            SELECT e.ha.lk AS a, e.b, e.run, e.actor, e.n, s1.site AS req, s1.func AS func, s2.site AS held_at
            FROM e LEFT JOIN sites s1 ON s1.run = e.run AND s1.id = e.req_site
                   LEFT JOIN sites s2 ON s2.run = e.run AND s2.id = e.ha.site
        ), g AS (
            SELECT a, b, req, func, held_at, sum(n) AS n FROM f GROUP BY ALL
        ), agg AS (
            SELECT a, b, sum(n) AS n,
                   list({'req': req, 'func': func, 'held_at': held_at, 'n': n} ORDER BY n DESC, req)[1:6] AS sites,
                   count(*) AS site_pairs
            FROM g GROUP BY a, b
        ), who AS (SELECT a, b, count(DISTINCT (run, actor)) AS actors FROM f GROUP BY a, b)
        SELECT ca.key AS a, cb.key AS b, agg.n, agg.sites, agg.site_pairs, who.actors
        FROM agg JOIN who USING (a, b)
        JOIN lock_classes ca ON ca.lk = agg.a JOIN lock_classes cb ON cb.lk = agg.b
        ORDER BY agg.n DESC, ca.key, cb.key
    """)


def histograms(con: duckdb.DuckDBPyConnection, lock_keys: list[str], bins_per_decade: int = 4) -> dict:
    """Log-binned hold and wait durations of the given locks:
    {"hold": {key: [(bin_lower_ns, count), ...]}, "wait": {...}}."""
    out: dict[str, dict[str, list[tuple[float, int]]]] = {"hold": {}, "wait": {}}
    if not lock_keys:
        return out
    for what, table, col in (("hold", "holds", "hold_ns"), ("wait", "waits", "wait_ns")):
        rows = con.execute(f"""
            SELECT c.key, floor(log10(greatest(t.{col}, 1)) * $b)::INTEGER AS bin, count(*) AS n
            FROM {table} t JOIN lock_classes c ON c.lk = t.lk
            WHERE list_contains($keys, c.key) AND t.{col} IS NOT NULL
            GROUP BY ALL ORDER BY 1, 2""", {"b": bins_per_decade, "keys": lock_keys}).fetchall()
        for key, b, n in rows:
            out[what].setdefault(key, []).append((10 ** (b / bins_per_decade), n))
    return out


def stack_finder(con: duckdb.DuckDBPyConnection | None):
    """A function site text -> recorded stack (or None), cached."""
    cache: dict[str, list | None] = {}
    ok = con is not None and "sites" in tables(con)
    has_site_col = ok and bool(con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'sites' AND column_name = 'site'"
    ).fetchone()[0])

    def find(site: str) -> list | None:
        if not has_site_col or not site:
            return None
        if site not in cache:
            row = con.execute("SELECT stack FROM sites WHERE site = ? AND stack IS NOT NULL LIMIT 1",
                              [site]).fetchone()
            stack = row[0] if row else None
            if isinstance(stack, (str, bytes)):
                try:
                    stack = orjson.loads(stack)
                except orjson.JSONDecodeError:
                    stack = None
            cache[site] = stack if isinstance(stack, list) else None
        return cache[site]

    return find
