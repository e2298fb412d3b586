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


# One row per hold or wait, with the end of the run standing in for a missing end.
_SPANS = """
spans AS (
    SELECT 'hold' AS what, h.run, h.actor, h.lk, h.site, h.ts,
           coalesce(h.end_ts, r.last_ts) AS end_ts, h.end_ts IS NULL AS open, NULL::VARCHAR AS end_op
    FROM holds h JOIN runs r USING (run)
    UNION ALL
    SELECT 'wait', w.run, w.actor, w.lk, w.site, w.ts,
           coalesce(w.end_ts, r.last_ts), w.end_ts IS NULL, w.end_op
    FROM waits w JOIN runs r USING (run)
)"""

_NAMES = """
SELECT s.what, s.run, s.actor, s.lk, s.ts, s.end_ts, s.open, s.end_op,
       c.key AS lock_id, c.name AS lock_name, c.type AS lock_type, c.created_at AS lock_created_at,
       st.site AS site, st.func AS func,
       coalesce(t.name, k.name, g.name, '#' || s.actor) AS actor_name,
       CASE WHEN k.id IS NOT NULL THEN 'task' WHEN g.id IS NOT NULL AND t.id IS NULL THEN 'segment'
            ELSE 'thread' END AS actor_kind
FROM picked s
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
    return con.execute("SELECT (SELECT count(*) FROM holds) + (SELECT count(*) FROM waits)").fetchone()[0]


def select_spans(con: duckdb.DuckDBPyConnection, *, limit: int,
                 windows: list[tuple[str, int, int]] | None = None,
                 actors: list[tuple[str, int]] | None = None,
                 locks: list[str] | None = None,
                 near: list[tuple[str, int, int]] | None = None) -> Spans:
    """Holds and waits to draw, at most `limit`.

    `windows` (run, t0, t1) restrict to spans overlapping them; `actors`
    (run, actor id) and `locks` (lock keys) restrict to spans of those actors or
    of those locks (either). When more match than `limit`, keep every span that
    overlaps one of the `near` windows (up to half the budget, longest first)
    and fill up with the longest of the rest.
    """
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    ctes = [_SPANS]
    if windows:
        ctes.append("win AS (SELECT unnest($w_run) AS run, unnest($w_t0) AS t0, unnest($w_t1) AS t1)")
        params.update(w_run=[w[0] for w in windows], w_t0=[w[1] for w in windows],
                      w_t1=[w[2] for w in windows])
        where.append("EXISTS (SELECT 1 FROM win WHERE win.run = s.run AND s.ts <= win.t1 AND s.end_ts >= win.t0)")
    who = []
    if actors:
        ctes.append("act AS (SELECT unnest($a_run) AS run, unnest($a_id) AS actor)")
        params.update(a_run=[a[0] for a in actors], a_id=[a[1] for a in actors])
        who.append("EXISTS (SELECT 1 FROM act WHERE act.run = s.run AND act.actor = s.actor)")
    if locks:
        params["locks"] = locks
        who.append("s.lk IN (SELECT lk FROM lock_classes WHERE list_contains($locks, key))")
    if who:
        where.append("(" + " OR ".join(who) + ")")
    ctes.append(f"sel AS (SELECT s.*, s.end_ts - s.ts AS dur FROM spans s WHERE {' AND '.join(where)})")
    if near:
        ctes.append("nearw AS (SELECT unnest($n_run) AS run, unnest($n_t0) AS t0, unnest($n_t1) AS t1)")
        params.update(n_run=[w[0] for w in near], n_t0=[w[1] for w in near], n_t1=[w[2] for w in near])
        ctes.append("""near AS (
            SELECT s.* FROM sel s
            WHERE EXISTS (SELECT 1 FROM nearw n WHERE n.run = s.run AND s.ts <= n.t1 AND s.end_ts >= n.t0)
            ORDER BY s.dur DESC, s.ts LIMIT $limit // 2)""")
    else:
        ctes.append("near AS (SELECT * FROM sel LIMIT 0)")
    ctes.append("""picked AS (
        SELECT what, run, actor, lk, site, ts, end_ts, open, end_op FROM near
        UNION
        SELECT what, run, actor, lk, site, ts, end_ts, open, end_op FROM (
            SELECT * FROM sel ORDER BY dur DESC, ts LIMIT $limit - (SELECT count(*) FROM near)))""")
    segments = "segments" if "segments" in tables(con) else \
        "(SELECT NULL::VARCHAR AS run, NULL::INTEGER AS id, NULL::VARCHAR AS name LIMIT 0)"
    sql = "WITH " + ",\n".join(ctes) + "\n" + _NAMES.format(segments=segments)
    total = con.execute("WITH " + ",\n".join(c for c in ctes if not c.lstrip().startswith(("near", "picked")))
                        + "\nSELECT count(*) FROM sel", {k: v for k, v in params.items()
                                                         if not k.startswith("n_") and k != "limit"}
                        ).fetchone()[0]
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
