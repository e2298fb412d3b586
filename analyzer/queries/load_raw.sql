-- Every line of every trace file, one row each, in file order (the table's rowid
-- is the file order, from which line numbers are derived). Lines that are not a
-- JSON object become an all-NULL row (ignore_errors), so they can be counted.
CREATE OR REPLACE TABLE raw AS
SELECT * FROM read_json(
    {files},
    format = 'newline_delimited',
    compression = 'auto',
    ignore_errors = true,
    filename = true,
    maximum_object_size = 16777216,
    columns = {{
        'k': 'VARCHAR', 'ts': 'BIGINT', 'th': 'INTEGER', 'task': 'INTEGER', 'obj': 'INTEGER',
        'op': 'VARCHAR', 'site': 'INTEGER', 'outcome': 'VARCHAR', 'sig': 'VARCHAR',
        'timeout': 'DOUBLE', 'n': 'INTEGER',
        'id': 'INTEGER', 'type': 'VARCHAR', 'name': 'VARCHAR', 'reentrant': 'BOOLEAN',
        'value': 'BIGINT', 'owner': 'INTEGER', 'lock': 'INTEGER', 'role': 'VARCHAR',
        'parent': 'INTEGER', 'ident': 'BIGINT', 'native_id': 'BIGINT', 'daemon': 'BOOLEAN',
        'loop': 'BIGINT', 'kind': 'VARCHAR',
        'file': 'VARCHAR', 'line': 'INTEGER', 'func': 'VARCHAR', 'stack': 'JSON',
        'format': 'VARCHAR', 'version': 'VARCHAR', 'run': 'VARCHAR', 'part': 'INTEGER',
        'pid': 'BIGINT', 'ppid': 'BIGINT', 'host': 'VARCHAR', 'runtime': 'VARCHAR',
        'python': 'VARCHAR', 'argv': 'JSON', 'cwd': 'VARCHAR', 'clock': 'VARCHAR',
        'mono_ns': 'BIGINT', 'wall_ns': 'BIGINT', 'parent_run': 'VARCHAR', 'settings': 'JSON',
        'count': 'BIGINT', 'reason': 'VARCHAR'
    }}
);
-- One row per file: where its lines start in `raw`, and its header.
CREATE OR REPLACE TABLE files AS
WITH spans AS (
    SELECT filename AS path, min(rowid) AS first_row, count(*) AS lines
    FROM raw GROUP BY filename
), headers AS (
    SELECT filename AS path, arg_min(rowid, rowid) AS header_row
    FROM raw WHERE k = 'header' GROUP BY filename
)
SELECT row_number() OVER (ORDER BY s.first_row)::SMALLINT AS file_id,
       s.path, s.first_row, s.lines,
       h.format, h.version, h.run, coalesce(h.part, 0) AS part,
       (hh.header_row - s.first_row + 1)::INTEGER AS header_line
FROM spans s
LEFT JOIN headers hh ON hh.path = s.path
LEFT JOIN raw h ON h.rowid = hh.header_row
ORDER BY s.first_row;
