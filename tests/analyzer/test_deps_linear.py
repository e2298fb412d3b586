"""The dependency step on long holds: exact dependency rows, and a held-set join
whose size is the held sets' size at the groups' representatives — not the
number of requests a hold spans, nor the number of overlapping holds of a lock."""
from __future__ import annotations

import pytest

from analyzer import load as loader
from analyzer import paths, queries

from .tracebuilder import Trace


def _derive(path, **kw) -> dict:
    """holds, deps and the size of deps.sql's intermediate tables (kept: its DROPs are skipped)."""
    con = loader.connect()
    try:
        loader.load(con, [path])
        paths.resolve_sites(con)  # the sites' shown paths, which derive.sql reads
        queries.run(con, "derive", **_derive_fmt(**kw))
        for stmt in queries.statements("deps"):
            if not stmt.startswith("DROP"):
                con.execute(stmt)
        names = dict(con.execute("SELECT lk, name FROM lock_classes").fetchall())
        sites = dict(con.execute("SELECT id, line FROM sites").fetchall())
        deps = [(names[lk], sites[site], [(names[h["lk"]], sites[h["site"]]) for h in held_at], n)
                for lk, site, held_at, n in con.execute("SELECT lk, site, held_at, n FROM deps ORDER BY dep").fetchall()]
        size = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("holds", "held_spans", "dep_groups", "held_pairs")}
        return {"deps": deps, "size": size}
    finally:
        con.close()


def _derive_fmt(group_by: str = "instance") -> dict:
    key = "coalesce(s.site, l.run::VARCHAR || '/' || l.id)" if group_by == "site" else "l.run::VARCHAR || '/' || l.id"
    actor = "coalesce(e.task, e.th)"
    return dict(lock_key=key, actor=actor, actor_source="events", lock_events_kind="VIEW",
                lock_ops_source="events", lock_ops_actor=actor)


def _long_holds(tmp_path, sections: int):
    """A worker keeps `kept` (line 10) and two locks of one class (created at line 5,
    taken at line 11) for the whole run, while it does `sections` times item (line
    20) then queue (line 21) inside it."""
    t = Trace()
    w = t.thread("worker", t.main)
    kept = t.lock("kept")
    pool = [t.lock("pool", line=5), t.lock("pool", line=5)]
    item, queue = t.lock("item"), t.lock("queue")
    t.acquire(w, kept, 10)
    for p in pool:
        t.acquire(w, p, 11)
    for _ in range(sections):
        t.acquire(w, item, 20)
        t.acquire(w, queue, 21)
        t.release(w, queue)
        t.release(w, item)
    return t.write(tmp_path / f"long-{sections}.jsonl", end=False)


def test_dependencies_of_long_holds_are_exact(tmp_path):
    got = _derive(_long_holds(tmp_path, 50))
    kept, pools = ("kept", 10), [("pool", 11), ("pool", 11)]
    assert got["deps"] == [
        ("pool", 11, [kept], 1),
        ("pool", 11, [kept, ("pool", 11)], 1),
        ("item", 20, [kept, *pools], 50),
        ("queue", 21, [kept, *pools, ("item", 20)], 50),
    ]


def test_dependencies_of_overlapping_holds_of_one_key_count_the_key_once(tmp_path):
    """With --group-by site the two pool locks are one key taken at one site: held once."""
    got = _derive(_long_holds(tmp_path, 50), group_by="site")
    kept, pool = ("kept", 10), ("pool", 11)
    assert got["deps"] == [
        ("pool", 11, [kept], 2),
        ("item", 20, [kept, pool], 50),
        ("queue", 21, [kept, ("item", 20), pool], 50),   # (sorted by lock key)
    ]


@pytest.mark.parametrize("group_by", ["instance", "site"])
def test_held_set_join_is_the_size_of_the_held_sets_not_of_the_hold_lengths(tmp_path, group_by):
    small, big = (_derive(_long_holds(tmp_path, n), group_by=group_by)["size"] for n in (100, 1000))
    # requests grouped by (lock, site, held set): kept, pool, pool (again, holding the
    # first), item, queue; each group's first request joined once with each (lock,
    # site) held then — 0 + 1 + 2 + 3 + 4 pairs; with --group-by site the two pool
    # locks are one (lock, site): 0 + 1 + 2 + 2 + 3
    for size in (small, big):
        assert size["dep_groups"] == 5
        assert size["held_pairs"] == {"instance": 10, "site": 8}[group_by]
    # (one span of request numbers per hold, whatever its length)
    assert [size["held_spans"] for size in (small, big)] == [3 + 2 * 100, 3 + 2 * 1000]


def test_order_graph_keeps_only_what_a_cycle_can_use(tmp_path):
    """Edges into and out of the a/b inversion (c -> a, b -> d, d -> e) are on no cycle:
    trimmed before networkx; the inversion is still found."""
    from analyzer import analyze
    from analyzer.context import Context, Options
    from analyzer.lockgraph import find_cycles, order_graph

    t = Trace()
    t1, t2 = t.thread("t1", t.main), t.thread("t2", t.main)
    a, b, c, d, e = (t.lock(n) for n in "abcde")
    t.nested(t1, [c, a, b], [10, 11, 12])
    t.nested(t2, [b, d, e], [20, 21, 22])
    t.nested(t2, [b, a], [23, 24])
    seen = {}

    def grab(doc, con):
        ctx = Context(con, Options())
        names = dict(con.execute("SELECT lk, name FROM lock_classes").fetchall())
        graph = order_graph(ctx)
        seen["graph"] = sorted((names[x], names[y]) for x, y in graph.edges)
        seen["cycles"] = [sorted(names[lk] for lk in cyc.locks) for cyc in find_cycles(ctx)]
        seen["kinds"] = [f["kind"] for f in doc["findings"]]

    analyze([t.write(tmp_path / "t.jsonl")], on_result=grab, fail_on="never")
    assert seen["graph"] == [("a", "b"), ("b", "a")]
    assert seen["cycles"] == [["a", "b"]]
    assert "potential-deadlock" in seen["kinds"]


def test_wait_edges_stay_linear_when_a_waiter_is_barged_past(tmp_path):
    """A waiter that another thread passes again and again (a queue's mutex between
    two busy threads: 3.13's test_queue took 9.7 s and 2.5 GB instead of 2.7 s when
    each such hold got an edge) links only to the holder when its wait began if it
    got the lock in the end; one that never got it links to the last 16 holds."""
    from analyzer import analyze
    from analyzer.context import Context, Options
    from analyzer.waitfor import blocking

    t = Trace()
    busy, patient, stuck = (t.thread(n, t.main) for n in ("busy", "patient", "stuck"))
    lock = t.lock("mutex")
    t.acquire(busy, lock, 10)
    t.ev(patient, lock, "wait", 20)
    for _ in range(1000):  # the busy thread lets it go and takes it back, 1000 times
        t.release(busy, lock)
        t.acquire(busy, lock, 10)
    t.release(busy, lock)
    t.acquire(patient, lock, 20)
    t.release(patient, lock)
    t.acquire(busy, lock, 10)
    t.ev(stuck, lock, "wait", 30)
    for _ in range(1000):
        t.release(busy, lock)
        t.acquire(busy, lock, 10)
    seen = {}

    def grab(doc, con):
        edges = blocking(Context(con, Options())).edges
        seen["edges"] = sorted((e.actor, e.holder) for e in edges)

    analyze([t.write(tmp_path / "t.jsonl", end=False)], on_result=grab, fail_on="never")
    assert seen["edges"] == sorted([(patient, busy)] + [(stuck, busy)] * 17)
