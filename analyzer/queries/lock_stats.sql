-- Per-lock statistics in the lock_stat tradition, one row per lock key (lk).
-- Runs recorded in summary mode count ended holds and waits in `hist` records
-- (lock_hists: log2 buckets) instead of writing each one: there, only the holds
-- and waits still open at the end come from `holds`/`waits`, the rest from the
-- histograms, and percentiles are bucket upper bounds.
WITH summary_runs AS (
    SELECT run FROM runs WHERE settings->>'mode' = 'summary'
), hist AS (
    SELECT k.lk, x.what, TRY_CAST(x.d->>'n' AS BIGINT) AS n, TRY_CAST(x.d->>'sum_ns' AS BIGINT) AS sum_ns,
           TRY_CAST(x.d->>'max_ns' AS BIGINT) AS max_ns, x.d->'buckets' AS buckets
    FROM (SELECT run, obj, 'hold' AS what, hold AS d FROM lock_hists WHERE hold IS NOT NULL
          UNION ALL SELECT run, obj, 'wait', wait FROM lock_hists WHERE wait IS NOT NULL) x
    JOIN lock_keys k ON k.run = x.run AND k.id = x.obj
    WHERE x.run IN (SELECT run FROM summary_runs)
), hist_buckets AS (
    SELECT lk, what, TRY_CAST(p->>0 AS INTEGER) AS b, sum(TRY_CAST(p->>1 AS BIGINT)) AS c
    FROM (SELECT lk, what, unnest(CAST(buckets AS JSON[])) AS p FROM hist) GROUP BY ALL
), hist_cum AS (
    SELECT *, sum(c) OVER (PARTITION BY lk, what ORDER BY b) AS cum, sum(c) OVER (PARTITION BY lk, what) AS total
    FROM hist_buckets
), hg AS (
    SELECT h.lk, sum(n) FILTER (WHERE what = 'hold') AS hold_n, sum(sum_ns) FILTER (WHERE what = 'hold') AS hold_sum,
           max(max_ns) FILTER (WHERE what = 'hold') AS hold_max,
           sum(n) FILTER (WHERE what = 'wait') AS wait_n, sum(sum_ns) FILTER (WHERE what = 'wait') AS wait_sum,
           max(max_ns) FILTER (WHERE what = 'wait') AS wait_max
    FROM hist h GROUP BY h.lk
), hq AS (
    SELECT lk, (1::BIGINT << min(b) FILTER (WHERE what = 'hold'))::BIGINT AS hold_min,
           [(2::BIGINT << min(b) FILTER (WHERE what = 'hold' AND cum >= 0.5 * total))::DOUBLE,
            (2::BIGINT << min(b) FILTER (WHERE what = 'hold' AND cum >= 0.95 * total))::DOUBLE,
            (2::BIGINT << min(b) FILTER (WHERE what = 'hold' AND cum >= 0.99 * total))::DOUBLE] AS q
    FROM hist_cum GROUP BY lk
), h0 AS (
    SELECT lk, count(*) AS acquisitions,
           count(*) FILTER (WHERE end_seq IS NULL) AS open_holds,
           min(hold_ns) AS hold_min_ns, count(hold_ns) AS timed,
           quantile_cont(hold_ns, [0.5, 0.95, 0.99]) AS q,
           max(hold_ns) AS hold_max_ns, sum(hold_ns) AS hold_total_ns
    FROM holds WHERE run NOT IN (SELECT run FROM summary_runs) OR end_seq IS NULL GROUP BY lk
), h AS (
    SELECT lk, coalesce(h0.acquisitions, 0) + coalesce(hg.hold_n, 0) AS acquisitions,
           coalesce(h0.open_holds, 0) AS open_holds,
           CASE WHEN hg.hold_n IS NULL THEN h0.hold_min_ns ELSE least(h0.hold_min_ns, hq.hold_min) END AS hold_min_ns,
           (coalesce(h0.hold_total_ns, 0) + coalesce(hg.hold_sum, 0))
             / nullif(coalesce(h0.timed, 0) + coalesce(hg.hold_n, 0), 0) AS hold_avg_ns,
           CASE WHEN hg.hold_n IS NULL THEN h0.q ELSE hq.q END AS q,
           greatest(h0.hold_max_ns, hg.hold_max) AS hold_max_ns,
           CASE WHEN h0.timed > 0 OR hg.hold_n > 0
                THEN coalesce(h0.hold_total_ns, 0) + coalesce(hg.hold_sum, 0) END AS hold_total_ns
    FROM h0 FULL JOIN hg USING (lk) LEFT JOIN hq USING (lk)
), wt AS (
    -- a wait that never ended lasted (at least) until the run was last seen alive
    SELECT w.*, coalesce(w.wait_ns, CASE WHEN w.end_seq IS NULL THEN r.last_ts - w.ts END) AS waited_ns
    FROM waits w LEFT JOIN runs r ON r.run = w.run
), w0 AS (
    SELECT lk, count(*) AS contentions,
           count(*) FILTER (WHERE end_op = 'timeout') AS timeouts,
           count(*) FILTER (WHERE end_op = 'cancel') AS cancels,
           coalesce(sum(waited_ns), 0) AS wait_total_ns, coalesce(max(waited_ns), 0) AS wait_max_ns
    FROM wt WHERE run NOT IN (SELECT run FROM summary_runs) OR end_seq IS NULL
       OR end_op IN ('timeout', 'cancel') GROUP BY lk
), w AS (
    -- (in summary runs the timeouts and cancellations are both in the histogram and written in full)
    SELECT lk, coalesce(w0.contentions, 0) + coalesce(hg.wait_n, 0)
               - coalesce(s.given_up, 0) AS contentions,
           coalesce(w0.timeouts, 0) AS timeouts, coalesce(w0.cancels, 0) AS cancels,
           coalesce(w0.wait_total_ns, 0) + coalesce(hg.wait_sum, 0) - coalesce(s.given_up_ns, 0) AS wait_total_ns,
           greatest(coalesce(w0.wait_max_ns, 0), coalesce(hg.wait_max, 0)) AS wait_max_ns,
           (coalesce(w0.wait_total_ns, 0) + coalesce(hg.wait_sum, 0) - coalesce(s.given_up_ns, 0))
             / nullif(coalesce(w0.contentions, 0) + coalesce(hg.wait_n, 0) - coalesce(s.given_up, 0), 0) AS wait_avg_ns
    FROM w0 FULL JOIN (SELECT lk, wait_n, wait_sum, wait_max FROM hg WHERE wait_n IS NOT NULL) hg USING (lk)
    LEFT JOIN (SELECT lk, count(*) AS given_up, sum(waited_ns) AS given_up_ns FROM wt
               WHERE run IN (SELECT run FROM summary_runs) AND end_op IN ('timeout', 'cancel') GROUP BY lk) s USING (lk)
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
