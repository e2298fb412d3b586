-- Lock dependencies in the iGoodlock sense: (actor, lock requested, set of locks
-- held, site), deduplicated. A request is an outermost acquire of a mutex, or a
-- wait for one that never got it (timed out, cancelled, or still waiting at the end).
--
-- One ordered pass per actor over its requests and the opens and closes of its
-- mutex holds gives, for every request, (a) its number rq_no (increasing) and
-- (b) a signature of the locks held: the sum of a 56-bit hash of (lk, site) over
-- the holds open at that moment (+ at an acquire, - at its release). Requests
-- are grouped by (actor, lock, site, signature) — a hash aggregate on integers —
-- and the held set is computed only for the first request of each group (its
-- representative): the requests made while a hold was open are a contiguous
-- range of rq_no, so a short range is expanded and equi-joined with the
-- representatives, and a long one is mapped to the range of representatives it
-- contains (two ASOF joins), where overlapping ranges of one (lock, site) are
-- merged before they are expanded — a held set is a set, however many holds of
-- one lock overlap (as when a lock is handed off and its holds never close).
-- Cost: O(h log h + P), h = holds, P = Σ over representatives of the (lock,
-- site) pairs held — not the number of requests a hold spans. No band join, no
-- list aggregation per request.
CREATE OR REPLACE TABLE actor_ix AS
SELECT run, actor, row_number() OVER (ORDER BY run, actor)::INTEGER AS ax
FROM (SELECT DISTINCT run, actor FROM holds UNION SELECT DISTINCT run, actor FROM waits);

