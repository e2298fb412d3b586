-- held-across-await: a lock held by an asyncio task while the task was suspended
-- (other tasks or loop callbacks ran on its loop thread during the hold; the task's
-- first `suspend` event in the hold, if any, says at which await), with how many waits for the lock overlapped the
-- hold and how many of them were by tasks of the same loop thread (for a
-- threading lock: the loop froze). Window passes and ASOF joins only.

CREATE OR REPLACE TEMP TABLE haa_holds AS
SELECT h.run, h.obj, h.lk, h.actor, h.task, h.th, h.seq, h.ts, h.site, h.end_seq, h.end_ts,
       coalesce(h.end_ts, r.last_ts) - h.ts AS held_ns, h.end_seq IS NULL AS open,
       coalesce(h.end_seq, 9000000000000000000) AS until_seq
FROM holds h JOIN runs r USING (run)
-- a semaphore with more than one permit held across an await is a concurrency
-- limit doing its job, not mutual exclusion
WHERE h.task IS NOT NULL AND h.mutex
-- a hold that another task or a loop callback ended (hand-off, call_soon(lock.release),
-- asyncio's Condition machinery) was given away, not held by this task across its
-- awaits; one that a gap of lost events cut or opened is not known to be either
  AND (h.end_actor IS NULL OR h.end_actor = h.actor) AND NOT h.start_unknown AND NOT h.end_unknown;

-- The events of the threads that run those tasks, numbered per thread and per task.
CREATE OR REPLACE TEMP TABLE haa_loop_events AS
SELECT seq, run, th, task,
       row_number() OVER (PARTITION BY run, th ORDER BY seq) AS th_no,
       row_number() OVER (PARTITION BY run, th, task ORDER BY seq) AS own_no
FROM events WHERE (run, th) IN (SELECT DISTINCT run, th FROM haa_holds);

-- Suspended holds: events by others on the loop thread between acquire and release
-- (= thread events in between minus the task's own): other tasks ran meanwhile.
CREATE OR REPLACE TEMP TABLE haa_suspended AS
WITH th_last AS (
    SELECT run, th, max(th_no) + 1 AS th_end FROM haa_loop_events GROUP BY run, th
), own_last AS (
    SELECT run, th, task, max(own_no) + 1 AS own_end
    FROM haa_loop_events WHERE task IS NOT NULL GROUP BY run, th, task
), last AS (
    SELECT o.*, t.th_end FROM own_last o JOIN th_last t USING (run, th)
)
SELECT h.*,
       (coalesce(b.th_no, l.th_end) - a.th_no) - (coalesce(b.own_no, l.own_end) - a.own_no) AS foreign_events
FROM haa_holds h
JOIN haa_loop_events a ON a.seq = h.seq
LEFT JOIN haa_loop_events b ON b.seq = h.end_seq
JOIN last l ON l.run = h.run AND l.th = h.th AND l.task = h.task
-- (A `suspend` alone says the task yielded, not that anything else ran meanwhile:
-- it gives the await site below, not the finding.)
WHERE (coalesce(b.th_no, l.th_end) - a.th_no) - (coalesce(b.own_no, l.own_end) - a.own_no) > 0;

-- Where the holder was suspended: its first `suspend` event during the hold (the
-- Python recorder writes one, with the site of the await, when a task is suspended
-- while it holds a lock).
CREATE OR REPLACE TEMP TABLE haa_suspend_sites AS
SELECT run, th, task, seq, site FROM events
WHERE op = 'suspend' AND task IS NOT NULL AND (run, th) IN (SELECT DISTINCT run, th FROM haa_suspended);

-- Running counts of waits started and ended per lock (all threads), and per lock
-- and thread for waits by tasks: waits overlapping a hold [a, r] are
-- (starts before r) - (ends up to a).
CREATE OR REPLACE TEMP TABLE haa_wait_marks AS
WITH w AS (SELECT * FROM waits WHERE (run, obj) IN (SELECT run, obj FROM haa_suspended)), m AS (
    SELECT run, obj, th, task IS NOT NULL AS by_task, seq AS pos, 1 AS ds, 0 AS de FROM w
    UNION ALL
    SELECT run, obj, th, task IS NOT NULL, end_seq, 0, 1 FROM w WHERE end_seq IS NOT NULL
)
SELECT run, obj, th, pos,
       sum(ds) OVER a AS starts, sum(de) OVER a AS ends,
       sum(CASE WHEN by_task THEN ds ELSE 0 END) OVER t AS t_starts,
       sum(CASE WHEN by_task THEN de ELSE 0 END) OVER t AS t_ends
FROM m
WINDOW a AS (PARTITION BY run, obj ORDER BY pos ROWS UNBOUNDED PRECEDING),
       t AS (PARTITION BY run, obj, th ORDER BY pos ROWS UNBOUNDED PRECEDING);

CREATE OR REPLACE TEMP TABLE haa_marks_all AS
SELECT run, obj, pos, starts, ends FROM haa_wait_marks;

CREATE OR REPLACE TEMP TABLE haa_marks_th AS
SELECT run, obj, th, pos, t_starts, t_ends FROM haa_wait_marks;

-- Per suspended hold: waits that overlapped it, and those by tasks of its loop thread.
CREATE OR REPLACE TEMP TABLE haa_hold_rows AS
SELECT s.*,
       CASE WHEN ss.seq < s.until_seq THEN ss.site END AS await_site,
       coalesce(r1.starts, 0) - coalesce(a1.ends, 0) AS waiters,
       coalesce(r2.t_starts, 0) - coalesce(a2.t_ends, 0) AS loop_waiters,
       k.type NOT LIKE 'asyncio.%' AS thread_lock
FROM haa_suspended s
JOIN locks k ON k.run = s.run AND k.id = s.obj
ASOF LEFT JOIN haa_suspend_sites ss ON ss.run = s.run AND ss.th = s.th AND ss.task = s.task AND ss.seq > s.seq
ASOF LEFT JOIN haa_marks_all r1 ON r1.run = s.run AND r1.obj = s.obj AND r1.pos < s.until_seq
ASOF LEFT JOIN haa_marks_all a1 ON a1.run = s.run AND a1.obj = s.obj AND a1.pos <= s.seq
ASOF LEFT JOIN haa_marks_th r2 ON r2.run = s.run AND r2.obj = s.obj AND r2.th = s.th AND r2.pos < s.until_seq
ASOF LEFT JOIN haa_marks_th a2 ON a2.run = s.run AND a2.obj = s.obj AND a2.th = s.th AND a2.pos <= s.seq;

-- One row per (run, lock key, acquiring site): the holds, the worst one and whether the loop froze.
SELECT run, lk, site, count(*) AS holds, max(held_ns) AS max_held_ns, sum(held_ns) AS total_held_ns,
       max(waiters) AS max_waiters, sum(waiters) AS total_waiters,
       bool_or(thread_lock AND loop_waiters > 0) AS froze,
       count(*) FILTER (WHERE thread_lock AND loop_waiters > 0) AS freezes,
       bool_or(thread_lock) AS thread_lock, bool_or(open) AS open,
       min(ts) AS first_ts, max(ts) AS last_ts,
       arg_max(seq, (thread_lock AND loop_waiters > 0, waiters, held_ns)) AS worst_seq,
       arg_max(end_seq, (thread_lock AND loop_waiters > 0, waiters, held_ns)) AS worst_end_seq,
       arg_max(obj, (thread_lock AND loop_waiters > 0, waiters, held_ns)) AS worst_obj,
       arg_max(actor, (thread_lock AND loop_waiters > 0, waiters, held_ns)) AS worst_actor,
       arg_max(th, (thread_lock AND loop_waiters > 0, waiters, held_ns)) AS worst_th,
       arg_max(ts, (thread_lock AND loop_waiters > 0, waiters, held_ns)) AS worst_ts,
       arg_max(held_ns, (thread_lock AND loop_waiters > 0, waiters, held_ns)) AS worst_held_ns,
       arg_max(waiters, (thread_lock AND loop_waiters > 0, waiters, held_ns)) AS worst_waiters,
       arg_max(await_site, (thread_lock AND loop_waiters > 0, waiters, held_ns)) AS worst_await_site,
       list(DISTINCT await_site) FILTER (WHERE await_site IS NOT NULL) AS await_sites,
       list(DISTINCT actor) AS actors,
       list({{'obj': obj, 'seq': seq}} ORDER BY held_ns DESC)[1:100] AS held  -- for linking (analyzer/fold.py)
FROM haa_hold_rows
GROUP BY run, lk, site
ORDER BY run, first_ts
