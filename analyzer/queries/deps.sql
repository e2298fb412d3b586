-- Lock dependencies in the iGoodlock sense: (actor, lock requested, set of locks
-- held, site), deduplicated. A request is an outermost acquire of a mutex, or a
-- wait for one that never got it (timed out, cancelled, or still waiting at the end).
--
-- "Which locks did the actor hold at this request" is computed without a band
-- join (a per-actor band join is quadratic in one actor's events; DuckDB's
-- IEJoin also degrades on it). Number each actor's requests 1, 2, 3, ... in
-- order; the requests made while a hold was open are then a contiguous range
-- (after the hold's own acquire, before its release), found with one running
-- count. Expanding each hold to its range and equi-joining on the request number
-- is linear in the output: the total size of all held sets.
CREATE OR REPLACE TABLE actor_ix AS
SELECT run, actor, row_number() OVER (ORDER BY run, actor)::INTEGER AS ax
FROM (SELECT DISTINCT run, actor FROM lock_events);

-- rid = (ax << 40) + rq_no: unique, no second sort needed.
CREATE OR REPLACE TEMP TABLE requests AS
SELECT q.*, a.ax, row_number() OVER (PARTITION BY a.ax ORDER BY q.seq)::BIGINT AS rq_no,
       (a.ax::BIGINT << 40) + row_number() OVER (PARTITION BY a.ax ORDER BY q.seq) AS rid
FROM (
    SELECT run, actor, th, task, obj, lk, site, seq, ts, 'acquire' AS outcome FROM holds WHERE mutex
    UNION ALL
    SELECT run, actor, th, task, obj, lk, site, seq, ts, coalesce(end_op::VARCHAR, 'pending') AS outcome
    FROM waits WHERE mutex AND end_op IS DISTINCT FROM 'acquire'
) q JOIN actor_ix a USING (run, actor);

-- For each mutex hold: the range [i0, i1] of its actor's request numbers made while it was held.
CREATE OR REPLACE TEMP TABLE held_spans AS
WITH closes AS (
    SELECT a.ax, h.end_seq AS seq FROM holds h JOIN actor_ix a USING (run, actor)
    WHERE h.mutex AND h.end_seq IS NOT NULL
), marks AS (
    SELECT ax, seq, 1 AS is_req FROM requests
    UNION ALL
    SELECT ax, seq, 0 AS is_req FROM closes
), counted AS (
    SELECT ax, seq, is_req, sum(is_req) OVER (PARTITION BY ax ORDER BY seq ROWS UNBOUNDED PRECEDING) AS before
    FROM marks
), totals AS (
    SELECT ax, count(*) AS n FROM requests GROUP BY ax
)
SELECT a.ax, h.lk, h.obj, h.site, o.rq_no + 1 AS i0, coalesce(c.before, t.n)::BIGINT AS i1
FROM holds h
JOIN actor_ix a USING (run, actor)
JOIN requests o ON o.ax = a.ax AND o.seq = h.seq
LEFT JOIN counted c ON c.ax = a.ax AND c.seq = h.end_seq AND c.is_req = 0
JOIN totals t ON t.ax = a.ax
WHERE h.mutex;

CREATE OR REPLACE TEMP TABLE request_held AS
WITH pairs AS (
    SELECT ax, lk, obj, site, unnest(range(i0, i1 + 1)) AS rq_no FROM held_spans WHERE i1 >= i0
)
-- holding the requested instance itself is recursion (self-deadlock rule), and
-- with --group-by site a nested lock of the same class is not an order edge
SELECT r.rid, list_sort(list_distinct(list(p.lk))) AS held,
       list_sort(list_distinct(list({{'lk': p.lk, 'site': p.site}}))) AS held_at
FROM pairs p JOIN requests r ON r.ax = p.ax AND r.rq_no = p.rq_no
WHERE p.obj <> r.obj AND p.lk <> r.lk
GROUP BY r.rid;

CREATE OR REPLACE TABLE deps AS
SELECT row_number() OVER (ORDER BY min(r.seq))::INTEGER AS dep,
       r.run, r.actor, r.lk, r.site, h.held, h.held_at,
       count(*) AS n, min(r.ts) AS first_ts, max(r.ts) AS last_ts,
       min(r.seq) AS first_seq, max(r.seq) AS last_seq,
       arg_min(r.th, r.seq) AS th, arg_min(r.task, r.seq) AS task,
       count(*) FILTER (WHERE r.outcome <> 'acquire') AS failed
FROM requests r JOIN request_held h USING (rid)
GROUP BY r.run, r.actor, r.lk, r.site, h.held, h.held_at;
