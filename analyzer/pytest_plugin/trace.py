"""Trace helpers of the pytest plugin: the slice of a trace written since a test
began, and which test was running when.

Standard library and orjson only: the plugin module imports this without pulling
in DuckDB.  The slice is cut from the recorder's own files, where every line is
one record and event lines start with ``{"k":"ev"``; the test windows are read
from the analyzer's open database (``on_result``).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import orjson

_EV = b'{"k":"ev"'
_DROPPED = b'{"k":"dropped"'
_END = b'{"k":"end"'
_BEAT = b'{"k":"beat"'


@dataclass(frozen=True)
class TraceMark:
    """A point in the current recording: the part being written and its size then."""

    part_index: int
    offset: int


def mark_now(files: list[str]) -> TraceMark:
    """The current end of the trace (call right after ``recorder.flush()``)."""
    if not files:
        return TraceMark(0, 0)
    try:
        size = os.path.getsize(files[-1])
    except OSError:
        size = 0
    return TraceMark(len(files) - 1, size)


def cut_since(files: list[str], mark: TraceMark, out_dir: str) -> list[str]:
    """Write the part of the trace recorded after `mark` into `out_dir`.

    Each copied part keeps its header and every definition (locks, sites, threads
    defined before the mark are still needed), but only the events written after
    the mark; parts entirely before the mark are left out.  The last copy gets an
    ``end`` record, since the window is complete when this is called.  Returns the
    files written."""
    written = []
    for i, path in enumerate(files):
        if i < mark.part_index:
            continue
        start = mark.offset if i == mark.part_index else 0
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        keep = bytearray()
        for line in data[:start].splitlines(keepends=True):
            if not line.startswith((_EV, _DROPPED, _END, _BEAT)):
                keep += line
        for line in data[start:].splitlines(keepends=True):
            if line.endswith(b"\n") and not line.startswith(_END):
                keep += line
        dest = os.path.join(out_dir, os.path.basename(path))
        with open(dest, "wb") as f:
            f.write(keep)
        written.append(dest)
    if written:
        with open(written[-1], "ab") as f:
            f.write(orjson.dumps({"k": "end", "ts": time.monotonic_ns(), "reason": "stop"}) + b"\n")
    return written


@dataclass
class TestWindows:
    """When each test (segment of kind ``test``) ran, per run (process)."""

    names: dict[tuple[str, int], str] = field(default_factory=dict)
    # run -> sorted (begin_ts, end_ts, name); end_ts is None when the test never ended
    spans: dict[str, list[tuple[int, int | None, str]]] = field(default_factory=dict)
    # child process's run -> its parent process's run (same host: one monotonic clock)
    parents: dict[str, str] = field(default_factory=dict)

    def at(self, run: str | None, ts: int | None) -> list[str]:
        """The tests running in `run` at time `ts` (innermost last); for a child
        process the session started, the tests of its parent running then."""
        if ts is None:
            return []
        run = run or ""
        for _ in range(16):  # up the process tree to the session's own process
            if run in self.spans or run not in self.parents:
                break
            run = self.parents[run]
        return [name for begin, end, name in self.spans.get(run, ())
                if begin <= ts and (end is None or end >= ts)]

    def name_of(self, run: str | None, seg_id: int) -> str | None:
        return self.names.get((run or "", seg_id))


_WINDOWS_SQL = """
SELECT s.run, s.id, s.name, b.ts AS begin_ts, e.ts AS end_ts
FROM segments s
JOIN (SELECT run, obj, min(ts) AS ts FROM events WHERE op = 'segment-begin' GROUP BY run, obj) b
  ON b.run = s.run AND b.obj = s.id
LEFT JOIN (SELECT run, obj, max(ts) AS ts FROM events WHERE op = 'segment-end' GROUP BY run, obj) e
  ON e.run = s.run AND e.obj = s.id
WHERE coalesce(s.kind, 'test') = 'test'
ORDER BY s.run, begin_ts, s.name
"""


def read_test_windows(con) -> TestWindows:
    """When each test ran, from the analyzer's database (tables of docs/database.md)."""
    tw = TestWindows()
    for run, seg_id, name, begin, end in con.execute(_WINDOWS_SQL).fetchall():
        tw.names[(run, seg_id)] = str(name)
        tw.spans.setdefault(run, []).append((begin, end, str(name)))
    tw.parents = dict(con.execute(_PARENTS_SQL).fetchall())
    return tw


# A run whose process's parent (ppid, same host) is another run's process; runs are
# only compared on one host, whose monotonic clock all its processes share.
_PARENTS_SQL = """
SELECT c.run::VARCHAR, arg_min(p.run::VARCHAR, p.first_ts) FROM runs c
JOIN runs p ON p.pid = c.ppid AND p.host IS NOT DISTINCT FROM c.host AND p.run <> c.run
GROUP BY c.run
"""


def _tests_of(actor: dict, ts: int | None, windows: TestWindows) -> list[str]:
    if actor.get("kind") == "segment":
        return [actor.get("name")]
    return windows.at(actor.get("run"), ts)[-1:]


def attribute_tests(doc: dict, windows: TestWindows) -> None:
    """Add ``tests`` to every step and finding of a findings document.

    A step's tests are those that exercised its edge: every actor of the edge
    (``steps[].actors``, else the step's ``actor``) that is a test segment, and
    for a thread or task, the test that was running when it first took the edge.
    A finding's tests are all of its steps' tests in order (for findings without
    steps, the test running at its first occurrence)."""
    for finding in doc.get("findings", []):
        names: list[str] = []
        for step in finding.get("steps") or []:
            actors = step.get("actors") or [step.get("actor") or {}]
            tests: list[str] = []
            for actor in actors:
                tests += _tests_of(actor, actor.get("ts", step.get("ts")), windows)
            step["tests"] = list(dict.fromkeys(t for t in tests if t))
            names += step["tests"]
        if not finding.get("steps"):
            names = windows.at(finding.get("run"), finding.get("first_ts"))[-1:]
        finding["tests"] = list(dict.fromkeys(n for n in names if n))
