-- One row per file: where its lines start in `raw`, and its header (`paths.src` is
-- the name DuckDB read it by; `run` may be renamed: two programs with one run id).
CREATE OR REPLACE TABLE files AS
WITH spans AS (
    SELECT file_id, min(rowid) AS first_row, count(*) AS lines FROM raw GROUP BY file_id
), headers AS (
    SELECT filename AS path, arg_min(rowid, rowid) AS header_row FROM defs WHERE k = 'header' GROUP BY filename
)
SELECT p.file_id, p.path, p.src, s.first_row, coalesce(s.lines, 0) AS lines,
       h.format, h.version, coalesce(p.run, h.run) AS run, coalesce(h.part, 0) AS part
FROM paths p
LEFT JOIN spans s USING (file_id)
LEFT JOIN headers hh ON hh.path = p.src
LEFT JOIN defs h ON h.rowid = hh.header_row
ORDER BY p.file_id;
