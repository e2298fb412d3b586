-- Derived tables the rules share. {lock_key} is the SQL expression that names a
-- lock's identity (instance or creation site); {actor} names the actor of an event.
-- The sites' shown `path` and `site` columns are filled before (paths.resolve_sites).

-- Lock identity: `lk` is the analysis key (one per instance, or one per creation
-- site with --group-by site).
CREATE OR REPLACE TABLE lock_keys AS
WITH k AS (
    SELECT l.run, l.id, l.type, l.name, l.reentrant, l.mutex, s.site AS created_at,
           s.path AS created_path, s.line AS created_line,
           l.expr, l.lib, u.site AS made_by, l.ts,
           {lock_key} AS key
    FROM locks l LEFT JOIN sites s ON s.run = l.run AND s.id = l.site
    LEFT JOIN sites u ON u.run = l.run AND u.id = l.user_site
)
SELECT k.*, dense_rank() OVER (ORDER BY key)::INTEGER AS lk FROM k;

CREATE OR REPLACE TABLE lock_classes AS
SELECT lk, any_value(key) AS key,
       CASE WHEN count(DISTINCT coalesce(name, '')) = 1 THEN any_value(name) END AS name,
       string_agg(DISTINCT type, '|' ORDER BY type) AS type,
       bool_or(reentrant) AS reentrant, bool_and(mutex) AS mutex,
       any_value(created_at) AS created_at, any_value(created_path) AS created_path,
       any_value(created_line) AS created_line, count(*) AS instances,
       -- the name from the source (recorder `expr`), the library that made it
       -- (`lib`) and the program's line that drove that (`user_site`)
       CASE WHEN count(DISTINCT coalesce(expr, '')) = 1 THEN any_value(expr) END AS expr,
       CASE WHEN bool_and(lib IS NOT NULL) THEN min(lib) END AS lib,
       CASE WHEN count(DISTINCT coalesce(made_by, '')) = 1 THEN any_value(made_by) END AS made_by,
       min(ts) AS first_ts, min(run) AS first_run, min(id) AS first_id
FROM lock_keys GROUP BY lk ORDER BY lk;

-- Which actor did each event: the task if any, else the thread (or the segment
-- the thread was in, with --actors segment). Actor ids share the run's id space.
-- A view over `events` (no copy of the lock events), except with --actors
-- segment, where {lock_events_kind} is TABLE so the segment pass runs once.
CREATE OR REPLACE {lock_events_kind} lock_events AS
SELECT e.seq, e.run, e.ts, e.th, e.task, {actor} AS actor, e.obj, e.op, e.site,
       k.lk, k.reentrant, k.mutex
FROM {actor_source} e JOIN lock_keys k ON k.run = e.run AND k.id = e.obj
WHERE e.op IN ('wait', 'acquire', 'release', 'timeout', 'cancel', 'try-fail');

-- Each lock operation with its neighbours among the operations of the same
-- actor on the same lock instance, in event order. A partitioned window: DuckDB
-- sorts and evaluates lead/lag in parallel (a sort followed by a streaming
-- lead/lag pass over the sorted rows, the earlier form, ran that pass on one
-- thread and took twice as long). Only the event columns go through it (read
-- from {lock_ops_source}, whose actor is {lock_ops_actor}); the lock's key and
-- kind are joined after, from the small lock_keys (view lock_steps).
CREATE OR REPLACE TEMP TABLE lock_runs AS
SELECT e.seq, e.run, e.ts, e.th, e.task, {lock_ops_actor} AS actor, e.obj, e.op, e.site,
       lead(e.op) OVER w AS next_op, lead(e.seq) OVER w AS next_seq, lead(e.ts) OVER w AS next_ts,
       lag(e.op) OVER w AS prev_op
FROM {lock_ops_source} e WHERE e.op IN ('wait', 'acquire', 'release', 'timeout', 'cancel')
WINDOW w AS (PARTITION BY e.run, e.obj, {lock_ops_actor} ORDER BY e.seq);

CREATE OR REPLACE TEMP VIEW lock_steps AS
SELECT r.*, k.lk, k.reentrant, k.mutex FROM lock_runs r JOIN lock_keys k ON k.run = r.run AND k.id = r.obj;

