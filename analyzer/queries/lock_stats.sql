-- Per-lock statistics in the lock_stat tradition, one row per lock key (lk).
WITH h AS (
    SELECT lk, count(*) AS acquisitions,
           count(*) FILTER (WHERE end_seq IS NULL) AS open_holds,
           min(hold_ns) AS hold_min_ns, avg(hold_ns) AS hold_avg_ns,
           quantile_cont(hold_ns, [0.5, 0.95, 0.99]) AS q,
           max(hold_ns) AS hold_max_ns, sum(hold_ns) AS hold_total_ns
    FROM holds GROUP BY lk
), wt AS (
    -- a wait that never ended lasted (at least) until the run was last seen alive
    SELECT w.*, coalesce(w.wait_ns, CASE WHEN w.end_seq IS NULL THEN r.last_ts - w.ts END) AS waited_ns
    FROM waits w LEFT JOIN runs r ON r.run = w.run
), w AS (
    SELECT lk, count(*) AS contentions,
           count(*) FILTER (WHERE end_op = 'timeout') AS timeouts,
           count(*) FILTER (WHERE end_op = 'cancel') AS cancels,
           coalesce(sum(waited_ns), 0) AS wait_total_ns, coalesce(max(waited_ns), 0) AS wait_max_ns,
           coalesce(avg(waited_ns), 0) AS wait_avg_ns
    FROM wt GROUP BY lk
), tf AS (
    SELECT lk, count(*) AS try_fails FROM lock_events WHERE op = 'try-fail' GROUP BY lk
), ws AS (
    SELECT lk, list({{'site': site, 'count': n, 'wait_total_ns': t}} ORDER BY t DESC, n DESC, site)[1:5] AS top_wait_sites
    FROM (SELECT w.lk, s.site, count(*) AS n, coalesce(sum(w.waited_ns), 0) AS t
          FROM wt w LEFT JOIN sites s ON s.run = w.run AND s.id = w.site GROUP BY ALL)
    GROUP BY lk
), hs AS (
    SELECT lk, list({{'site': site, 'count': n, 'hold_total_ns': t}} ORDER BY t DESC, n DESC, site)[1:5] AS top_hold_sites
    FROM (SELECT h.lk, s.site, count(*) AS n, coalesce(sum(h.hold_ns), 0) AS t
          FROM holds h LEFT JOIN sites s ON s.run = h.run AND s.id = h.site GROUP BY ALL)
    GROUP BY lk
)
SELECT c.lk, c.key AS id, c.name, c.type, c.created_at, c.reentrant, c.instances,
       c.expr, c.lib AS library, c.made_by,
       coalesce(h.acquisitions, 0) AS acquisitions, coalesce(w.contentions, 0) AS contentions,
       coalesce(w.timeouts, 0) AS timeouts, coalesce(w.cancels, 0) AS cancels,
       coalesce(tf.try_fails, 0) AS try_fails,
       coalesce(w.wait_total_ns, 0)::BIGINT AS wait_total_ns, coalesce(w.wait_max_ns, 0)::BIGINT AS wait_max_ns,
       coalesce(w.wait_avg_ns, 0)::BIGINT AS wait_avg_ns,
       h.hold_min_ns, h.hold_avg_ns::BIGINT AS hold_avg_ns, h.q[1]::BIGINT AS hold_p50_ns,
       h.q[2]::BIGINT AS hold_p95_ns, h.q[3]::BIGINT AS hold_p99_ns, h.hold_max_ns,
       coalesce(h.hold_total_ns, 0)::BIGINT AS hold_total_ns, coalesce(h.open_holds, 0) AS open_holds,
       coalesce(ws.top_wait_sites, []) AS top_wait_sites, coalesce(hs.top_hold_sites, []) AS top_hold_sites
FROM lock_classes c
LEFT JOIN h USING (lk) LEFT JOIN w USING (lk) LEFT JOIN tf USING (lk)
LEFT JOIN ws USING (lk) LEFT JOIN hs USING (lk)
ORDER BY contentions DESC, wait_total_ns DESC, hold_total_ns DESC, lk
