-- wait-cycle: a thread/task waits on a resource (event, condition, queue side,
-- thread, task, future) while holding lock L, and an actor that signals that
-- resource takes L before it signals. Actors here are physical: the task if any,
-- else the thread. Every step is a window pass, an ASOF join or an equi-join on a
-- bounded key: nothing here is quadratic in events.

-- Each wait-begin with the wait-end that closed it (same actor, same resource).
CREATE OR REPLACE TABLE sync_waits AS
WITH w AS (
    SELECT seq, run, ts, th, task, coalesce(task, th) AS actor, obj, op, site, timeout,
           lead(op) OVER x AS next_op, lead(seq) OVER x AS next_seq, lead(ts) OVER x AS next_ts,
           lead(outcome) OVER x AS next_outcome
    FROM events WHERE op IN ('wait-begin', 'wait-end')
    WINDOW x AS (PARTITION BY run, coalesce(task, th), obj ORDER BY seq)
)
SELECT run, actor, th, task, obj, seq, ts, site, timeout,
       CASE WHEN next_op = 'wait-end' THEN next_seq END AS end_seq,
       CASE WHEN next_op = 'wait-end' THEN next_ts END AS end_ts,
       CASE WHEN next_op = 'wait-end' THEN next_outcome::VARCHAR END AS outcome
FROM w WHERE op = 'wait-begin';

-- A wait-begin without its wait-end after which its thread (for a wait in a task:
-- that task) did something else (other than beginning more waits, as one `any`
-- wait does) ended unrecorded, by an exception: outcome `error`, at that event;
-- one that a gap of lost events follows ended there, `lost`. ASOF joins of the
-- few open waits with the events of their own threads.
CREATE OR REPLACE TEMP TABLE sync_open_ends AS
WITH open AS (SELECT run, seq, th, task FROM sync_waits WHERE end_seq IS NULL), later AS (
    SELECT run, th, task, seq, ts, false AS gap FROM events
    WHERE op <> 'wait-begin' AND (run, th) IN (SELECT run, th FROM open)
), by_thread AS (
    SELECT o.run, o.seq, l.seq AS end_seq, l.ts AS end_ts
    FROM (SELECT * FROM open WHERE task IS NULL) o
    ASOF JOIN later l ON l.run = o.run AND l.th = o.th AND l.seq > o.seq
), by_task AS (
    SELECT o.run, o.seq, l.seq AS end_seq, l.ts AS end_ts
    FROM (SELECT * FROM open WHERE task IS NOT NULL) o
    ASOF JOIN (SELECT * FROM later WHERE task IS NOT NULL) l ON l.run = o.run AND l.task = o.task AND l.seq > o.seq
), by_gap AS (
    SELECT o.run, o.seq, g.seq AS end_seq, g.ts AS end_ts
    FROM open o ASOF JOIN gaps g ON g.run = o.run AND g.th = o.th AND g.seq > o.seq
), ends AS (
    SELECT run, seq, end_seq, end_ts, false AS lost FROM by_thread
    UNION ALL SELECT run, seq, end_seq, end_ts, false FROM by_task
    UNION ALL SELECT run, seq, end_seq, end_ts, true FROM by_gap
)
SELECT run, seq, arg_min(end_seq, end_seq) AS end_seq, arg_min(end_ts, end_seq) AS end_ts,
       arg_min(lost, end_seq) AS lost
FROM ends GROUP BY run, seq;

UPDATE sync_waits SET end_seq = o.end_seq, end_ts = o.end_ts, outcome = CASE WHEN o.lost THEN 'lost' ELSE 'error' END
FROM sync_open_ends o WHERE o.run = sync_waits.run AND o.seq = sync_waits.seq;

