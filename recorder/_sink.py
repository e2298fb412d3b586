"""The sink: a background writer that drains the per-thread buffers into JSONL files.

The writer is a raw ``_thread`` thread (invisible to ``threading.enumerate()``) that
wakes every ``flush_interval`` seconds, turns buffered event tuples into JSON lines
(definitions first, lazily, once per file part) and appends them with ``os.write``,
so a process that is killed or hangs still leaves everything up to the last flush
on disk.  It is guarded only by raw ``_thread`` locks that are never traced.
Any I/O error disables recording with one warning; the program runs on.
"""

from __future__ import annotations

import _thread
import os
import secrets
import socket
import sys
import time
from typing import Any

import orjson

from . import _core

_encode_fast = _core.speedups.encode if _core.speedups is not None else None
_take = _core.speedups.take if _core.speedups is not None else None

FORMAT = "lockscope-trace"
VERSION = 1

# Fast encodings for the common event shapes (no strings that need escaping).
_EV_SITE = b'{"k":"ev","ts":%d,"th":%d,"obj":%d,"op":"%s","site":%d}\n'
_EV_NOSITE = b'{"k":"ev","ts":%d,"th":%d,"obj":%d,"op":"%s"}\n'
_EV_TASK_SITE = b'{"k":"ev","ts":%d,"th":%d,"task":%d,"obj":%d,"op":"%s","site":%d}\n'
_EV_TASK_NOSITE = b'{"k":"ev","ts":%d,"th":%d,"task":%d,"obj":%d,"op":"%s"}\n'


class _OpNames(dict):
    """op -> its bytes for the fast encodings; an op we do not know is JSON-escaped."""

    def __missing__(self, op: str) -> bytes:
        value = self[op] = orjson.dumps(str(op))[1:-1]
        return value


_OPS = _OpNames({op: op.encode() for op in (
    "wait", "acquire", "release", "timeout", "cancel", "try-fail", "wait-begin",
    "wait-end", "signal", "start", "end", "join", "segment-begin", "segment-end",
    "suspend", "resume", "pass")})


