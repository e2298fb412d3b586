-- Split `raw` into the documented tables (docs/database.md). Runs after the
-- format version of every header was checked.
-- Runs as an ENUM: compact, fast to sort and join, and still reads as text.
DROP TYPE IF EXISTS run_t;
CREATE TYPE run_t AS ENUM (SELECT DISTINCT run FROM files WHERE run IS NOT NULL ORDER BY run);

CREATE OR REPLACE TEMP VIEW rows AS
SELECT r.*, f.run::run_t AS file_run, f.part AS file_part,
       (r.rowid - f.first_row + 1)::INTEGER AS line_no,
       (r.rowid - f.first_row + 1) = f.lines AS is_last_line,
       CASE
         WHEN r.k IS NULL THEN 'not a JSON object'
         WHEN r.k = '~too-long' THEN 'line longer than 16 MiB (not read)'  -- marked by inputs.cut_long_lines
         WHEN r.k = 'ev' AND (r.ts IS NULL OR r.th IS NULL OR r.obj IS NULL OR r.op IS NULL) THEN 'event without ts, th, obj or op'
         WHEN r.k IN ('site', 'lock', 'resource', 'thread', 'task', 'segment', 'name') AND r.id IS NULL THEN r.k || ' record without id'
         WHEN r.k IN ('dropped', 'end') AND r.ts IS NULL THEN r.k || ' record without ts'
         -- monotonic clocks count up from boot: outside [0, 2^62) is corruption, and
         -- durations (differences of timestamps) must not overflow
         WHEN r.ts < 0 OR r.ts >= 4611686018427387904 THEN 'ts out of range'
         WHEN r.k = 'dropped' AND (r.count < 0 OR r.count >= 281474976710656) THEN 'dropped count out of range'
       END AS problem
FROM raw r JOIN files f USING (file_id);

DROP TYPE IF EXISTS op_t;
CREATE TYPE op_t AS ENUM ('wait', 'acquire', 'release', 'timeout', 'cancel', 'try-fail', 'wait-begin',
    'wait-end', 'signal', 'start', 'end', 'join', 'segment-begin', 'segment-end', 'suspend', 'resume',
    'pass',
    -- not a recorded operation: where a thread lost events (a `dropped` or `resync` record), see `gaps`
    'gap');

-- The few lines that are not valid events (definitions, dropped/end records,
-- corrupt lines, unknown records), found in one scan; the checks below read
-- these instead of scanning every line again.
-- (An event's `problem` is a missing ts, th, obj or op: tested on the columns,
-- so the scan filters before the join that computes `problem` for every row.)
CREATE OR REPLACE TEMP TABLE other_rows AS
SELECT * FROM rows
WHERE k IS DISTINCT FROM 'ev' OR ts IS NULL OR th IS NULL OR obj IS NULL OR op IS NULL
   OR ts < 0 OR ts >= 4611686018427387904 OR TRY_CAST(op AS op_t) IS NULL;

-- Definition records with the file they came from; `ord` is their order in the file.
-- `problem` excludes the record; `flaw` keeps it without the bad field (argv, line).
-- Problems the first pass sees too (no id, ts out of range) are reported from there.
CREATE OR REPLACE TEMP VIEW def_rows AS
SELECT d.*, d.rowid AS ord, f.file_id, f.run::run_t AS file_run, f.part AS file_part,
       CASE
         WHEN d.k = 'header' AND (d.run IS NULL OR d.version IS NULL) THEN 'header without run or version'
         WHEN d.k IN ('site', 'lock', 'resource', 'thread', 'task', 'segment', 'name') AND d.id IS NULL THEN d.k || ' record without id'
         WHEN d.k = 'site' AND d.file IS NULL THEN 'site without file'
         WHEN d.ts < 0 OR d.ts >= 4611686018427387904 THEN 'ts out of range'
       END AS problem,
       CASE
         WHEN d.k = 'site' AND (d.line IS NULL OR d.line < 0 OR d.line_type NOT IN ('UBIGINT', 'BIGINT'))
           THEN 'site without an integer line (kept without it)'
         WHEN d.k = 'header' AND d.argv_type IS NOT NULL AND d.argv_type <> 'ARRAY'
           THEN 'header argv is not a list (ignored)'
       END AS flaw
