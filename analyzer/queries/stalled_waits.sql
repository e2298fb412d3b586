-- Waits on resources (events, conditions, queues, joins, futures) that never
-- ended: a `wait-begin` with no later `wait-end` of the same actor on that object,
-- after which its thread (for a wait in a task: that task) did nothing else but
-- begin more waits (those of one `any` wait) — if it did, the wait ended
-- unrecorded (an exception) — and lost no events (its end may be among them).
WITH w AS (
    SELECT run, coalesce(task, th) AS actor, th, task, obj, op, seq, ts, site,
           lead(op) OVER (PARTITION BY run, coalesce(task, th), obj ORDER BY seq) AS next_op
    FROM events WHERE op IN ('wait-begin', 'wait-end')
), open AS (
    SELECT * FROM w WHERE op = 'wait-begin' AND next_op IS NULL
), later AS (
    SELECT run, th, task, seq, false AS gap FROM events
    WHERE op <> 'wait-begin' AND (run, th) IN (SELECT run, th FROM open)
    UNION ALL
    SELECT run, th, NULL, seq, true FROM gaps WHERE (run, th) IN (SELECT run, th FROM open)
)
SELECT w.run, w.actor, w.obj, w.seq, w.ts, w.site,
       coalesce(r.name, t.name, k.name) AS res_name,
       coalesce(r.type, CASE WHEN t.id IS NOT NULL THEN 'thread' WHEN k.id IS NOT NULL THEN 'task' END) AS res_type
FROM open w
LEFT JOIN resources r ON r.run = w.run AND r.id = w.obj
LEFT JOIN threads t ON t.run = w.run AND t.id = w.obj
LEFT JOIN tasks k ON k.run = w.run AND k.id = w.obj
WHERE NOT EXISTS (SELECT 1 FROM later l WHERE l.run = w.run AND l.th = w.th AND l.seq > w.seq
                  AND (w.task IS NULL OR l.gap OR l.task = w.task))
ORDER BY w.run, w.seq