-- (lock instance, actor) pairs whose acquires and releases do not simply
-- alternate (reentrant locks, a release without an acquire, a semaphore taken
-- twice, a wait for a lock the actor holds): these are paired the general way.
-- Elsewhere every acquire is followed by its release (or by nothing) and every
-- release follows an acquire.
-- `stray_first`: the actor's first operation on the lock is a release (an RLock
-- taken before recording started).
CREATE OR REPLACE TEMP TABLE odd_lock_runs AS
SELECT run, obj, actor, any_value(reentrant) AS reentrant, any_value(mutex) AS mutex,
       bool_or(op = 'release' AND prev_op IS NULL) AS stray_first
FROM lock_steps
WHERE reentrant
   OR (op = 'acquire' AND coalesce(next_op::VARCHAR, 'release') <> 'release')
   OR (op = 'release' AND prev_op IS DISTINCT FROM 'acquire')
GROUP BY run, obj, actor;

-- Lock instances whose holds are paired in Python (analyzer/holds.py), per
-- lock for a mutex, instead of per actor here: a non-reentrant mutex with an odd (lock, actor)
-- pair — a release by another thread, task or loop callback than the acquirer
-- always makes one (hand-off) —, and every lock used by a thread that lost
-- events (a `gap`), whose holds across the gap are cut or resynchronised.
-- When every actor's acquires and releases of a mutex alternate, pairing per
-- actor and per lock agree, so the fast path below stays exact.
CREATE OR REPLACE TEMP TABLE lock_pairing AS
SELECT DISTINCT run, obj FROM odd_lock_runs WHERE NOT reentrant AND mutex
UNION
-- an RLock whose owner's first operation is a release (taken before recording
-- started): the depth count below would stay off by one for the rest of the trace
SELECT DISTINCT run, obj FROM odd_lock_runs WHERE reentrant AND stray_first
UNION
SELECT DISTINCT l.run, l.obj FROM lock_runs l
SEMI JOIN (SELECT DISTINCT run, th FROM gaps) g ON g.run = l.run AND g.th = l.th
UNION
SELECT DISTINCT run, obj FROM resync_locks;

-- Holds: outermost acquire to the matching release, per (lock instance, actor).
-- For a reentrant lock the nesting depth decides; otherwise the k-th acquire
-- pairs with the k-th release of the same actor. Where acquire and release
-- alternate (almost always) that is the acquire's next operation.
-- `end_actor` released it; `start_unknown` / `end_unknown`: the hold was opened
-- / closed in a gap of lost events (only the Python pairing sets them).
CREATE OR REPLACE TABLE holds AS
WITH simple AS (
    SELECT l.run, l.obj, l.lk, l.mutex, l.actor, l.th, l.task, l.seq, l.ts, l.site,
           l.next_seq AS end_seq, l.next_ts AS end_ts, l.next_ts - l.ts AS hold_ns,
           CASE WHEN l.next_seq IS NOT NULL THEN l.actor END AS end_actor
    FROM lock_steps l ANTI JOIN odd_lock_runs o ON o.run = l.run AND o.obj = l.obj AND o.actor = l.actor
    ANTI JOIN lock_pairing p ON p.run = l.run AND p.obj = l.obj
    WHERE l.op = 'acquire'
), d AS (
    SELECT l.*, sum(CASE WHEN l.op = 'acquire' THEN 1 ELSE -1 END) OVER w AS depth
    FROM lock_steps l SEMI JOIN odd_lock_runs o ON o.run = l.run AND o.obj = l.obj AND o.actor = l.actor
    ANTI JOIN lock_pairing p ON p.run = l.run AND p.obj = l.obj
    WHERE l.op IN ('acquire', 'release')
    WINDOW w AS (PARTITION BY l.run, l.obj, l.actor ORDER BY l.seq ROWS UNBOUNDED PRECEDING)
), m AS (
    SELECT *, op = 'acquire' AND (NOT reentrant OR depth = 1) AS is_open,
           op = 'release' AND (NOT reentrant OR depth = 0) AND depth >= 0 AS is_close
    FROM d
), k AS (
    SELECT *, sum(is_open::INTEGER) OVER w AS ko, sum(is_close::INTEGER) OVER w AS kc
    FROM m WHERE is_open OR is_close
    WINDOW w AS (PARTITION BY run, obj, actor ORDER BY seq ROWS UNBOUNDED PRECEDING)
)
SELECT *, false AS start_unknown, false AS end_unknown FROM simple
UNION ALL
SELECT o.run, o.obj, o.lk, o.mutex, o.actor, o.th, o.task, o.seq, o.ts, o.site,
       c.seq AS end_seq, c.ts AS end_ts, c.ts - o.ts AS hold_ns,
       CASE WHEN c.seq IS NOT NULL THEN o.actor END AS end_actor, false, false