FROM defs d JOIN files f ON f.src = d.filename;

-- Problems found only in the second pass, located by matching the first pass's
-- row of the same kind, id and ts in the same file (it has the line numbers).
CREATE OR REPLACE TEMP TABLE def_problems AS
SELECT file_id, ord, k, id, ts, coalesce(problem, flaw) AS reason FROM def_rows
WHERE flaw IS NOT NULL AND problem IS NULL
   OR problem IS NOT NULL AND NOT (k IN ('site', 'lock', 'resource', 'thread', 'task', 'segment', 'name') AND id IS NULL)
      AND problem <> 'ts out of range';

CREATE OR REPLACE TABLE corrupt_lines AS
SELECT * FROM (
    SELECT file_id, line_no AS line,
           CASE WHEN is_last_line AND k IS NULL THEN 'truncated or unparsable last line' ELSE problem END AS reason
    FROM other_rows WHERE problem IS NOT NULL
    UNION ALL
    -- a definition whose required field is missing or mistyped
    SELECT p.file_id, min(r.line_no), any_value(p.reason)
    FROM def_problems p
    LEFT JOIN (SELECT file_id, k, id, ts, line_no FROM rows WHERE k IN (SELECT k FROM def_problems)) r
      ON r.file_id = p.file_id AND r.k = p.k AND r.id IS NOT DISTINCT FROM p.id AND r.ts IS NOT DISTINCT FROM p.ts
    GROUP BY p.file_id, p.ord
) c JOIN (SELECT file_id, path FROM files) USING (file_id)
ORDER BY file_id, line;

CREATE OR REPLACE TABLE unknown_records AS
SELECT file_id, line_no AS line, k FROM other_rows
WHERE problem IS NULL AND k NOT IN ('header', 'site', 'lock', 'resource', 'thread', 'task',
                                    'segment', 'name', 'ev', 'dropped', 'resync', 'beat', 'end',
                                    'dep', 'hist');

CREATE OR REPLACE TEMP VIEW good AS
SELECT * FROM def_rows WHERE problem IS NULL AND file_run IS NOT NULL;

CREATE OR REPLACE TABLE sites AS
SELECT file_run AS run, id, arg_min(file, file_id) AS file,
       arg_min(CASE WHEN flaw IS NULL THEN line END, file_id) AS line,
       arg_min(func, file_id) AS func, arg_min(stack, file_id) AS stack
FROM good WHERE k = 'site' GROUP BY ALL;

CREATE OR REPLACE TABLE names AS
SELECT file_run AS run, id, arg_max(name, (file_part, ord)) AS name
FROM good WHERE k = 'name' GROUP BY ALL;

CREATE OR REPLACE TABLE locks AS
SELECT d.*, coalesce(n.name, d.given_name) AS name,
       -- a semaphore is mutual exclusion only with exactly one permit (0 = a signal, >1 = a pool)
       NOT (d.type ILIKE '%semaphore%' AND coalesce(d.value, 1) <> 1) AS mutex
FROM (
    SELECT file_run AS run, id, arg_min(type, file_id) AS type, arg_min(name, file_id) AS given_name,
           coalesce(bool_or(reentrant), false) AS reentrant, arg_min(site, file_id) AS site,
           min(ts) AS ts, arg_min(th, file_id) AS th, arg_min(value, file_id) AS value,
           arg_min(owner, file_id) AS owner, arg_min(expr, file_id) AS expr,
           arg_min(lib, file_id) AS lib, arg_min(user_site, file_id) AS user_site
    FROM good WHERE k = 'lock' GROUP BY ALL
) d LEFT JOIN names n USING (run, id);
ALTER TABLE locks DROP COLUMN given_name;