def _warn(msg: str) -> None:
    try:
        sys.stderr.write(f"lockscope: {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass


class Sink:
    """Owns the output file(s) of one run and the writer thread."""

    def __init__(self, out_dir: str, settings: dict, flush_interval: float,
                 max_file_mb: float, parent_run: str | None = None) -> None:
        self.out_dir = os.path.abspath(out_dir)
        self.settings = settings
        self.flush_interval = flush_interval
        self.max_bytes = int(max_file_mb * 1024 * 1024) if max_file_mb else 0
        self.parent_run = parent_run
        self.run = secrets.token_hex(8)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.part = 0
        self.fd = -1
        self.files: list[str] = []
        self.part_bytes = 0
        self.written: set[int] = set()
        self.written_sites: set[int] = set()
        self.failed = False
        self.closed = False
        self._stopping = False
        self._wake = _thread.allocate_lock()
        self._wake.acquire()
        self._io = _thread.allocate_lock()       # one drainer at a time
        self._running = _thread.allocate_lock()  # held while the writer thread lives

    # ------------------------------------------------------------ files

    def _path(self) -> str:
        suffix = f".{self.part}" if self.part else ""
        safe_host = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.host)
        return os.path.join(self.out_dir,
                            f"lockscope-{safe_host}-{self.pid}-{self.stamp}{suffix}.jsonl")

    def open(self) -> None:
        """Create the directory and the first part. Raises OSError when impossible."""
        os.makedirs(self.out_dir, exist_ok=True)
        self._open_part()

    def _open_part(self) -> None:
        path = self._path()
        n = 1
        while os.path.exists(path):  # same pid and second as an earlier run: keep both
            base = path[: -len(".jsonl")]
            path = f"{base}-{n}.jsonl"
            n += 1
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o644)
        self.files.append(path)
        self.part_bytes = 0
        self.written = set()
        self.written_sites = set()
        self.header_written = False
        if self.part:
            self._write_header()

    def _write_header(self) -> None:
        # Written at the first flush rather than at start, so that a program started
        # through ``python -m recorder script.py`` shows its own argv.
        self.header_written = True
        self._write(orjson.dumps(self._header()) + b"\n")

    def _header(self) -> dict:
        mono, wall = time.monotonic_ns(), time.time_ns()
        try:
            cwd = os.getcwd()
        except OSError:
            cwd = None
        return {
            "k": "header", "format": FORMAT, "version": VERSION, "run": self.run,
            "part": self.part, "pid": self.pid, "ppid": os.getppid(), "host": self.host,
            "runtime": f"{sys.implementation.name} {sys.version.split()[0]}",
            "python": sys.version.split()[0], "argv": [str(a) for a in sys.argv],
            "cwd": cwd, "clock": "monotonic", "mono_ns": mono, "wall_ns": wall,
            "parent_run": self.parent_run, "settings": self.settings,
        }

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.part_bytes += len(data)

    def _rotate(self) -> None:
        self._write(orjson.dumps({"k": "end", "ts": time.monotonic_ns(), "reason": "rotate"})
                    + b"\n")
        os.close(self.fd)
        self.part += 1
        self._open_part()

    # ----------------------------------------------------------- writer

    def start_writer(self) -> None:
        self._running.acquire()
        started = _thread.allocate_lock()
        started.acquire()
        _thread.start_new_thread(self._loop, (started,))
        # Return once the writer runs (bounded): a thread that is still starting
        # would look, to code counting threads (_thread._count()), like one the
        # program started later.
        started.acquire(True, 5.0)

    def _loop(self, started: Any = None) -> None:
        if started is not None:
            started.release()
        try:
            while not self._stopping:
                self._wake.acquire(True, self.flush_interval)
                if self._stopping:
                    break
                self.flush()
        finally:
            self._running.release()

    def flush(self) -> None:
        """Drain every buffer to the file (safe to call from any thread)."""
        if self.failed or self.closed:
            return
        if not self._io.acquire(True, 5.0):
            return
        try:
            self._drain()
        except OSError as exc:
            self._fail(f"cannot write the trace ({exc}); recording disabled")
        except Exception as exc:  # a bug of ours must never reach the program
            self._fail(f"internal error while writing the trace ({exc!r}); recording disabled")
        finally:
            self._io.release()

    def _fail(self, msg: str) -> None:
        self.failed = True
        _core.ON = False
        _warn(msg)

    def _drain(self) -> None:
        # Take events before definitions: an event taken here was appended after its
        # object's definition was recorded, so the definition is known by now.
        batches = []
        for st in list(_core.states):
            # Read ``ended`` before the length: the thread appends its ``end`` event
            # before it sets ``ended``, so an empty buffer of an ended thread stays empty.
            ended = st.ended
            buf = st.buf
            n = len(buf)
            if n:
                if _take is not None:
                    batches.append((st, _take(buf, n)))
                else:
                    pop = buf.popleft
                    batches.append((st, [pop() for _ in range(n)]))
            lost = st.dropped - st.dropped_reported
            if lost > 0:
                st.dropped_reported += lost
                batches.append((st, [(time.monotonic_ns(), "dropped", lost)]))
            elif not n and ended:
                try:
                    _core.states.remove(st)
                except ValueError:
                    pass
        if not self.header_written:
            self._write_header()
        if not batches:
            return
        out = bytearray()
        for st, events in batches:
            self._encode(st, events, out)
        if out:
            self._write(bytes(out))

    def _define(self, obj: Any, out: bytearray) -> int:
        oid = obj._ls_id
        if oid not in self.written:
            self.written.add(oid)
            parent_ref = getattr(obj, "parent_ref", None)
            if parent_ref is not None:
                # A thread names its parent: define it in this part too (a later part
                # may not mention the parent otherwise).
                parent = parent_ref()
                if parent is not None:
                    self._define(parent, out)
            # Objects the definition refers to (a task's parent) are defined first.
            for dep in getattr(obj, "_ls_deps", ()):
                self._define(dep, out)
            rec = obj._ls_record()
            site = rec.get("site")
            if site:
                self._define_site(site, out)
            out += orjson.dumps(rec, default=str)
            out += b"\n"
        return oid

    def _define_site(self, sid: int, out: bytearray) -> None:
        if sid not in self.written_sites:
            self.written_sites.add(sid)
            out += orjson.dumps(_core.site_record(sid), default=str)
            out += b"\n"

    def _rotate_if_full(self, out: bytearray) -> bool:
        """Start a new part when this one is full (checked between events, so a part
        overshoots the limit by at most a few dozen lines)."""
        if self.max_bytes and self.part_bytes + len(out) >= self.max_bytes:
            self._write(bytes(out))
            out.clear()
            self._rotate()
            return True
        return False

    def _encode(self, st: Any, events: list, out: bytearray) -> None:
        # The writer's inner loop: its CPU is taken from the program (the GIL), so the
        # common shape (a lock event outside any task) has a flat path of its own.
        self._rotate_if_full(out)
        tid = self._define(st, out)
        written, wsites = self.written, self.written_sites
        ops = _OPS
        check_size = 0 if not self.max_bytes else 1
        i, n = 0, len(events)
        while i < n:
            if _encode_fast is not None:
                # C: every event of the common shape whose definitions are written;
                # it stops where the Python code below is needed, or at ``limit``.
                limit = self.max_bytes - self.part_bytes if self.max_bytes else -1
                i = _encode_fast(events, i, tid, written, wsites, ops, out, limit)
                if i >= n:
                    break
                if self._rotate_if_full(out):
                    tid = self._define(st, out)
                    written, wsites = self.written, self.written_sites
            elif check_size:
                check_size += 1
                if not check_size & 63 and self._rotate_if_full(out):
                    tid = self._define(st, out)
                    written, wsites = self.written, self.written_sites
            ev = events[i]
            i += 1
            if len(ev) == 5:  # the common shape: no extra fields (inlined for speed)
                ts, op, obj, site, task = ev
                oid = obj._ls_id
                if oid not in written:
                    self._define(obj, out)
                if site and site not in wsites:
                    self._define_site(site, out)
                if task is None:
                    if site:
                        out += _EV_SITE % (ts, tid, oid, ops[op], site)
                    else:
                        out += _EV_NOSITE % (ts, tid, oid, ops[op])
                else:
                    task_id = task._ls_id
                    if task_id not in written:
                        self._define(task, out)
                    if site:
                        out += _EV_TASK_SITE % (ts, tid, task_id, oid, ops[op], site)
                    else:
                        out += _EV_TASK_NOSITE % (ts, tid, task_id, oid, ops[op])
                continue
            op = ev[1]
            if op == "dropped":
                out += b'{"k":"dropped","ts":%d,"th":%d,"count":%d}\n' % (ev[0], tid, ev[2])
                continue
            obj = ev[2]
            oid = self._define(obj, out)
            if op == "name":
                out += orjson.dumps({"k": "name", "id": oid, "name": ev[5]["name"]})
                out += b"\n"
                continue
            site = ev[3]
            if site:
                self._define_site(site, out)
            task = ev[4]
            rec = {"k": "ev", "ts": ev[0], "th": tid}
            if task is not None:
                rec["task"] = self._define(task, out)
            rec["obj"] = oid
            rec["op"] = op
            if site:
                rec["site"] = site
            if len(ev) > 5:
                rec.update(ev[5])
            out += orjson.dumps(rec, default=str)
            out += b"\n"

    # ------------------------------------------------------------ close

    def close(self, reason: str) -> None:
        """Stop the writer, write what is left and the ``end`` record, close the file."""
        if self.closed:
            return
        self._stopping = True
        try:
            self._wake.release()
        except RuntimeError:
            pass
        # Wait (bounded) for the writer to finish its current batch.
        if self._running.acquire(True, 5.0):
            self._running.release()
        self.flush()
        if not self._io.acquire(True, 5.0):
            return
        try:
            if not self.failed and self.fd >= 0:
                if not self.header_written:
                    self._write_header()
                self._write(orjson.dumps({"k": "end", "ts": time.monotonic_ns(),
                                          "reason": reason}) + b"\n")
        except OSError as exc:
            _warn(f"cannot finish the trace ({exc})")
        finally:
            self.closed = True
            if self.fd >= 0:
                try:
                    os.close(self.fd)
                except OSError:
                    pass
                self.fd = -1
            self._io.release()

    def abandon(self) -> None:
        """In a forked child: let go of the parent's file without writing to it."""
        self.closed = True
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
        self.fd = -1