-- A task is awaited by its parent when the parent did nothing from the child's
-- creation until the child ended (asyncio.wait_for runs its awaitable in such a
-- child; so do `await create_task(...)`, gather and TaskGroup): the parent is
-- blocked on the child, so the locks it holds count as held by the child's waits.
CREATE OR REPLACE TEMP TABLE awaited_by AS
WITH life AS (
    SELECT t.run, t.id AS task, t.parent, t.ts AS born_ts, e.end_ts
    FROM tasks t
    LEFT JOIN (SELECT run, obj, min(ts) AS end_ts FROM events
               WHERE op = 'end' AND task = obj GROUP BY ALL) e ON e.run = t.run AND e.obj = t.id
    WHERE t.parent IS NOT NULL AND EXISTS (SELECT 1 FROM sync_waits s WHERE s.run = t.run)
)
SELECT l.run, l.task, l.parent
FROM life l
ASOF LEFT JOIN (SELECT run, task, ts FROM events WHERE task IS NOT NULL) p
    ON p.run = l.run AND p.task = l.parent AND p.ts > l.born_ts
WHERE p.ts IS NULL OR (l.end_ts IS NOT NULL AND p.ts > l.end_ts);

-- Who is blocked by each wait: the waiter, and the chain of parents awaiting it.
CREATE OR REPLACE TEMP TABLE wait_probes AS
WITH RECURSIVE chain(run, wseq, holder, depth) AS (
    SELECT run, seq, actor, 0 FROM sync_waits
    UNION ALL
    SELECT c.run, c.wseq, a.parent, c.depth + 1
    FROM chain c JOIN awaited_by a ON a.run = c.run AND a.task = c.holder
    WHERE c.depth < 8
)
SELECT run, holder AS actor, wseq, depth,
       row_number() OVER (PARTITION BY run, holder ORDER BY wseq)::BIGINT AS p_no
FROM chain;

-- Locks that belong to library internals (a queue's mutex, an Event's condition):
-- never held across a wait by user code. A Condition's own lock is not internal
-- (user code holds it with `with cond:`), unless the condition is itself internal.
CREATE OR REPLACE TEMP TABLE internal_locks AS
SELECT l.run, l.id FROM locks l
WHERE l.owner IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM resources r WHERE r.run = l.run AND r.id = l.owner AND r.owner IS NULL
    AND r.type IN ('threading.Condition', 'asyncio.Condition'));

-- The mutexes each probe's actor held when the wait began. Number each actor's
-- probes 1, 2, 3, ...; the probes made while a hold was open are a contiguous
-- range (found with two ASOF joins), expanded and equi-joined on the number.
CREATE OR REPLACE TEMP TABLE wait_held AS
WITH hl AS (
    -- physical actor (whatever --actors says): waits are matched by task/thread
    SELECT h.run, coalesce(h.task, h.th) AS actor, h.obj, h.lk, h.seq, h.ts, h.site,
           coalesce(h.end_seq, 9000000000000000000) AS end_seq,
           coalesce(r.task, r.th) AS end_actor  -- who released it (any actor: per-lock pairing)
    FROM holds h LEFT JOIN events r ON r.seq = h.end_seq
    WHERE h.mutex AND (h.run, coalesce(h.task, h.th)) IN (SELECT run, actor FROM wait_probes)
      AND (h.run, h.obj) NOT IN (SELECT run, id FROM internal_locks)
), ranged AS (
    SELECT hl.*, coalesce(a.p_no, 0) + 1 AS i0, coalesce(b.p_no, 0) AS i1
    FROM hl
    ASOF LEFT JOIN wait_probes a ON a.run = hl.run AND a.actor = hl.actor AND a.wseq < hl.seq
    ASOF LEFT JOIN wait_probes b ON b.run = hl.run AND b.actor = hl.actor AND b.wseq < hl.end_seq
), expanded AS (
    SELECT run, actor, obj, lk, seq, ts, site, end_actor, unnest(range(i0, i1 + 1)) AS p_no
    FROM ranged WHERE i1 >= i0
)
SELECT w.run, w.seq AS wseq, w.actor AS waiter, w.th, w.task, w.obj AS res, w.ts AS wts, w.site AS wsite,
       w.end_seq AS wend_seq, w.end_ts AS wend_ts, w.outcome, p.actor AS holder, p.depth,
       x.obj AS lobj, x.lk, x.seq AS hold_seq, x.ts AS hold_ts, x.site AS hold_site,
       x.end_actor AS hold_end_actor