CREATE OR REPLACE TABLE resources AS
SELECT d.*, coalesce(n.name, d.given_name) AS name FROM (
    SELECT file_run AS run, id, arg_min(type, file_id) AS type, arg_min(name, file_id) AS given_name,
           arg_min(site, file_id) AS site, min(ts) AS ts, arg_min(th, file_id) AS th,
           arg_min(lock, file_id) AS lock, arg_min(owner, file_id) AS owner, arg_min(role, file_id) AS role,
           arg_min(expr, file_id) AS expr, arg_min(lib, file_id) AS lib, arg_min(user_site, file_id) AS user_site
    FROM good WHERE k = 'resource' GROUP BY ALL
) d LEFT JOIN names n USING (run, id);
ALTER TABLE resources DROP COLUMN given_name;

CREATE OR REPLACE TABLE threads AS
SELECT d.*, coalesce(n.name, d.given_name) AS name FROM (
    SELECT file_run AS run, id, arg_min(name, file_id) AS given_name, arg_min(parent, file_id) AS parent,
           arg_min(ident, file_id) AS ident, arg_min(native_id, file_id) AS native_id,
           arg_min(daemon, file_id) AS daemon, min(ts) AS ts
    FROM good WHERE k = 'thread' GROUP BY ALL
) d LEFT JOIN names n USING (run, id);
ALTER TABLE threads DROP COLUMN given_name;

