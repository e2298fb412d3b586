-- Wait-for edges: each wait for a mutex, with the actor that held the lock when
-- the wait began (ASOF join: the latest hold of that lock instance that started
-- before the wait, if it was still open). Linear: one sort per side, and only
-- the holds of locks that were waited for are sorted.
SELECT w.run, w.actor, w.obj, w.lk, w.seq, w.ts, w.site, w.end_op, w.end_seq, w.end_ts,
       h.actor AS holder, h.seq AS hold_seq, h.ts AS hold_ts, h.site AS hold_site,
       h.end_seq AS hold_end_seq, h.end_ts AS hold_end_ts
FROM waits w
ASOF JOIN (SELECT * FROM holds SEMI JOIN (SELECT DISTINCT run, obj FROM waits WHERE mutex) c USING (run, obj)) h
     ON h.run = w.run AND h.obj = w.obj AND h.seq <= w.seq
WHERE w.mutex AND (h.end_seq IS NULL OR h.end_seq > w.seq)
ORDER BY w.run, w.seq
