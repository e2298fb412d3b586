-- Acquires of mutual-exclusion locks that gave up (timeout or cancel), per lock key and
-- requesting site. Semaphores used as signals or pools are waits, not lock acquires.
-- Waits already reported as part of a (self-)deadlock (`reported_waits`) are left out.
SELECT w.lk, w.run, w.site, count(*) FILTER (WHERE end_op = 'timeout') AS timeouts,
       count(*) FILTER (WHERE end_op = 'cancel') AS cancels, max(w.wait_ns) AS max_wait_ns,
       min(w.ts) AS first_ts, max(w.ts) AS last_ts, arg_min(w.actor, w.ts) AS actor,
       list(DISTINCT w.actor) AS actors,
       arg_min(w.seq, w.ts) AS first_seq,
       list(w.seq ORDER BY w.ts)[1:50] AS seqs  -- for linking (analyzer/fold.py)
FROM waits w
WHERE w.end_op IN ('timeout', 'cancel') AND w.mutex
  AND (w.run::VARCHAR, w.seq) NOT IN (SELECT run, seq FROM reported_waits)
GROUP BY w.lk, w.run, w.site
ORDER BY first_ts
