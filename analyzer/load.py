"""Load lockscope trace files into DuckDB tables (see docs/database.md)."""
from __future__ import annotations

import glob
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from . import holds, inputs, paths, queries
from .errors import UnusableInput
from .timing import Lap

SUPPORTED_VERSIONS = {"1"}
TRACE_SUFFIXES = (".jsonl", ".jsonl.gz")


def is_trace_file(path: Path) -> bool:
    return path.name.endswith(TRACE_SUFFIXES)


def discover(paths: list[str | os.PathLike]) -> list[Path]:
    """Trace files named by `paths`: files, directories (searched recursively) or globs.

    Rotated parts (`...Z.1.jsonl`) are ordinary `*.jsonl` files. Order is stable
    (sorted) and duplicates are removed.
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found += [f for f in p.rglob("*") if f.is_file() and is_trace_file(f)]
        elif p.is_file():
            found.append(p)
        else:
            matches = glob.glob(str(raw), recursive=True)
            if not matches:
                raise UnusableInput(f"{raw}: no such file or directory")
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    found += [f for f in mp.rglob("*") if f.is_file() and is_trace_file(f)]
                elif is_trace_file(mp):
                    found.append(mp)
    unique = sorted({f.resolve() for f in found})
    if not unique:
        where = ", ".join(str(p) for p in paths) or "(no paths given)"
        raise UnusableInput(f"no trace files (*.jsonl, *.jsonl.gz) found in {where}")
    return unique


MEMORY_FRACTION = 0.5  # of the memory this process may use (physical, or its cgroup's limit)
TEMP_FRACTION = 0.5  # of the free space where DuckDB spills


def connect(db_path: str | os.PathLike | None = None, memory_limit: str | None = None,
            temp_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection on `db_path` (replaced if it exists), or in memory.

    In memory, DuckDB spills to a private temporary directory (deleted on close,
    and by `remove_spill_dirs` on SIGINT/SIGTERM) when `memory_limit` is reached.
    Defaults: `memory_limit` LOCKSCOPE_MEMORY_LIMIT or half the memory this process
    may use; `temp_limit` (spill size) LOCKSCOPE_TEMP_LIMIT or half the free space.
    """
    memory_limit = memory_limit or os.environ.get("LOCKSCOPE_MEMORY_LIMIT") or default_memory_limit()
    temp_limit = temp_limit or os.environ.get("LOCKSCOPE_TEMP_LIMIT")
    if db_path is not None:
        db = Path(db_path)
        for stale in (db, db.with_name(db.name + ".wal")):
            if stale.exists():
                stale.unlink()
        con = duckdb.connect(str(db))
        spill = str(db) + ".tmp"  # DuckDB's default for a database file
    else:
        con = duckdb.connect()
        spill = tempfile.mkdtemp(prefix="lockscope-")
        _SPILL_DIRS.add(spill)
        weakref.finalize(con, _remove_spill_dir, spill)
        con.execute(f"SET temp_directory = {queries.sql_string(spill)}")
    _CONNECTIONS.add(con)
    try:
        con.execute(f"SET memory_limit = {queries.sql_string(memory_limit)}")
        con.execute(f"SET max_temp_directory_size = "
                    f"{queries.sql_string(temp_limit or default_temp_limit(spill))}")
    except duckdb.Error as exc:
        con.close()
        raise UnusableInput(f"bad memory or temp limit ({memory_limit!r}, {temp_limit!r}): "
                            f"{str(exc).splitlines()[0]}") from None
    # Required, not a preference: line numbers come from insertion order, the
    # events' `seq` is the rowid of the sorted event_rows table, and the streaming
    # window pass of deps.sql relies on ORDER BY output order.
    con.execute("SET preserve_insertion_order = true")
    return con


_SPILL_DIRS: set[str] = set()
_CONNECTIONS: weakref.WeakSet = weakref.WeakSet()


def _remove_spill_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    _SPILL_DIRS.discard(path)


def interrupt_all() -> None:
    """Interrupt the query running on every open connection (from a signal handler)."""
    for con in list(_CONNECTIONS):
        try:
            con.interrupt()
        except Exception:  # closed meanwhile
            pass


def remove_spill_dirs() -> None:
    """Delete the spill directories of all in-memory connections, and the loader's
    links and copies (on SIGINT/SIGTERM)."""
    for path in list(_SPILL_DIRS):
        _remove_spill_dir(path)
    for path in list(inputs.WORKDIRS):
        shutil.rmtree(path, ignore_errors=True)
        inputs.WORKDIRS.discard(path)