-- A task the program did not name (Python's default `Task-<n>`) is named after its
-- coroutine: `place_order()`, `Shop.place_order()` (a function's `<locals>` prefix
-- dropped), numbered `#1`, `#2` by creation when several tasks of a run share it.
CREATE OR REPLACE TABLE tasks AS
WITH t AS (
    SELECT d.*, coalesce(n.name, d.given_name) AS trace_name,
           CASE WHEN d.coro IS NOT NULL AND d.coro <> ''
                     AND regexp_full_match(coalesce(n.name, d.given_name), 'Task-[0-9]+')
                THEN regexp_replace(d.coro, '^.*<locals>\.', '') || '()' END AS coro_name
    FROM (
        SELECT file_run AS run, id, arg_min(name, file_id) AS given_name, arg_min(parent, file_id) AS parent,
               arg_min(th, file_id) AS th, arg_min(loop, file_id) AS loop, arg_min(site, file_id) AS site,
               min(ts) AS ts, arg_min(coro, file_id) AS coro, arg_min(coro_site, file_id) AS coro_site
        FROM good WHERE k = 'task' GROUP BY ALL
    ) d LEFT JOIN names n USING (run, id)
)
SELECT * EXCLUDE (given_name, trace_name, coro_name),
       CASE WHEN coro_name IS NULL THEN trace_name
            WHEN count(*) OVER (PARTITION BY run, coro_name) = 1 THEN coro_name
            ELSE coro_name || '#' || row_number() OVER (PARTITION BY run, coro_name ORDER BY ts, id)
       END AS name
FROM t;

CREATE OR REPLACE TABLE segments AS
SELECT d.*, coalesce(n.name, d.given_name) AS name FROM (
    SELECT file_run AS run, id, arg_min(kind, file_id) AS kind, arg_min(name, file_id) AS given_name
    FROM good WHERE k = 'segment' GROUP BY ALL
) d LEFT JOIN names n USING (run, id);
ALTER TABLE segments DROP COLUMN given_name;

CREATE OR REPLACE TABLE dropped AS
SELECT file_run AS run, ts, th, count, file_id, line_no AS line
FROM other_rows WHERE k = 'dropped' AND problem IS NULL AND file_run IS NOT NULL;

CREATE OR REPLACE TABLE ends AS
SELECT file_run AS run, file_part AS part, file_id, ts, reason FROM good WHERE k = 'end';

-- Events in the order they happened: by timestamp, then by file part and line
-- (the writer keeps each thread's records in order, not the global order).
-- `op` and `outcome` are ENUMs (one byte instead of a string per event); an
-- event with an op this version does not know is skipped and counted.
DROP TYPE IF EXISTS outcome_t;
CREATE TYPE outcome_t AS ENUM ('ok', 'timeout', 'cancelled', 'error', 'done', 'failed');

INSERT INTO unknown_records
SELECT file_id, line_no, 'ev op ' || op FROM other_rows
WHERE k = 'ev' AND problem IS NULL AND TRY_CAST(op AS op_t) IS NULL;

-- One sort, into `event_rows`, whose row order then is the event order (this
-- needs preserve_insertion_order, which `connect` sets): `seq` is the row
-- number, read off the rowid by the `events` view, not computed by a window
-- pass (a single-threaded copy of every event).
--
-- Where events were lost go in too, as `gap` rows of the thread that lost them
-- (all threads of the run for a `dropped` record without `th`): a `dropped`
-- record is written right after the last events the writer took from that
-- thread, a `resync` record where the thread's recording resumes, so by
-- (ts, part, line) each sits between the events before and after the loss.
-- `sig` says which record, `n` how many events it counts.
CREATE OR REPLACE TABLE event_rows AS
SELECT run, ts, th, task, obj, op, site, outcome, sig, timeout, n, file_id, line FROM (
    SELECT file_run AS run, ts, th, task, obj, op::op_t AS op, site, TRY_CAST(outcome AS outcome_t) AS outcome,
           sig, timeout, n, file_id, line_no AS line, file_part
    FROM rows WHERE k = 'ev' AND problem IS NULL AND file_run IS NOT NULL AND TRY_CAST(op AS op_t) IS NOT NULL
    UNION ALL
    SELECT o.file_run, o.ts, coalesce(o.th, t.id), NULL, coalesce(o.th, t.id), 'gap'::op_t, NULL, NULL,
           o.k, TRY_CAST(o.count AS INTEGER), NULL, o.file_id, o.line_no, o.file_part
    FROM other_rows o LEFT JOIN threads t ON o.th IS NULL AND t.run = o.file_run
    WHERE o.k IN ('dropped', 'resync') AND o.problem IS NULL AND o.file_run IS NOT NULL
      AND coalesce(o.th, t.id) IS NOT NULL
)
ORDER BY run, ts, file_part, line;

-- `events` are the recorded operations; `gaps` the places where some were lost.
CREATE OR REPLACE VIEW events AS SELECT rowid + 1 AS seq, * FROM event_rows WHERE op <> 'gap';
CREATE OR REPLACE VIEW gaps AS
SELECT rowid + 1 AS seq, run, ts, th, sig AS kind, n AS lost, file_id, line FROM event_rows WHERE op = 'gap';

-- What each `resync` record says: per lock and task, the acquires and releases
-- the thread lost in the gap it closes (`gap_seq`: that gap's row in `gaps`).
CREATE OR REPLACE TABLE resync_locks AS
WITH r AS (
    SELECT file_run AS run, file_id, ts, th, since, unnest(CAST(locks AS JSON[])) AS l
    FROM good WHERE k = 'resync' AND ts IS NOT NULL AND th IS NOT NULL AND locks IS NOT NULL
)
SELECT g.seq AS gap_seq, r.run, r.th, r.ts, r.since,
       TRY_CAST(l->>'obj' AS INTEGER) AS obj, TRY_CAST(l->>'task' AS INTEGER) AS task,
       coalesce(TRY_CAST(l->>'acquired' AS BIGINT), 0) AS acquired,
       coalesce(TRY_CAST(l->>'released' AS BIGINT), 0) AS released
FROM r JOIN gaps g ON g.run = r.run AND g.file_id = r.file_id AND g.th = r.th AND g.ts = r.ts AND g.kind = 'resync'
WHERE TRY_CAST(l->>'obj' AS INTEGER) IS NOT NULL;

-- Summary mode (docs/trace-format.md): each distinct lock dependency with its
-- counts (the last record of an id holds the run's totals so far), and the hold
-- and wait histograms of each lock, one row per record (interval).
CREATE OR REPLACE TABLE summary_deps AS
SELECT file_run AS run, id, arg_max(obj, (file_part, ord)) AS obj, arg_max(site, (file_part, ord)) AS site,
       arg_max(held, (file_part, ord)) AS held, max(n) AS n, min(first) AS first_ts, max(last) AS last_ts,
       arg_max(actors, (file_part, ord)) AS actors
FROM good WHERE k = 'dep' AND id IS NOT NULL AND obj IS NOT NULL AND n IS NOT NULL GROUP BY ALL;

CREATE OR REPLACE TABLE lock_hists AS
SELECT file_run AS run, obj, ts, since, hold, wait
FROM good WHERE k = 'hist' AND obj IS NOT NULL AND ts IS NOT NULL;

CREATE OR REPLACE TEMP MACRO cost_field(c, f) AS
    CASE WHEN json_type(c, '$.' || f) IN ('UBIGINT', 'BIGINT') AND TRY_CAST(json_extract(c, '$.' || f) AS BIGINT) >= 0
         THEN TRY_CAST(json_extract(c, '$.' || f) AS BIGINT) END;

CREATE OR REPLACE TABLE runs AS
WITH h AS (
    SELECT file_run AS run,
           arg_min(pid, file_part) AS pid,
           arg_min(ppid, file_part) AS ppid,
           arg_min(host, file_part) AS host,
           arg_min(runtime, file_part) AS runtime,
           arg_min(python, file_part) AS python,
           arg_min(CASE WHEN flaw IS NULL THEN argv END, file_part) AS argv,
           arg_min(cwd, file_part) AS cwd,
           arg_min(clock, file_part) AS clock,
           arg_min(mono_ns, file_part) AS mono_ns,
           arg_min(wall_ns, file_part) AS wall_ns,
           arg_min(parent_run, file_part) AS parent_run,
           arg_min(settings, file_part) AS settings,
           count(*) AS parts
    FROM good WHERE k = 'header' GROUP BY file_run
), span AS (
    SELECT run, min(first_ts) AS first_ts, max(last_ts) AS last_ts FROM (
        SELECT run, min(ts) AS first_ts, max(ts) AS last_ts FROM events GROUP BY run
        UNION ALL
        SELECT file_run, min(ts), max(ts) FROM other_rows
        WHERE ts IS NOT NULL AND problem IS NULL AND file_run IS NOT NULL GROUP BY file_run
    ) GROUP BY run
), fin AS (
    SELECT run, arg_max(reason, part) AS last_reason FROM ends GROUP BY run
), drops AS (
    SELECT run, least(sum(count), 4611686018427387904) AS dropped FROM dropped GROUP BY run
), cost AS (
    -- the running totals of the latest `beat`/`end` that has them (a field that is
    -- no non-negative integer is NULL)
    SELECT run, until, cost_field(c, 'since') AS since, cost_field(c, 'cpu_ns') AS cpu_ns,
           cost_field(c, 'writer_ns') AS writer_ns, cost_field(c, 'events') AS events,
           cost_field(c, 'bytes') AS bytes
    FROM (SELECT file_run AS run, max(ts) AS until, arg_max(cost, ts) AS c FROM good
          WHERE k IN ('beat', 'end') AND cost IS NOT NULL AND ts IS NOT NULL GROUP BY file_run)
)
SELECT h.*, span.first_ts, span.last_ts, coalesce(span.last_ts - span.first_ts, 0) AS duration_ns,
       coalesce(fin.last_reason IN ('stop', 'exit'), false) AS ended,
       fin.last_reason AS end_reason, coalesce(drops.dropped, 0)::BIGINT AS dropped,
       cost.since AS cost_since, cost.until AS cost_until, cost.cpu_ns AS cost_cpu_ns,
       cost.writer_ns AS cost_writer_ns, cost.events AS cost_events, cost.bytes AS cost_bytes
FROM h LEFT JOIN span USING (run) LEFT JOIN fin USING (run) LEFT JOIN drops USING (run)
LEFT JOIN cost USING (run)
ORDER BY run;

CREATE OR REPLACE TABLE files AS
SELECT f.file_id, f.path, f.run, f.part, f.lines,
       (f.lines - coalesce(c.n, 0))::BIGINT AS records, coalesce(c.n, 0)::BIGINT AS corrupt_lines,
       e.reason AS end_reason
FROM files f
LEFT JOIN (SELECT file_id, count(*) AS n FROM corrupt_lines GROUP BY file_id) c USING (file_id)
LEFT JOIN (SELECT file_id, arg_max(reason, ts) AS reason FROM ends GROUP BY file_id) e USING (file_id)
ORDER BY file_id;
