-- Wait-for edges: each wait for a mutex, with the actor that held the lock when
-- the wait began (ASOF join: the latest hold of that lock instance that started
-- before the wait, if it was still open). Linear: one sort per side. The ASOF
-- join sorts only the holds' keys (run, lock instance, seq); the few matched
-- holds are then looked up by `seq` (an acquire opens at most one hold).
WITH matched AS (
    SELECT w.*, h.seq AS hold_seq
    FROM (SELECT * FROM waits WHERE mutex) w
    ASOF JOIN (SELECT run, obj, seq FROM holds SEMI JOIN (SELECT DISTINCT run, obj FROM waits WHERE mutex) c
               USING (run, obj)) h
         ON h.run = w.run AND h.obj = w.obj AND h.seq <= w.seq
)
SELECT m.run, m.actor, m.obj, m.lk, m.seq, m.ts, m.site, m.end_op, m.end_seq, m.end_ts,
       h.actor AS holder, h.seq AS hold_seq, h.ts AS hold_ts, h.site AS hold_site,
       h.end_seq AS hold_end_seq, h.end_ts AS hold_end_ts, h.start_unknown AS hold_start_unknown
FROM matched m JOIN holds h ON h.seq = m.hold_seq
WHERE h.end_seq IS NULL OR h.end_seq > m.seq
ORDER BY m.run, m.seq
