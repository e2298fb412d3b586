-- Wait-for edges: each wait for a mutex, with each actor that held the lock while
-- it waited: the one holding it when the wait began (ASOF join: the latest hold of
-- that lock instance that started before the wait, if it was still open), and any
-- other that took it while the wait went on (locks are not fair: a thread can take
-- a lock ahead of one already waiting for it). `edge_seq`/`edge_ts`: where the edge
-- begins (the wait, or that later hold). Linear: one sort per side; the holds
-- that began during a wait are found by their number on their lock (two ASOF
-- joins give the range, expanded and equi-joined), at most 16 a wait, and only
-- for the waits that did not end with the lock.
WITH mutex_waits AS (
    SELECT * FROM waits WHERE mutex
), at_start AS (
    SELECT w.*, h.seq AS hold_seq
    FROM mutex_waits w
    ASOF JOIN (SELECT run, obj, seq FROM holds SEMI JOIN (SELECT DISTINCT run, obj FROM mutex_waits) c
               USING (run, obj)) h
         ON h.run = w.run AND h.obj = w.obj AND h.seq <= w.seq
), unlucky AS (
    -- Holds taken during a wait count only for waits that did not end with the lock
    -- (never ended, gave up, an error): one that got it took part in no cycle that
    -- stayed, and a waiter barged past over and over (a queue's mutex between two
    -- busy threads) would give an edge per hold. Of those, the last 16 holds during
    -- the wait: the ones a cycle that lasted can go through.
    SELECT * FROM mutex_waits WHERE end_op IS DISTINCT FROM 'acquire'
), lock_holds AS (  -- (numbered only on the locks of such waits: most locks have none)
    SELECT run, obj, seq, row_number() OVER (PARTITION BY run, obj ORDER BY seq) AS h_no
    FROM holds SEMI JOIN (SELECT DISTINCT run, obj FROM unlucky) c USING (run, obj)
), ranged AS (
    SELECT w.run, w.seq AS wseq, w.obj, greatest(a.h_no, b.h_no - 15) AS i0, b.h_no AS i1
    FROM unlucky w
    ASOF JOIN lock_holds a ON a.run = w.run AND a.obj = w.obj AND a.seq > w.seq
    ASOF JOIN lock_holds b ON b.run = w.run AND b.obj = w.obj
         AND b.seq < coalesce(w.end_seq, 9000000000000000000)
    WHERE b.h_no >= a.h_no
), during AS (
    SELECT w.*, h.seq AS hold_seq
    FROM (SELECT run, wseq, obj, unnest(range(i0, i1 + 1)) AS h_no FROM ranged) r
    JOIN lock_holds h ON h.run = r.run AND h.obj = r.obj AND h.h_no = r.h_no
    JOIN unlucky w ON w.run = r.run AND w.seq = r.wseq
), matched AS (
    SELECT * FROM at_start UNION ALL SELECT * FROM during
)
SELECT m.run, m.actor, m.obj, m.lk, m.seq, m.ts, m.site, m.end_op, m.end_seq, m.end_ts,
       h.actor AS holder, h.seq AS hold_seq, h.ts AS hold_ts, h.site AS hold_site,
       h.end_seq AS hold_end_seq, h.end_ts AS hold_end_ts, h.start_unknown AS hold_start_unknown,
       greatest(m.seq, h.seq) AS edge_seq, greatest(m.ts, h.ts) AS edge_ts
FROM matched m JOIN holds h ON h.seq = m.hold_seq
WHERE (h.end_seq IS NULL OR h.end_seq > m.seq)
  AND (h.seq <= m.seq OR h.actor <> m.actor)
ORDER BY m.run, edge_seq, m.seq