FROM (SELECT * FROM k WHERE is_open) o
LEFT JOIN (SELECT run, obj, actor, kc, seq, ts FROM k WHERE is_close) c
       ON c.run = o.run AND c.obj = o.obj AND c.actor = o.actor AND c.kc = o.ko;

-- Waits: a `wait` and what ended it (the actor's next operation on that lock:
-- acquire, timeout or cancel; NULL = still waiting at the end of the trace).
CREATE OR REPLACE TABLE waits AS
SELECT run, obj, lk, mutex, actor, th, task, seq, ts, site,
       CASE WHEN e THEN next_op::VARCHAR END AS end_op, CASE WHEN e THEN next_seq END AS end_seq,
       CASE WHEN e THEN next_ts END AS end_ts, CASE WHEN e THEN next_ts - ts END AS wait_ns
FROM (SELECT *, next_op IN ('acquire', 'timeout', 'cancel') AS e FROM lock_steps WHERE op = 'wait');

-- A wait with no outcome after which its thread (for a wait in a task: that
-- task) did something else did end — unrecorded, by an exception such as the
-- RuntimeError of a re-acquire or the ValueError of a bad timeout: `error`, at
-- that next event. One that a gap of lost events follows ended `lost` there
-- (its outcome was among the lost events). Only waits without an outcome are
-- looked at, against the events of their own threads (ASOF joins).
CREATE OR REPLACE TEMP TABLE open_waits AS
SELECT run, seq, th, task FROM waits WHERE end_op IS NULL;

CREATE OR REPLACE TEMP TABLE open_wait_ends AS
WITH next_event AS (
    SELECT w.run, w.seq, e.seq AS end_seq, e.ts AS end_ts
    FROM (SELECT * FROM open_waits WHERE task IS NULL) w
    ASOF JOIN (SELECT run, th, seq, ts FROM events WHERE (run, th) IN (SELECT run, th FROM open_waits)) e
         ON e.run = w.run AND e.th = w.th AND e.seq > w.seq
    UNION ALL
    SELECT w.run, w.seq, e.seq, e.ts
    FROM (SELECT * FROM open_waits WHERE task IS NOT NULL) w
    ASOF JOIN (SELECT run, task, seq, ts FROM events WHERE (run, task) IN (SELECT run, task FROM open_waits)) e
         ON e.run = w.run AND e.task = w.task AND e.seq > w.seq
), next_gap AS (
    SELECT w.run, w.seq, g.seq AS end_seq, g.ts AS end_ts
    FROM open_waits w ASOF JOIN gaps g ON g.run = w.run AND g.th = w.th AND g.seq > w.seq
)
SELECT w.run, w.seq, coalesce(g.end_seq < e.end_seq, g.end_seq IS NOT NULL) AS lost,
       CASE WHEN coalesce(g.end_seq < e.end_seq, g.end_seq IS NOT NULL) THEN g.end_seq ELSE e.end_seq END AS end_seq,
       CASE WHEN coalesce(g.end_seq < e.end_seq, g.end_seq IS NOT NULL) THEN g.end_ts ELSE e.end_ts END AS end_ts
FROM open_waits w
LEFT JOIN next_event e ON e.run = w.run AND e.seq = w.seq
LEFT JOIN next_gap g ON g.run = w.run AND g.seq = w.seq
WHERE e.end_seq IS NOT NULL OR g.end_seq IS NOT NULL;

UPDATE waits SET end_op = CASE WHEN o.lost THEN 'lost' ELSE 'error' END, end_seq = o.end_seq,
                 end_ts = o.end_ts, wait_ns = o.end_ts - waits.ts
FROM open_wait_ends o WHERE o.run = waits.run AND o.seq = waits.seq;

-- Tripwire: a hold ends after it starts (event order and timestamps agree, and
-- the window above paired each acquire with a later operation); fail loudly if not.
SELECT error('internal error: holds out of order (event order and timestamps disagree)')
FROM holds WHERE end_seq <= seq OR end_ts < ts LIMIT 1;

DROP VIEW lock_steps;
DROP TABLE lock_runs;
DROP TABLE odd_lock_runs;
DROP TABLE open_waits;
DROP TABLE open_wait_ends;