def default_memory_limit() -> str:
    """Half the memory this process may use: physical memory, or its cgroup's limit if lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "2GB"
    for cgroup in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(cgroup).read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            total = min(total, int(raw))
    return f"{max(256, int(total * MEMORY_FRACTION) >> 20)}MB"


def default_temp_limit(spill: str) -> str:
    """Half the free space of the file system DuckDB spills to."""
    where = Path(spill)
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return "10GB"
    return f"{max(64, int(free * TEMP_FRACTION) >> 20)}MB"


@dataclass
class Loaded:
    """What `load` read: the files, and those that held nothing usable."""

    files: list[Path]
    empty_files: list[Path]
    headerless_files: list[str]
    warnings: list[str] = field(default_factory=list)


RAW_SCHEMA = """CREATE OR REPLACE TABLE raw (file_id SMALLINT, k VARCHAR, ts BIGINT, th INTEGER,
    task INTEGER, obj INTEGER, op VARCHAR, site INTEGER, outcome VARCHAR, sig VARCHAR,
    timeout DOUBLE, n INTEGER, id INTEGER, count BIGINT)"""
# DuckDB's own limit is a little above ours, so that a line it reads whole is
# never one that inputs.cut_long_lines would cut, and a line it rejects always is.
DUCKDB_MAX_LINE = inputs.MAX_LINE_BYTES + 4096


def load(con: duckdb.DuckDBPyConnection, files: list[Path], timings: dict[str, float] | None = None,
         max_gzip_ratio: float | None = None) -> Loaded:
    """Read `files` into the documented tables of `con` (docs/database.md).

    Files are first prepared (inputs.prepare): read by literal name, the same part
    given twice read once, two programs with one run id kept apart. Then two passes:
    pass 2 reads the files as plain lines and parses, with all the definition
    columns, only the lines that do not start like an event; pass 1 reads every
    line of each file with DuckDB `read_json` and the event columns' explicit types
    (row order = line order). A file with lines over 16 MiB is read from a copy
    where they are marked (reported as corrupt lines). Raises UnusableInput for
    an unknown format version or when no file holds a single valid record.
    `timings`, when given, receives the seconds each step took.
    """
    lap = Lap(timings)
    nonempty = [f for f in files if f.stat().st_size > 0]
    empty = [f for f in files if f.stat().st_size == 0]
    if not nonempty:
        raise UnusableInput(_nothing_usable(files, "empty"))
    prepared = inputs.prepare(nonempty, max_gzip_ratio)
    try:
        return _load(con, files, prepared, empty, lap)
    finally:
        prepared.cleanup()


def _load(con: duckdb.DuckDBPyConnection, files: list[Path], prepared: inputs.Prepared,
          empty: list[Path], lap: Lap) -> Loaded:
    sources = prepared.sources
    lap("load:prepare_s")
    con.execute("CREATE OR REPLACE TABLE paths (file_id SMALLINT, path VARCHAR, src VARCHAR, run VARCHAR)")
    con.executemany("INSERT INTO paths VALUES (?, ?, ?, ?)",
                    [(i, str(s.path), str(s.src), s.run) for i, s in enumerate(sources, 1)])
    con.execute(RAW_SCHEMA)
    try:
        file_list = "[" + ", ".join(queries.sql_string(str(s.src)) for s in sources) + "]"
        queries.run(con, "load_defs", files=file_list, max_line=DUCKDB_MAX_LINE)
        lap("load:read_definitions_s")
        too_long = {r[0] for r in con.execute(
            "SELECT DISTINCT s.file_path FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id) "
            "WHERE e.error_type = 'LINE SIZE OVER MAXIMUM'").fetchall()}
        for i, s in enumerate(sources, 1):  # one statement per file (not per line)
            read = s.src
            if str(s.src) in too_long:
                read, _ = inputs.cut_long_lines(s, prepared.workdir)
            queries.run(con, "load_raw", file_id=i, path=queries.sql_string(str(read)),
                        max_line=DUCKDB_MAX_LINE)
        lap("load:read_events_s")
        queries.run(con, "load_files")
    except duckdb.OutOfMemoryException:
        raise  # said with the limits by analysis.analyze
    except duckdb.Error as exc:  # unreadable file, bad gzip stream, ...
        message = str(exc).splitlines()[0]
        for s in sources:  # name the user's files, not the links
            message = message.replace(str(s.src), str(s.path))
        raise UnusableInput(f"cannot read trace files: {message}") from None
    bad = con.execute(
        "SELECT path, format, version FROM files "
        "WHERE run IS NOT NULL AND (format IS DISTINCT FROM 'lockscope-trace' "
        "OR version NOT IN (SELECT unnest($v)))",
        {"v": sorted(SUPPORTED_VERSIONS)},
    ).fetchall()
    if bad:
        path, fmt, version = bad[0]
        if fmt != "lockscope-trace":
            raise UnusableInput(f"{path}: not a lockscope trace (format {fmt!r})")
        raise UnusableInput(
            f"{path}: unsupported trace format version {version} (this lockscope reads version "
            f"{', '.join(sorted(SUPPORTED_VERSIONS))}); upgrade lockscope"
        )
    headerless = [r[0] for r in con.execute("SELECT path FROM files WHERE run IS NULL").fetchall()]
    if len(headerless) == len(sources):  # (and the run ENUM would have no value)
        raise UnusableInput(_nothing_usable(files, "no header record"))
    queries.run(con, "build_tables")
    lap("load:build_tables_s")
    con.execute("DROP VIEW IF EXISTS good; DROP VIEW IF EXISTS def_rows; DROP VIEW IF EXISTS rows; "
                "DROP TABLE IF EXISTS other_rows; DROP TABLE IF EXISTS raw; DROP TABLE IF EXISTS defs; "
                "DROP TABLE IF EXISTS paths; DROP TABLE IF EXISTS def_problems")
    if con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0:
        raise UnusableInput(_nothing_usable(files, "no header record"))
    return Loaded(files=files, empty_files=empty, headerless_files=headerless, warnings=prepared.warnings)


def _nothing_usable(files: list[Path], why: str) -> str:
    shown = ", ".join(str(f) for f in files[:3]) + (" ..." if len(files) > 3 else "")
    return f"nothing usable in {len(files)} trace file(s) ({why}): {shown}"


JOB_SEGMENTS = "(run, obj) IN (SELECT run, id FROM segments WHERE kind = 'job')"


def segment_actors(con: duckdb.DuckDBPyConnection, actors: str) -> str | None:
    """Which segments are actors of their own, as a SQL condition on a segment event's
    `obj`: all with --actors segment; with --actors task, the jobs of thread pools
    (one worker thread runs many jobs that are independent of each other); None when
    no segment is an actor."""
    if actors == "segment":
        return "true"
    if actors == "task" and con.execute("SELECT count(*) FROM segments WHERE kind = 'job'").fetchone()[0]:
        return JOB_SEGMENTS
    return None


def segment_actor_source(segment_filter: str) -> str:
    """The events with the `segment` column of segment_actor_events.sql."""
    return queries.text("segment_actor_events").format(segment_filter=segment_filter).strip().rstrip(";")


def derive(con: duckdb.DuckDBPyConnection, *, group_by: str = "instance", actors: str = "task",
           timings: dict[str, float] | None = None, alongside: Callable[[], None] | None = None,
           source_root: str | None = None) -> None:
    """Build the shared analysis tables (lock keys, holds, waits, dependencies).

    Sites get their shown paths first, relative to `source_root` (absolute) or,
    without it, to each run's recorded working directory (see paths.shown_path).

    `alongside`, when given, is called in this thread once holds and waits exist,
    while the dependencies are built on a second connection in another thread:
    their sort-and-scan pass runs on one core, so work that needs only holds and
    waits fills the other. `timings`, when given, receives the seconds each step took."""
    lap = Lap(timings)
    if group_by == "site":
        lock_key = "coalesce(s.site, l.run::VARCHAR || '/' || l.id)"
    elif group_by == "instance":
        lock_key = "l.run::VARCHAR || '/' || l.id"
    else:
        raise UnusableInput(f"--group-by must be 'instance' or 'site', not {group_by!r}")
    if actors not in ("task", "thread", "segment"):
        raise UnusableInput(f"--actors must be 'task', 'thread' or 'segment', not {actors!r}")
    segment_filter = segment_actors(con, actors)
    if segment_filter is not None:
        actor_source = "(" + segment_actor_source(segment_filter) + ")"
        actor = "CASE WHEN e.task IS NULL AND e.segment > 0 THEN e.segment ELSE coalesce(e.task, e.th) END"
    else:
        actor_source = "events"
        actor = "coalesce(e.task, e.th)" if actors == "task" else "e.th"
    segments = segment_filter is not None
    paths.resolve_sites(con, source_root)
    queries.run(con, "derive", lock_key=lock_key, actor=actor, actor_source=actor_source,
                lock_events_kind="TABLE" if segments else "VIEW",
                lock_ops_source="lock_events" if segments else "events",
                lock_ops_actor="e.actor" if segments else actor)
    holds.pair(con, actors)  # the lock instances derive.sql leaves to be paired per lock or across gaps
    con.execute("DROP TABLE lock_pairing")
    lap("derive:holds_waits_s")
    if alongside is None:
        queries.run(con, "deps")
    else:
        deps_con = con.cursor()  # same database; its temporary tables are its own
        try:
            with ThreadPoolExecutor(1) as pool:
                built = pool.submit(queries.run, deps_con, "deps")
                try:
                    alongside()
                finally:
                    built.result()
        finally:
            deps_con.close()
    # (summary mode: dependencies known only from their counts give their edges too)
    queries.run(con, "deps_from_records", actor="n.th" if actors == "thread" else "coalesce(n.task, n.th)")
    lap("derive:deps_s")
