-- Waits on resources (events, conditions, queues, joins, futures) that never
-- ended: a `wait-begin` with no later `wait-end` of the same actor on that object.
WITH w AS (
    SELECT run, coalesce(task, th) AS actor, obj, op, seq, ts, site,
           lead(op) OVER (PARTITION BY run, coalesce(task, th), obj ORDER BY seq) AS next_op
    FROM events WHERE op IN ('wait-begin', 'wait-end')
)
SELECT w.run, w.actor, w.obj, w.seq, w.ts, w.site,
       coalesce(r.name, t.name, k.name) AS res_name,
       coalesce(r.type, CASE WHEN t.id IS NOT NULL THEN 'thread' WHEN k.id IS NOT NULL THEN 'task' END) AS res_type
FROM w
LEFT JOIN resources r ON r.run = w.run AND r.id = w.obj
LEFT JOIN threads t ON t.run = w.run AND t.id = w.obj
LEFT JOIN tasks k ON k.run = w.run AND k.id = w.obj
WHERE w.op = 'wait-begin' AND w.next_op IS NULL
ORDER BY w.run, w.seq
