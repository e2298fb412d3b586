-- Pass 1, once per file ({file_id}, {path}): every line of the file, one row each
-- (compression, such as .jsonl.gz, is detected from the file name),
-- with the columns of events. The table's rowid is the file order, from which
-- line numbers are derived. Lines that are not a JSON object become an
-- all-NULL row (ignore_errors), so they are counted and located.
INSERT INTO raw
SELECT {file_id}::SMALLINT AS file_id, * FROM read_json(
    {path},
    format = 'newline_delimited',
    ignore_errors = true,
    maximum_object_size = {max_line},
    columns = {{
        'k': 'VARCHAR', 'ts': 'BIGINT', 'th': 'INTEGER', 'task': 'INTEGER', 'obj': 'INTEGER',
        'op': 'VARCHAR', 'site': 'INTEGER', 'outcome': 'VARCHAR', 'sig': 'VARCHAR',
        'timeout': 'DOUBLE', 'n': 'INTEGER', 'id': 'INTEGER', 'count': 'BIGINT'
    }}
)
