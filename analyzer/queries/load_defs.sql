-- Pass 2, all files at once: the definition records (everything but events) with
-- all their columns. Only these few lines are parsed again: the files are read
-- as plain lines (fast, no JSON parsing) and a line that starts like an event
-- written by the recorder (`{{"k":"ev",`) is skipped unparsed; any other line is
-- parsed, and kept unless it is an event after all. Row order is file order.
-- Lines over {max_line} bytes are not read: they are listed in `reject_errors`
-- (store_rejects), and the loader reads a copy of their file where they are marked.
CREATE OR REPLACE TABLE defs AS
WITH candidates AS MATERIALIZED (  -- materialized: the prefix test runs before any parsing
    SELECT filename, line
    FROM read_csv(
        {files},
        columns = {{'line': 'VARCHAR'}},
        header = false, auto_detect = false, delim = chr(1), quote = '', escape = '',
        filename = true, ignore_errors = true, store_rejects = true,
        max_line_size = {max_line}
    )
    WHERE NOT starts_with(line, '{{"k":"ev",')
)
SELECT filename, unnest(j),
       -- JSON types of the fields json_transform would silently coerce (1.5 -> 2, "x" -> NULL)
       CASE WHEN j.k = 'site' THEN json_type(src, '$.line') END AS line_type,
       CASE WHEN j.k = 'header' THEN json_type(src, '$.argv') END AS argv_type
FROM (
    SELECT filename, line AS src, CASE WHEN json_valid(line) THEN json_transform(line, '{{"k": "VARCHAR", "ts": "BIGINT", "th": "INTEGER", "id": "INTEGER", "type": "VARCHAR", "name": "VARCHAR", "reentrant": "BOOLEAN", "value": "BIGINT", "owner": "INTEGER", "lock": "INTEGER", "role": "VARCHAR", "parent": "INTEGER", "ident": "BIGINT", "native_id": "BIGINT", "daemon": "BOOLEAN", "loop": "BIGINT", "kind": "VARCHAR", "site": "INTEGER", "coro": "VARCHAR", "coro_site": "INTEGER", "file": "VARCHAR", "line": "INTEGER", "func": "VARCHAR", "stack": "JSON", "format": "VARCHAR", "version": "VARCHAR", "run": "VARCHAR", "part": "INTEGER", "pid": "BIGINT", "ppid": "BIGINT", "host": "VARCHAR", "runtime": "VARCHAR", "python": "VARCHAR", "argv": "JSON", "cwd": "VARCHAR", "clock": "VARCHAR", "mono_ns": "BIGINT", "wall_ns": "BIGINT", "parent_run": "VARCHAR", "settings": "JSON", "count": "BIGINT", "reason": "VARCHAR", "lost": "BIGINT", "since": "BIGINT", "locks": "JSON", "obj": "INTEGER", "held": "JSON", "n": "BIGINT", "first": "BIGINT", "last": "BIGINT", "actors": "JSON", "hold": "JSON", "wait": "JSON", "expr": "VARCHAR", "lib": "VARCHAR", "user_site": "INTEGER", "cost": "JSON"}}') END AS j
    FROM candidates
)
WHERE j.k IS NOT NULL AND j.k <> 'ev';