FROM expanded x
JOIN wait_probes p ON p.run = x.run AND p.actor = x.actor AND p.p_no = x.p_no
JOIN sync_waits w ON w.run = p.run AND w.seq = p.wseq
LEFT JOIN resources r ON r.run = w.run AND r.id = w.obj
WHERE x.obj IS DISTINCT FROM r.lock;

-- Signals on the resources waited on with a lock held: `signal` events, and the
-- `end` of a thread/task (which ends every wait for it). A thread/task waited on
-- that never ended gets a pending signal at the end of the trace. `prev_seq`: the
-- same actor's previous signal of the same resource.
CREATE OR REPLACE TEMP TABLE wc_signals AS
WITH interest AS (SELECT DISTINCT run, res FROM wait_held), sig AS (
    SELECT e.run, e.seq, e.ts, coalesce(e.task, e.th) AS actor, e.obj AS res, e.site,
           coalesce(e.sig, e.op) AS sig, false AS stuck
    FROM events e
    WHERE (e.op = 'signal' OR (e.op = 'end' AND e.obj = coalesce(e.task, e.th)))
      AND (e.run, e.obj) IN (SELECT run, res FROM interest)
    UNION ALL
    SELECT i.run, 9000000000000000000, NULL, i.res, i.res, NULL, 'pending', false
    FROM interest i
    WHERE ((i.run, i.res) IN (SELECT run, id FROM threads) OR (i.run, i.res) IN (SELECT run, id FROM tasks))
      AND (i.run, i.res) NOT IN (SELECT run, obj FROM events WHERE op = 'end')
), stuck AS (
    -- A signaller blocked for good on a lock (a wait that never ended) would signal
    -- again once it had the lock: its next signal is pending, at its last signal's
    -- site, so the lock it waits for is "taken before it signals". Only waits that
    -- never ended either are matched with it (`stuck`).
    SELECT s.run, 8999999999999999999 AS seq, NULL::BIGINT AS ts, s.actor, s.res,
           arg_max(s.site, s.seq) AS site, arg_max(s.sig, s.seq) AS sig, true AS stuck
    FROM sig s
    WHERE s.sig <> 'pending'
      AND (s.run, s.actor) IN (SELECT run, coalesce(task, th) FROM waits WHERE end_op IS NULL)
    GROUP BY s.run, s.actor, s.res
), all_sig AS (
    SELECT * FROM sig UNION ALL SELECT * FROM stuck
)
SELECT *, lag(seq) OVER (PARTITION BY run, actor, res ORDER BY seq) AS prev_seq FROM all_sig;

