-- Summary mode: a dependency known only from its `dep` records (docs/trace-format.md,
-- "Summary mode") — its occurrences were counted, none is in the events read: the
-- trace's earlier parts are gone, or its first occurrences were lost — still gives
-- its lock-order edges, with its site and the held locks' sites: one row in `deps`
-- per actor the record names, unless the events gave that actor's dependency
-- already, or the lock was held already (a re-entry). Such a row has no events:
-- first_seq -1 and last_seq 2^62, so that happens-before never orders it (it has
-- no place in its actor's order).
-- {actor} names the actor of (th, task) as the events' actors are named.
INSERT INTO deps
WITH rec AS (
    SELECT run, id, obj, site, held, n, first_ts, last_ts,
           unnest(CAST(coalesce(actors, '[]') AS JSON[])) AS a
    FROM summary_deps
    -- (an acquire of a lock already held, an RLock's re-entry, is no request: as in
    -- the events, it orders nothing)
    WHERE NOT coalesce(list_contains(
        list_transform(CAST(coalesce(held, '[]') AS JSON[]), lambda h: TRY_CAST(h->>'obj' AS INTEGER)), obj), false)
), named AS (
    SELECT r.run, r.id, k.lk, r.site, r.held, r.n, r.first_ts, r.last_ts,
           TRY_CAST(r.a->>'th' AS INTEGER) AS th, TRY_CAST(r.a->>'task' AS INTEGER) AS task
    FROM rec r JOIN lock_keys k ON k.run = r.run AND k.id = r.obj
    WHERE k.mutex IS NOT false
), held_rows AS (
    SELECT d.run, d.id, k.lk, TRY_CAST(h->>'site' AS INTEGER) AS site
    FROM (SELECT run, id, unnest(CAST(coalesce(held, '[]') AS JSON[])) AS h FROM summary_deps) d
    JOIN lock_keys k ON k.run = d.run AND k.id = TRY_CAST(d.h->>'obj' AS INTEGER)
    WHERE k.mutex IS NOT false
), cand AS (
    SELECT n.run, {actor} AS actor, n.lk, n.site,
           coalesce(list_sort(list_distinct(list(h.lk) FILTER (WHERE h.lk IS NOT NULL AND h.lk <> n.lk))), []) AS held,
           coalesce(list_sort(list_distinct(list({{'lk': h.lk, 'site': h.site}})
                    FILTER (WHERE h.lk IS NOT NULL AND h.lk <> n.lk))), []) AS held_at,
           any_value(n.n) AS n, any_value(n.first_ts) AS first_ts, any_value(n.last_ts) AS last_ts,
           any_value(n.th) AS th, any_value(n.task) AS task, n.id
    FROM named n LEFT JOIN held_rows h ON h.run = n.run AND h.id = n.id
    WHERE n.th IS NOT NULL
    GROUP BY n.run, n.id, n.lk, n.site, n.th, n.task
)
SELECT (SELECT coalesce(max(dep), 0) FROM deps) + row_number() OVER (ORDER BY c.run, c.id, c.actor)::INTEGER,
       c.run, c.actor, c.lk, c.site, c.held, c.held_at, c.n, c.first_ts, c.last_ts,
       -1, 4611686018427387904, c.th, c.task, 0
FROM cand c
WHERE len(c.held) > 0
  AND NOT EXISTS (SELECT 1 FROM deps d WHERE d.run = c.run AND d.actor = c.actor AND d.lk = c.lk
                  AND d.site IS NOT DISTINCT FROM c.site AND d.held = c.held);
