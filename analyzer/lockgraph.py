"""Lock-order cycles from the deduplicated dependency set (`deps` table).

The graph has one node per lock key and an edge held -> requested for each
dependency (actor, requested lock, held set, site). Cycles are enumerated with
networkx inside strongly connected components, bounded in length and number.
For each cycle we look for one dependency per edge such that (iGoodlock):
the actors are distinct, the held sets are pairwise disjoint (no common gate
lock), and no two of them are ordered by happens-before (thread start/join, a
signal that ended a wait, a queue hand-off, a barrier, task creation: see
`happens_before`). A cycle with such
an assignment is a potential deadlock; one without is a guarded cycle, with the
reason the best assignment failed.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx

from .context import Context
from .happens_before import HappensBefore

SEARCH_BUDGET = 20_000  # backtracking steps per cycle and level


@dataclass
class Dep:
    dep: int
    run: str
    actor: int
    lk: int
    site: int | None
    held: tuple[int, ...]
    held_at: list[dict]
    n: int
    first_ts: int
    last_ts: int
    first_seq: int
    last_seq: int
    th: int
    task: int | None
    failed: int

    @property
    def who(self) -> tuple[str, int]:
        return (self.run, self.actor)


@dataclass
class Cycle:
    locks: list[int]                 # lock keys in order; edge i is locks[i] -> locks[i+1]
    steps: list[Dep]                 # the chosen dependency per edge
    status: str                      # "potential" or "guarded"
    reason: str | None = None        # for guarded: single-actor | gate-lock | ordered
    gate_locks: list[int] = field(default_factory=list)
    order: str | None = None


def load_deps(ctx: Context, locks: list[int] | None = None) -> list[Dep]:
    """The dependencies in `dep` order; with `locks`, only those requesting one of them."""
    where = "" if locks is None else "WHERE lk IN (SELECT unnest($locks::INTEGER[])) "
    rows = ctx.con.execute(
        "SELECT dep, run, actor, lk, site, held, held_at, n, first_ts, last_ts, first_seq, last_seq, "
        f"th, task, failed FROM deps {where}ORDER BY dep", {} if locks is None else {"locks": locks}).fetchall()
    return [Dep(r[0], r[1], r[2], r[3], r[4], tuple(r[5]), list(r[6]), *r[7:]) for r in rows]


TRIM_ROUNDS = 16


def order_graph(ctx: Context) -> nx.DiGraph:
    """The part of the lock-order graph (edges held -> requested) that cycles can use.

    Edges whose held lock is never requested under another lock, or whose requested
    lock is never held while requesting another, are on no cycle: they are trimmed
    in SQL (a few rounds; what is left is filtered by networkx anyway). Nodes and
    edges are added in the order of their first dependency."""
    con = ctx.con.cursor()  # its temporary table is its own
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE order_edges AS "
            "SELECT h, lk, min(dep::BIGINT * 4294967296 + i) AS first "
            "FROM (SELECT dep, lk, unnest(held) AS h, unnest(range(len(held))) AS i FROM deps) GROUP BY h, lk")
        con.execute(  # where networkx would have met each node first (held before requested)
            "CREATE OR REPLACE TEMP TABLE order_nodes AS SELECT node, min(pos) AS pos FROM "
            "(SELECT h AS node, 2 * first AS pos FROM order_edges UNION ALL SELECT lk, 2 * first + 1 FROM order_edges) "
            "GROUP BY node")
        for _ in range(TRIM_ROUNDS):
            trimmed = con.execute(
                "DELETE FROM order_edges WHERE h NOT IN (SELECT lk FROM order_edges) "
                "OR lk NOT IN (SELECT h FROM order_edges)").fetchone()[0]
            if not trimmed:
                break
        nodes = con.execute("SELECT node FROM order_nodes WHERE node IN (SELECT h FROM order_edges) "
                            "ORDER BY pos").fetchall()
        edges = con.execute("SELECT h, lk FROM order_edges ORDER BY first").fetchall()
        con.execute("DROP TABLE order_edges; DROP TABLE order_nodes")
    finally:
        con.close()
    graph = nx.DiGraph()
    graph.add_nodes_from(n for (n,) in nodes)
    graph.add_edges_from(edges)
    return graph


def find_cycles(ctx: Context) -> list[Cycle]:
    """All lock-order cycles (up to the configured length and count), classified."""
    if "cycles" in ctx.cache:
        return ctx.cache["cycles"]
    # The edges come from SQL; only the dependencies of edges inside a strongly
    # connected component (the only ones a cycle can use) are loaded into Python:
    # with one lock per work item there are as many dependencies as requests.
    graph = order_graph(ctx)
    comps = [comp for comp in nx.strongly_connected_components(graph) if len(comp) >= 2]
    comp_of = {lk: i for i, comp in enumerate(comps) for lk in comp}
    edge_deps: dict[tuple[int, int], list[Dep]] = defaultdict(list)
    for d in load_deps(ctx, sorted(comp_of)) if comps else []:
        for h in d.held:
            if comp_of.get(h) == comp_of[d.lk]:
                edge_deps[(h, d.lk)].append(d)
    ctx.cache["edge_deps"] = edge_deps
    hb = HappensBefore(ctx) if comps else None  # (built only when there is a cycle to classify)
    opts = ctx.options
    out: list[Cycle] = []
    seen = 0
    for comp in comps:
        for nodes in nx.simple_cycles(graph.subgraph(comp), length_bound=opts.max_cycle_length):
            seen += 1
            if seen > opts.max_cycles:
                ctx.warnings.append(f"lock-order cycle search stopped after {opts.max_cycles} cycles")
                break
            out.append(_classify(_rotate(nodes), edge_deps, hb))
        if seen > opts.max_cycles:
            break
    ctx.cache["cycles"] = out
    return out


def _rotate(nodes: list[int]) -> list[int]:
    i = nodes.index(min(nodes))
    return nodes[i:] + nodes[:i]


def _candidates(edge: list[Dep]) -> list[Dep]:
    """One representative per (actor, held set) of an edge, most frequent first."""
    best: dict[tuple, Dep] = {}
    for d in sorted(edge, key=lambda d: (-d.n, d.first_seq)):
        best.setdefault((d.run, d.actor, d.held), d)
    return list(best.values())


def _search(options: list[list[Dep]], level: int, hb: HappensBefore) -> list[Dep] | None:
    """Backtracking: one dep per edge; level 1 distinct actors, 2 + disjoint held, 3 + unordered."""
    budget = [SEARCH_BUDGET]
    chosen: list[Dep] = []

    def ok(d: Dep) -> bool:
        for c in chosen:
            if c.who == d.who:
                return False
            if level >= 2 and set(c.held) & set(d.held):
                return False
            if level >= 3 and hb.ordered(c, d):
                return False
        return True

    def go(i: int) -> bool:
        if i == len(options):
            return True
        for d in options[i]:
            budget[0] -= 1
            if budget[0] < 0:
                return False
            if ok(d):
                chosen.append(d)
                if go(i + 1):
                    return True
                chosen.pop()
        return False

    return list(chosen) if go(0) else None


def _order_text(steps: list[Dep], hb: HappensBefore) -> str:
    """How the first ordered pair of `steps` is ordered (the edges between them)."""
    for i, a in enumerate(steps):
        for b in steps[i + 1:]:
            edges = hb.order(a, b)
            if edges is not None:
                return hb.describe(edges, a.run)
    return "ordered by thread start/join"


def _classify(nodes: list[int], edge_deps: dict, hb: HappensBefore) -> Cycle:
    k = len(nodes)
    options = [_candidates(edge_deps[(nodes[i], nodes[(i + 1) % k])]) for i in range(k)]
    full = _search(options, 3, hb)
    if full:
        return Cycle(nodes, full, "potential")
    disjoint = _search(options, 2, hb)
    if disjoint:
        return Cycle(nodes, disjoint, "guarded", "ordered", order=_order_text(disjoint, hb))
    distinct = _search(options, 1, hb)
    if distinct:
        common: set[int] = set()
        for i, a in enumerate(distinct):
            for b in distinct[i + 1:]:
                common |= set(a.held) & set(b.held)
        return Cycle(nodes, distinct, "guarded", "gate-lock", gate_locks=sorted(common))
    return Cycle(nodes, [o[0] for o in options], "guarded", "single-actor")