-- kind 0 = acquire that opened a mutex hold (a request), 1 = that hold's release,
-- 2 = a wait that never got the lock (a request), 3 = a hold opened in a gap. `hold_seq` ties a release to
-- its acquire. Only what the grouping needs is sorted (the actor's run, thread
-- and task are looked up afterwards from the first request of each group).
-- `ax` here is (run, actor) packed into one integer — computed, not joined from
-- actor_ix (three hash joins of every hold fewer); injective for 32-bit ids.
CREATE OR REPLACE TEMP TABLE dep_timeline AS
WITH marks AS (
    SELECT enum_code(h.run)::BIGINT * 4294967296 + (h.actor::BIGINT + 2147483648) AS ax, h.seq,
           -- 3: a hold opened in a gap of lost events (resync): held from there on, but not a request
           (CASE WHEN h.start_unknown THEN 3 ELSE 0 END)::TINYINT AS kind, h.seq AS hold_seq,
           h.lk, h.site, h.ts, (hash(h.lk, coalesce(h.site, -1)) >> 8)::BIGINT AS c
    FROM holds h WHERE h.mutex
    UNION ALL
    SELECT enum_code(h.run)::BIGINT * 4294967296 + (h.actor::BIGINT + 2147483648), h.end_seq, 1::TINYINT, h.seq, NULL, NULL, NULL,
           -(hash(h.lk, coalesce(h.site, -1)) >> 8)::BIGINT
    FROM holds h WHERE h.mutex AND h.end_seq IS NOT NULL
    UNION ALL
    SELECT enum_code(w.run)::BIGINT * 4294967296 + (w.actor::BIGINT + 2147483648), w.seq, 2::TINYINT, NULL, w.lk, w.site, w.ts, 0::BIGINT
    FROM waits w WHERE w.mutex AND w.end_op IS DISTINCT FROM 'acquire'
)
SELECT *, count(*) FILTER (WHERE kind IN (0, 2)) OVER r AS rq_no, sum(c) OVER r - c AS sig
FROM (SELECT * FROM marks ORDER BY ax, seq)
-- streaming running sums over the sorted rows, across actors: request numbers
-- and signatures are offset per actor by a constant, and are only ever compared
-- within one actor
WINDOW r AS (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

-- Requests grouped by (actor, requested lock, site, signature of the held set).
CREATE OR REPLACE TEMP TABLE dep_groups AS
WITH g AS (
    SELECT ax, lk, site, sig, count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts,
           min(seq) AS first_seq, max(seq) AS last_seq, count(*) FILTER (WHERE kind = 2) AS failed,
           arg_min(rq_no, seq) AS rep_rq
    FROM dep_timeline WHERE kind IN (0, 2)
    GROUP BY ax, lk, site, sig
)
SELECT g.*, a.run, a.actor, e.th, e.task
FROM g JOIN (SELECT run, actor, enum_code(actor_ix.run)::BIGINT * 4294967296 + (actor_ix.actor::BIGINT + 2147483648) AS ax FROM actor_ix) a USING (ax)
JOIN events e ON e.seq = g.first_seq;

-- For each mutex hold: the range [i0, i1] of its actor's request numbers made
-- while it was held (to the actor's last request if it was never released).
CREATE OR REPLACE TEMP TABLE held_spans AS
WITH totals AS (SELECT ax, max(rq_no) AS n FROM dep_timeline GROUP BY ax)
SELECT o.ax, o.lk, o.site, o.rq_no + 1 AS i0, coalesce(c.rq_no, t.n) AS i1
FROM (SELECT * FROM dep_timeline WHERE kind IN (0, 3)) o
LEFT JOIN (SELECT hold_seq, rq_no FROM dep_timeline WHERE kind = 1) c USING (hold_seq)
JOIN totals t ON t.ax = o.ax;

-- The representatives numbered in each actor's order (rep_ix).
CREATE OR REPLACE TEMP TABLE dep_reps AS
SELECT ax, rep_rq, row_number() OVER (PARTITION BY ax ORDER BY rep_rq) AS rep_ix FROM dep_groups;

-- (representative request, lock, site held) pairs. A hold spanning fewer than
-- 32 requests is expanded over them and equi-joined with the representatives
-- (at most 32 rows per hold). A longer one becomes the range [j0, j1] of
-- representatives it contains (ASOF joins on the few representatives); the
-- ranges of one (actor, lock, site) are merged where they overlap (each range
-- keeps only what no earlier one covers) and then expanded: one row per
-- (representative, lock, site) held, whatever the number and length of the holds.
CREATE OR REPLACE TEMP TABLE held_pairs AS
WITH short_pairs AS (
    SELECT ax, lk, site, unnest(range(i0, i1 + 1)) AS rep_rq FROM held_spans WHERE i1 >= i0 AND i1 - i0 < 32
), long_spans AS (
    SELECT s.ax, s.lk, s.site, r0.rep_ix AS j0, s.i1
    FROM (SELECT ax, lk, site, i0, i1 FROM held_spans WHERE i1 - i0 >= 32) s
    ASOF JOIN dep_reps r0 ON r0.ax = s.ax AND r0.rep_rq >= s.i0
), rep_ranges AS (
    SELECT s.ax, s.lk, s.site, s.j0, r1.rep_ix AS j1
    FROM long_spans s ASOF JOIN dep_reps r1 ON r1.ax = s.ax AND r1.rep_rq <= s.i1
    WHERE r1.rep_ix >= s.j0
), merged AS (
    SELECT ax, lk, site, greatest(j0, coalesce(covered + 1, j0)) AS j0, j1
    FROM (SELECT *, max(j1) OVER (PARTITION BY ax, lk, site ORDER BY j0, j1
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS covered
          FROM rep_ranges)
    WHERE covered IS NULL OR covered < j1
), long_pairs AS (
    SELECT ax, lk, site, unnest(range(j0, j1 + 1)) AS rep_ix FROM merged
)
SELECT p.ax, p.lk, p.site, p.rep_rq FROM short_pairs p SEMI JOIN dep_reps r ON r.ax = p.ax AND r.rep_rq = p.rep_rq
UNION ALL
SELECT p.ax, p.lk, p.site, r.rep_rq FROM long_pairs p JOIN dep_reps r ON r.ax = p.ax AND r.rep_ix = p.rep_ix;

-- The held set of each group's representative request. Holding the requested
-- lock itself is recursion (self-deadlock rule), and with --group-by site a
-- nested lock of the same class is not an order edge. (The same instance has
-- the same lock key: the requested lock's own holds are left out by `lk`.)
CREATE OR REPLACE TEMP TABLE group_held AS
SELECT g.ax, g.rep_rq, list_sort(list_distinct(list(p.lk))) AS held,
       list_sort(list_distinct(list({{'lk': p.lk, 'site': p.site}}))) AS held_at
FROM held_pairs p JOIN dep_groups g ON g.ax = p.ax AND g.rep_rq = p.rep_rq
WHERE p.lk <> g.lk
GROUP BY g.ax, g.rep_rq;

CREATE OR REPLACE TABLE deps AS
SELECT row_number() OVER (ORDER BY min(g.first_seq))::INTEGER AS dep,
       g.run, g.actor, g.lk, g.site, h.held, h.held_at,
       sum(g.n)::BIGINT AS n, min(g.first_ts) AS first_ts, max(g.last_ts) AS last_ts,
       min(g.first_seq) AS first_seq, max(g.last_seq) AS last_seq,
       arg_min(g.th, g.first_seq) AS th, arg_min(g.task, g.first_seq) AS task,
       sum(g.failed)::BIGINT AS failed
FROM dep_groups g JOIN group_held h ON h.ax = g.ax AND h.rep_rq = g.rep_rq
GROUP BY g.run, g.actor, g.lk, g.site, h.held, h.held_at;

-- Tripwire for the streaming pass of dep_timeline: it relies on ORDER BY output order.
SELECT error('internal error: request ranges out of order (streaming window order not kept)')
FROM held_spans WHERE i1 < i0 - 1 LIMIT 1;

DROP TABLE dep_timeline;
DROP TABLE held_spans;
DROP TABLE dep_reps;
DROP TABLE held_pairs;
