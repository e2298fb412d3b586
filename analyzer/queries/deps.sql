-- Lock dependencies in the iGoodlock sense: (actor, lock requested, set of locks
-- held, site), deduplicated. A request is an outermost acquire, or a wait that
-- never got the lock (timed out, cancelled, or still waiting at the end).
--
-- "Which locks did the actor hold at this request" is a band join: hold spans
-- [acquire, release) of the same actor containing the request. The actor is
-- folded into the high bits of the key so the join is two pure inequalities,
-- which DuckDB runs as an IEJoin (n log n) instead of an equi-join per actor
-- followed by a filter (quadratic in the events of one actor).
CREATE OR REPLACE TABLE actor_ix AS
SELECT run, actor, row_number() OVER (ORDER BY run, actor)::BIGINT AS ax
FROM (SELECT DISTINCT run, actor FROM lock_events);

CREATE OR REPLACE TEMP TABLE held_spans AS
SELECT h.lk, h.obj, h.site, (a.ax << 40) + h.seq AS k0,
       (a.ax << 40) + coalesce(h.end_seq, (1::BIGINT << 39)) AS k1
FROM holds h JOIN actor_ix a USING (run, actor)
WHERE h.mutex;

CREATE OR REPLACE TEMP TABLE requests AS
SELECT row_number() OVER ()::BIGINT AS rid, q.*, (a.ax << 40) + q.seq AS key
FROM (
    SELECT run, actor, th, task, obj, lk, site, seq, ts, 'acquire' AS outcome FROM holds WHERE mutex
    UNION ALL
    SELECT run, actor, th, task, obj, lk, site, seq, ts, coalesce(end_op, 'pending') AS outcome
    FROM waits WHERE mutex AND end_op IS DISTINCT FROM 'acquire'
) q JOIN actor_ix a USING (run, actor);

-- The band join alone, into a table of its own: with the filters below in the
-- same statement DuckDB pushes them into the join and picks a piecewise merge
-- join, quadratic in the holds of one actor (9 s instead of 0.1 s for 20k holds).
CREATE OR REPLACE TEMP TABLE request_held_all AS
SELECT r.rid, r.obj AS req_obj, r.lk AS req_lk, h.lk, h.obj, h.site
FROM requests r JOIN held_spans h ON r.key > h.k0 AND r.key < h.k1;

-- holding the requested instance itself is recursion (self-deadlock rule), and
-- with --group-by site a nested lock of the same class is not an order edge
CREATE OR REPLACE TEMP TABLE request_held AS
SELECT rid, list_sort(list_distinct(list(lk))) AS held,
       list_sort(list_distinct(list({{'lk': lk, 'site': site}}))) AS held_at
FROM request_held_all WHERE obj <> req_obj AND lk <> req_lk
GROUP BY rid;

DROP TABLE request_held_all;

CREATE OR REPLACE TABLE deps AS
SELECT row_number() OVER (ORDER BY min(r.seq))::INTEGER AS dep,
       r.run, r.actor, r.lk, r.site, h.held, h.held_at,
       count(*) AS n, min(r.ts) AS first_ts, max(r.ts) AS last_ts,
       min(r.seq) AS first_seq, max(r.seq) AS last_seq,
       arg_min(r.th, r.seq) AS th, arg_min(r.task, r.seq) AS task,
       count(*) FILTER (WHERE r.outcome <> 'acquire') AS failed
FROM requests r JOIN request_held h USING (rid)
GROUP BY r.run, r.actor, r.lk, r.site, h.held, h.held_at;