-- For each signal and each lock held by waits on its resource: the signaller's
-- latest attempt to take L (a `wait` or an `acquire`) before it (ASOF join), if
-- that came after its previous signal of the same resource ("it takes L before it
-- signals"). `att_live`: until when that attempt went for L -- an acquire at its
-- own event, a wait until it ended (never: for good). A wait that began while
-- another actor held L still wants L from whoever takes it next: the waiter
-- that barged in ahead of it (the lock is not fair) is in its way as much.
CREATE OR REPLACE TEMP TABLE wc_signal_needs AS
WITH pairs AS (SELECT DISTINCT run, res, lobj FROM wait_held), att AS (
    SELECT e.run, e.seq, e.ts, coalesce(e.task, e.th) AS actor, e.obj AS lobj, e.site,
           CASE WHEN e.op = 'wait' THEN coalesce(w.end_seq, 9000000000000000000) ELSE e.seq END AS live
    FROM lock_events e
    LEFT JOIN waits w ON e.op = 'wait' AND w.run = e.run AND w.seq = e.seq
    WHERE e.op IN ('wait', 'acquire') AND (e.run, e.obj) IN (SELECT run, lobj FROM pairs)
), sl AS (
    SELECT s.*, p.lobj FROM wc_signals s JOIN pairs p ON p.run = s.run AND p.res = s.res
), marked AS (
    SELECT sl.*, a.seq AS att_seq, a.ts AS att_ts, a.site AS att_site, a.live AS att_live
    FROM sl ASOF JOIN att a ON a.run = sl.run AND a.actor = sl.actor AND a.lobj = sl.lobj AND a.seq < sl.seq
)
SELECT run, res, lobj, actor, att_site, site AS sig_site, sig, stuck,
       count(*) AS n, min(seq) AS sig_seq, min(ts) AS sig_ts, min(att_seq) AS att_seq, min(att_ts) AS att_ts,
       max(att_seq) AS last_att_seq, max(att_live) AS last_att_live
FROM marked
WHERE att_seq > coalesce(prev_seq, 0)
GROUP BY ALL;

-- Signalling code paths per resource and lock (one representative signaller):
-- what waits that ended normally are joined with, so the join is waits x code
-- paths, not waits x signalling actors.
CREATE OR REPLACE TEMP TABLE wc_paths AS
SELECT run, res, lobj, att_site, sig_site, sig, arg_min(actor, sig_seq) AS actor, sum(n) AS n,
       min(sig_ts) AS sig_ts, min(att_ts) AS att_ts, max(last_att_seq) AS last_att_seq,
       max(last_att_live) AS last_att_live
FROM wc_signal_needs WHERE NOT stuck GROUP BY ALL;

-- The cycles: a wait with L held, and a signaller of its resource that takes L
-- (at least once after the waiter took L). For a wait that gave up or never
-- ended, each signaller is checked: `blocked` when that signaller was waiting
-- for L at the end of the wait (or its wait for L gave up as well). One row per
-- wait, held lock and signalling path; `pos` orders them blocked first, then by
-- run and wait.
CREATE OR REPLACE TEMP TABLE wc_rows AS
SELECT *, row_number() OVER (ORDER BY NOT blocked, run, wseq, sig_ts, signaller, att_site, sig_site) AS pos
FROM (
SELECT h.run, h.wseq, h.waiter, h.holder, h.depth, h.res, h.wts, h.wsite, h.wend_seq, h.wend_ts,
       h.outcome, h.lobj, h.lk, h.hold_seq, h.hold_ts, h.hold_site,
       s.actor AS signaller, s.att_site, s.att_ts, s.sig_site, s.sig, s.sig_ts, s.n AS signals,
       false AS blocked, NULL::BIGINT AS blocked_since, NULL::BIGINT AS blocked_seq
FROM wait_held h
JOIN wc_paths s ON s.run = h.run AND s.res = h.res AND s.lobj = h.lobj
     AND s.actor <> h.waiter AND s.actor <> h.holder AND s.last_att_live > h.hold_seq
     -- ... and did not end that hold itself (the awaited task releasing it inside
     -- asyncio Condition.wait): then the hold never stood in the signaller's way
     AND s.actor IS DISTINCT FROM h.hold_end_actor
WHERE h.outcome IN ('ok', 'lost')  -- (a wait whose end was lost: not known to have blocked)
UNION ALL
SELECT h.run, h.wseq, h.waiter, h.holder, h.depth, h.res, h.wts, h.wsite, h.wend_seq, h.wend_ts,
       h.outcome, h.lobj, h.lk, h.hold_seq, h.hold_ts, h.hold_site,
       s.actor AS signaller, s.att_site, s.att_ts, s.sig_site, s.sig, s.sig_ts, s.n AS signals,
       bw.seq IS NOT NULL
         AND (bw.end_seq IS NULL OR bw.end_seq > coalesce(h.wend_seq, 9000000000000000000)
              -- the signaller's wait gave up too (a cancellation that reached both)
              OR (bw.end_op IN ('timeout', 'cancel') AND bw.end_seq > h.wseq))
         AS blocked,
       bw.ts AS blocked_since, bw.seq AS blocked_seq
FROM wait_held h
JOIN wc_signal_needs s ON s.run = h.run AND s.res = h.res AND s.lobj = h.lobj
     AND s.actor <> h.waiter AND s.actor <> h.holder AND (NOT s.stuck OR h.wend_seq IS NULL)
     -- the signaller went for L after the waiter took it, or was still waiting
     -- for it then: an attempt over before may be ordered before the waiter's
     -- hold (it signalled the waiter to go ahead, say), and that is no cycle
     AND s.last_att_live > h.hold_seq AND s.actor IS DISTINCT FROM h.hold_end_actor
ASOF LEFT JOIN (SELECT run, coalesce(task, th) AS actor, obj, seq, ts, end_seq, end_op FROM waits) bw
     ON bw.run = h.run AND bw.actor = s.actor AND bw.obj = h.lobj
     AND bw.seq <= coalesce(h.wend_seq, 9000000000000000000)
WHERE h.outcome IS NULL OR h.outcome NOT IN ('ok', 'lost')
);

-- One row per finding (code path): held lock, resource (its creation site, else
-- its type) and the four sites (lock taken, wait, signaller's acquire, signal).
-- `shown` is the occurrence the finding shows (a blocked one if any); the
-- waiters and signallers are listed in that order.
CREATE OR REPLACE TEMP TABLE wc_keyed AS
SELECT w.*,
       coalesce(c.created_at, c.type || ':' || coalesce(c.name, '')) AS lock_identity,
       CASE WHEN {by_instance} THEN w.lk END AS lock_instance,
       CASE WHEN r.id IS NOT NULL THEN coalesce(rs.site, r.type)
            WHEN t.id IS NOT NULL THEN 'task' WHEN g.id IS NOT NULL THEN 'segment' ELSE 'thread' END AS res_key,
       s1.site AS hold_at, s2.site AS wait_at, s3.site AS att_at, s4.site AS sig_at
FROM wc_rows w
JOIN lock_classes c ON c.lk = w.lk
LEFT JOIN resources r ON r.run = w.run AND r.id = w.res
LEFT JOIN sites rs ON rs.run = r.run AND rs.id = r.site
LEFT JOIN tasks t ON t.run = w.run AND t.id = w.res
LEFT JOIN segments g ON g.run = w.run AND g.id = w.res
LEFT JOIN sites s1 ON s1.run = w.run AND s1.id = w.hold_site
LEFT JOIN sites s2 ON s2.run = w.run AND s2.id = w.wsite
LEFT JOIN sites s3 ON s3.run = w.run AND s3.id = w.att_site
LEFT JOIN sites s4 ON s4.run = w.run AND s4.id = w.sig_site;

WITH k AS (
    SELECT *, dense_rank() OVER (ORDER BY lock_identity, lock_instance, res_key, hold_at, wait_at, att_at, sig_at) AS gid
    FROM wc_keyed
), by_signaller AS (
    SELECT gid, run, signaller, min(pos) AS first_pos, arg_max(signals, pos) AS signals
    FROM k GROUP BY ALL
), signallers AS (
    SELECT gid, sum(signals)::BIGINT AS signal_count,
           list({{'run': run, 'actor': signaller}} ORDER BY first_pos) AS signallers
    FROM by_signaller GROUP BY gid
), waiters AS (
    SELECT gid, list({{'run': run, 'actor': holder}} ORDER BY first_pos) AS waiters
    FROM (SELECT gid, run, holder, min(pos) AS first_pos FROM k GROUP BY ALL) GROUP BY gid
), g AS (
    SELECT gid, min(pos) AS first_pos, count(DISTINCT (run, wseq)) AS waits,
           arg_min(k, pos) AS shown,
           -- the holds of the held lock, the waits and the signallers' blocked lock waits (analyzer/fold.py)
           list({{'run': run, 'lobj': lobj, 'hold_seq': hold_seq, 'wseq': wseq, 'bseq': blocked_seq}}
                ORDER BY pos)[1:50] AS about
    FROM k GROUP BY gid
), span AS (
    SELECT k.gid, min(k.wts) AS first_ts, max(k.wts) AS last_ts
    FROM k JOIN g ON g.gid = k.gid AND k.run = g.shown.run GROUP BY k.gid
)
SELECT g.shown, g.waits, g.about, s.signal_count, s.signallers, w.waiters, span.first_ts, span.last_ts
FROM g JOIN signallers s USING (gid) JOIN waiters w USING (gid) JOIN span USING (gid)
ORDER BY g.first_pos
