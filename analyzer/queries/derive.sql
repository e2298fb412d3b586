-- Derived tables the rules share. {lock_key} is the SQL expression that names a
-- lock's identity (instance or creation site); {actor} names the actor of an event.
ALTER TABLE sites ADD COLUMN IF NOT EXISTS path VARCHAR;
UPDATE sites SET path = CASE
    WHEN r.cwd IS NOT NULL AND r.cwd <> '' AND starts_with(sites.file, rtrim(r.cwd, '/') || '/')
    THEN substr(sites.file, length(rtrim(r.cwd, '/')) + 2) ELSE sites.file END
FROM runs r WHERE r.run = sites.run;
ALTER TABLE sites ADD COLUMN IF NOT EXISTS site VARCHAR;
UPDATE sites SET site = path || ':' || line;

-- Lock identity: `lk` is the analysis key (one per instance, or one per creation
-- site with --group-by site).
CREATE OR REPLACE TABLE lock_keys AS
WITH k AS (
    SELECT l.run, l.id, l.type, l.name, l.reentrant, l.mutex, s.site AS created_at,
           s.path AS created_path, s.line AS created_line,
           {lock_key} AS key
    FROM locks l LEFT JOIN sites s ON s.run = l.run AND s.id = l.site
)
SELECT k.*, dense_rank() OVER (ORDER BY key)::INTEGER AS lk FROM k;

CREATE OR REPLACE TABLE lock_classes AS
SELECT lk, any_value(key) AS key,
       CASE WHEN count(DISTINCT coalesce(name, '')) = 1 THEN any_value(name) END AS name,
       string_agg(DISTINCT type, '|' ORDER BY type) AS type,
       bool_or(reentrant) AS reentrant, bool_and(mutex) AS mutex,
       any_value(created_at) AS created_at, any_value(created_path) AS created_path,
       any_value(created_line) AS created_line, count(*) AS instances
FROM lock_keys GROUP BY lk ORDER BY lk;

-- Which actor did each event: the task if any, else the thread (or the segment
-- the thread was in, with --actors segment). Actor ids share the run's id space.
CREATE OR REPLACE TABLE lock_events AS
SELECT e.seq, e.run, e.ts, e.th, e.task, {actor} AS actor, e.obj, e.op, e.site,
       k.lk, k.reentrant, k.mutex
FROM {actor_source} e JOIN lock_keys k ON k.run = e.run AND k.id = e.obj
WHERE e.op IN ('wait', 'acquire', 'release', 'timeout', 'cancel', 'try-fail');

-- Holds: outermost acquire to the matching release, per (lock instance, actor).
-- For a reentrant lock the nesting depth decides; otherwise the k-th acquire
-- pairs with the k-th release of the same actor.
CREATE OR REPLACE TABLE holds AS
WITH d AS (
    SELECT *, sum(CASE WHEN op = 'acquire' THEN 1 ELSE -1 END) OVER w AS depth
    FROM lock_events WHERE op IN ('acquire', 'release')
    WINDOW w AS (PARTITION BY run, obj, actor ORDER BY seq ROWS UNBOUNDED PRECEDING)
), m AS (
    SELECT *, op = 'acquire' AND (NOT reentrant OR depth = 1) AS is_open,
           op = 'release' AND (NOT reentrant OR depth = 0) AND depth >= 0 AS is_close
    FROM d
), k AS (
    SELECT *, sum(is_open::INTEGER) OVER w AS ko, sum(is_close::INTEGER) OVER w AS kc
    FROM m WHERE is_open OR is_close
    WINDOW w AS (PARTITION BY run, obj, actor ORDER BY seq ROWS UNBOUNDED PRECEDING)
)
SELECT o.run, o.obj, o.lk, o.mutex, o.actor, o.th, o.task, o.seq, o.ts, o.site,
       c.seq AS end_seq, c.ts AS end_ts, c.ts - o.ts AS hold_ns
FROM (SELECT * FROM k WHERE is_open) o
LEFT JOIN (SELECT run, obj, actor, kc, seq, ts FROM k WHERE is_close) c
       ON c.run = o.run AND c.obj = o.obj AND c.actor = o.actor AND c.kc = o.ko;

-- Waits: a `wait` and what ended it (the actor's next acquire/timeout/cancel on that lock).
CREATE OR REPLACE TABLE waits AS
WITH w AS (
    SELECT *, lead(op) OVER x AS end_op, lead(seq) OVER x AS end_seq, lead(ts) OVER x AS end_ts
    FROM lock_events WHERE op IN ('wait', 'acquire', 'timeout', 'cancel')
    WINDOW x AS (PARTITION BY run, obj, actor ORDER BY seq)
)
SELECT run, obj, lk, mutex, actor, th, task, seq, ts, site,
       CASE WHEN end_op = 'wait' THEN NULL ELSE end_op END AS end_op,
       CASE WHEN end_op = 'wait' THEN NULL ELSE end_seq END AS end_seq,
       CASE WHEN end_op = 'wait' THEN NULL ELSE end_ts END AS end_ts,
       CASE WHEN end_op = 'wait' THEN NULL ELSE end_ts - ts END AS wait_ns
FROM w WHERE op = 'wait';
