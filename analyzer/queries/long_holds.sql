-- Holds longer than $threshold ns, per lock key: how many, the worst five, and the
-- longest hundred's keys (analyzer/fold.py).
SELECT h.lk, count(*) AS over, max(h.hold_ns) AS max_hold_ns,
       min(h.ts) AS first_ts, max(h.ts) AS last_ts, arg_min(h.run, h.ts) AS run,
       list({{'hold_ns': h.hold_ns, 'run': h.run, 'site': h.site, 'actor': h.actor, 'ts': h.ts}}
            ORDER BY h.hold_ns DESC)[1:5] AS worst,
       list({{'run': h.run, 'obj': h.obj, 'seq': h.seq}} ORDER BY h.hold_ns DESC)[1:100] AS holds  -- for linking
FROM holds h
WHERE h.hold_ns > $threshold AND NOT h.start_unknown AND NOT h.end_unknown  -- not measured across lost events
GROUP BY h.lk
ORDER BY max_hold_ns DESC
