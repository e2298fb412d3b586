"""Named SQL queries, one file per query under this package (`name.sql`).

A file may hold several statements separated by `;` at the end of a line.
`{placeholders}` are always filled with `str.format` (write `{{` for a brace) for things SQL parameters cannot
carry (table function arguments); values are quoted by the caller.
"""
from __future__ import annotations

from functools import cache
from importlib import resources

import duckdb


@cache
def text(name: str) -> str:
    """The SQL text of the query `name`."""
    return resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")


def statements(name: str, **fmt: object) -> list[str]:
    sql = text(name).format(**fmt)
    parts = [p.strip() for p in sql.split(";\n")]
    return [p for p in parts if p and not all(ln.strip().startswith("--") or not ln.strip() for ln in p.splitlines())]


def run(con: duckdb.DuckDBPyConnection, name: str, params: dict | None = None, **fmt: object) -> None:
    """Execute every statement of query `name`."""
    for stmt in statements(name, **fmt):
        con.execute(stmt, params) if params and "$" in stmt else con.execute(stmt)


def fetch(con: duckdb.DuckDBPyConnection, name: str, params: dict | None = None, **fmt: object) -> list[tuple]:
    """Run query `name` (its last statement must be a SELECT) and return its rows."""
    stmts = statements(name, **fmt)
    for stmt in stmts[:-1]:
        con.execute(stmt)
    cur = con.execute(stmts[-1], params) if params else con.execute(stmts[-1])
    return cur.fetchall()


def sql_string(value: str) -> str:
    """`value` as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"
