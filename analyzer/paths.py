"""How recorded file paths are shown: relative to a source root (the recorded
process's working directory unless ``--source-root`` says otherwise), the
standard library as ``<stdlib>/...``, installed packages as
``<site-packages>/...``, anything else as recorded (absolute)."""
from __future__ import annotations

import os
import posixpath
import re

import duckdb

STDLIB = "<stdlib>/"
SITE_PACKAGES = "<site-packages>/"

# the tail after the last site-packages (or Debian's dist-packages) directory
_PACKAGES = re.compile(r"(?:^|/)(?:site|dist)-packages/(.+)$")
# the tail after an interpreter's library directory: lib/python3.12/, lib/pypy3.10/
# (POSIX, free-threaded `python3.13t` included) or Windows' Lib/
_STDLIB = re.compile(r"(?:(?:^|/)lib/(?:python|pypy)\d+(?:\.\d+)?t?|(?:^|/)Lib)/(.+)$")
_WINDOWS = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


def _posix(path: str) -> str:
    """`path` with '/' separators (Windows paths are recorded with '\\')."""
    return path.replace("\\", "/") if _WINDOWS.match(path) or ("\\" in path and "/" not in path) else path


def _is_abs(path: str) -> bool:
    return path.startswith("/") or bool(_WINDOWS.match(path))


def library_path(path: str) -> str | None:
    """`<site-packages>/pkg/mod.py` or `<stdlib>/mod.py` for a library file, else None."""
    m = _PACKAGES.search(path)
    if m:
        return SITE_PACKAGES + m.group(1)
    m = _STDLIB.search(path)
    return STDLIB + m.group(1) if m else None


def _below(path: str, root: str) -> str | None:
    """`path` relative to directory `root` when it lies below it."""
    base = root.rstrip("/") + "/"
    if root and path.startswith(base):
        return path[len(base):]
    return None


def shown_path(file: str | None, root: str | None, cwd: str | None = None) -> str | None:
    """The path of recorded `file` as reports show it.

    `root`: the source root (absolute, or None for none); `cwd`: the recorded
    process's working directory, against which a relative `file` is resolved.
    A file below the root is shown relative to it (unless it lies in a library
    directory below the root, such as a virtualenv's site-packages).
    """
    if not file or file.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return file
    path = _posix(file)
    if not _is_abs(path):
        base = _posix(cwd) if cwd else ""
        if not _is_abs(base):  # relative to an unknown directory: as recorded
            return library_path(path) or path
        path = file = posixpath.normpath(posixpath.join(base, path))
    if root:
        rel = _below(path, _posix(root))
        if rel is not None and library_path(rel) is None:
            return rel
    return library_path(path) or file


def run_root(source_root: str | None, cwd: str | None) -> str | None:
    """The source root of a run: `source_root` when given, else its recorded cwd."""
    return source_root or cwd


def absolute_root(source_root: str | os.PathLike | None) -> str | None:
    """A ``--source-root`` argument as an absolute path (relative to the analyzer's cwd)."""
    return os.path.abspath(os.fspath(source_root)) if source_root else None


def resolve_sites(con: duckdb.DuckDBPyConnection, source_root: str | None = None) -> None:
    """Add the shown `path` and `site` ('path:line') columns to the `sites` table."""
    rows = con.execute("SELECT DISTINCT s.run, s.file, r.cwd FROM sites s LEFT JOIN runs r ON r.run = s.run "
                       "WHERE s.file IS NOT NULL").fetchall()
    # one statement with three lists (executemany takes about a millisecond per row)
    con.execute("CREATE OR REPLACE TEMP TABLE site_paths AS SELECT unnest(?::VARCHAR[]) AS run, "
                "unnest(?::VARCHAR[]) AS file, unnest(?::VARCHAR[]) AS path",
                [[r[0] for r in rows], [r[1] for r in rows],
                 [shown_path(file, run_root(source_root, cwd), cwd) for _, file, cwd in rows]])
    con.execute("ALTER TABLE sites ADD COLUMN IF NOT EXISTS path VARCHAR")
    con.execute("ALTER TABLE sites ADD COLUMN IF NOT EXISTS site VARCHAR")
    # a site's line is NULL when the trace had none: then the site is the path alone
    con.execute("UPDATE sites SET path = p.path, site = p.path || coalesce(':' || sites.line, '') "
                "FROM site_paths p WHERE p.run = sites.run AND p.file = sites.file")
    con.execute("DROP TABLE site_paths")
