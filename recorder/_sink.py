"""The sink: a background writer that drains the per-thread buffers into JSONL files.

The writer is a raw ``_thread`` thread (invisible to ``threading.enumerate()``) that
wakes every ``flush_interval`` seconds, turns buffered event tuples into JSON lines
(definitions first, lazily, once per file part) and appends them with ``os.write``,
so a process that is killed or hangs still leaves everything up to the last flush
on disk.  It is guarded only by raw ``_thread`` locks that are never traced.

Disk safety: the parts of one run together stay under ``max_total_mb`` (the oldest
parts are deleted, as JFR's ``maxsize`` does), and below ``min_free_mb`` of free
space, or after a write error (a full disk), recording *pauses*: events are still
taken from the buffers but counted instead of written, one message says so, and
writing resumes when space is back, with ``dropped`` and ``resync`` records per
thread for the gap.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

from . import _core, _disk
from ._text import dumps, dumps_plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_encode_fast = _core.speedups.encode if _core.speedups is not None else None
_take = _core.speedups.take if _core.speedups is not None else None
_take_states = _core.speedups.take_states if _core.speedups is not None else None
_define_state = getattr(_core.speedups, "define_state", None)
_encode_batches = getattr(_core.speedups, "encode_batches", None)
# The sets of ids written (one per definition of a part): hidden from the cyclic GC.
_int_set = (lambda: _core.speedups.untrack_ints(set())) if _core.speedups is not None else set

FORMAT = "lockscope-trace"
VERSION = 1

# Fast encodings for the common event shapes (no strings that need escaping).
_EV_SITE = b'{"k":"ev","ts":%d,"th":%d,"obj":%d,"op":"%s","site":%d}\n'
_EV_NOSITE = b'{"k":"ev","ts":%d,"th":%d,"obj":%d,"op":"%s"}\n'
_EV_TASK_SITE = b'{"k":"ev","ts":%d,"th":%d,"task":%d,"obj":%d,"op":"%s","site":%d}\n'
_EV_TASK_NOSITE = b'{"k":"ev","ts":%d,"th":%d,"task":%d,"obj":%d,"op":"%s"}\n'


_BYTES_PER_EVENT = 100   # what a flush may need on disk, per event (a generous guess)
_BEAT_NS = 1_000_000_000  # at most one ``beat`` record a second
# The CPU clock of the calling thread (not on every Unix: then drains count as 0)
_thread_cpu_ns = getattr(time, "thread_time_ns", None) or (lambda: 0)
_MAX_GAPS = 10_000        # threads whose lost events are counted one by one


class _Gap:
    """Events of one thread that a pause did not write: how many (``dropped``: as
    ``dropped`` records count them), and for its ``resync`` record how many events
    since when and the acquires and releases lost per (lock, task)."""

    __slots__ = ("dropped", "lost", "since", "locks")

    def __init__(self, since: int) -> None:
        self.dropped = 0
        self.lost = 0
        self.since = since
        self.locks: dict[tuple[int, int], list] = {}  # -> [obj, task, acquired, released]

    def add(self, events: list) -> None:
        for ev in events:
            op = ev[1]
            if op == "dropped":      # lost earlier (buffer full): already counted
                self.dropped += ev[2]
                continue
            if op == "resync":       # a gap of the buffers, closed in this one
                inner = ev[2]
                self.lost += inner.lost
                self.since = min(self.since, inner.since)
                for obj, task, acquired, released in inner.locks.values():
                    self._count(obj, task, acquired, released)
                continue
            self.dropped += 1
            self.lost += 1
            if op == "acquire":
                self._count(ev[2], ev[4], 1, 0)
            elif op == "release":
                self._count(ev[2], ev[4], 0, 1)

    def _count(self, obj: Any, task: Any, acquired: int, released: int) -> None:
        key = (id(obj), id(task))
        counts = self.locks.get(key)
        if counts is None:
            counts = self.locks[key] = [obj, task, 0, 0]
        counts[2] += acquired
        counts[3] += released


MAX_ANCESTORS = 16  # parents of parents defined along with a thread or task (see Sink._define)


def _deps_of(obj: Any) -> list:
    """The objects whose definitions ``obj``'s definition names (still alive)."""
    deps = list(getattr(obj, "_ls_deps", ()))
    parent_ref = getattr(obj, "parent_ref", None)  # a thread's parent
    if parent_ref is not None:
        parent = parent_ref()
        if parent is not None:
            deps.append(parent)
    return deps


class _OpNames(dict):
    """op -> its bytes for the fast encodings; an op we do not know is JSON-escaped."""

    def __missing__(self, op: str) -> bytes:
        value = self[op] = dumps(str(op))[1:-2]  # (without the quotes and newline)
        return value


_OPS = _OpNames({op: op.encode() for op in (
    "wait", "acquire", "release", "timeout", "cancel", "try-fail", "wait-begin",
    "wait-end", "signal", "start", "end", "join", "segment-begin", "segment-end",
    "suspend", "resume", "pass")})


def _host_name() -> str:
    try:
        return os.uname().nodename  # what socket.gethostname() returns on POSIX
    except AttributeError:  # Windows
        import socket

        return socket.gethostname()


def _warn(msg: str) -> None:
    try:
        sys.stderr.write(f"lockscope: {msg}\n")
        sys.stderr.flush()
    except Exception:
        pass


def _await_thread_exit(native_id: int | None, timeout: float) -> None:
    """Wait (bounded) until the OS thread ``native_id`` has left the process: it
    still counts (fork()'s multi-threaded warning reads the OS thread count) for a
    moment after its last Python code ran."""
    task = f"/proc/self/task/{native_id}"
    if native_id is None or not os.path.isdir("/proc/self/task"):
        return
    deadline = time.monotonic() + timeout
    while os.path.exists(task) and time.monotonic() < deadline:
        time.sleep(0.0001)


class Sink:
    """Owns the output file(s) of one run and the writer thread."""

    def __init__(self, out_dir: str, settings: dict, flush_interval: float,
                 max_file_mb: float, parent_run: str | None = None, *,
                 max_total_mb: float = 0, min_free_mb: float | None = 0,
                 redact_argv: bool = True, summary: Any = None) -> None:
        self.summary = summary            # a _summary.Summary in summary mode, else None
        self.summary_part = -1            # the part whose summary records are written
        self.out_dir = os.path.abspath(out_dir)
        self.settings = settings
        self.flush_interval = flush_interval
        self.max_bytes = int(max_file_mb * _disk.MB) if max_file_mb else 0
        self.max_total = int(max_total_mb * _disk.MB) if max_total_mb else 0
        if self.max_total:
            # Parts of at most a quarter of the cap: deleting the oldest keeps about
            # three quarters of it (a run without rotation could not be capped).
            quarter = max(self.max_total // 4, 64 * 1024)
            self.max_bytes = min(self.max_bytes, quarter) if self.max_bytes else quarter
        self.min_free_mb = min_free_mb  # None: the default floor, computed at open
        self.min_free = 0
        self.redact_argv = redact_argv
        self.sizes: dict[str, int] = {}   # closed parts still on disk -> bytes
        self.paused: str | None = None    # why writing is paused (None: it is not)
        self.told = False                 # the pause message was printed
        self.new_part = False             # after a failed write: definitions must be repeated
        self.gaps: dict[Any, _Gap] = {}   # thread state -> what a pause did not write
        self.last_beat = time.monotonic_ns()
        # What recording has cost this process so far (the `cost` of beat/end records)
        self.cost_since = self.last_beat
        self.cpu0 = time.process_time_ns()
        self.events0 = _core.events_taken()
        self.writer_ns = 0                # CPU time spent draining, in whichever thread
        self.bytes_total = 0              # written to all parts
        self.batch = 0                    # the batch being encoded, and the first
        self.committed = (0, 0)           # (batch, event) not yet safely on disk
        self.parent_run = parent_run
        self.run = os.urandom(8).hex()  # not secrets/socket: they cost every process ms to import
        self.host = _host_name()
        self.pid = os.getpid()
        self.stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.part = 0
        self.fd = -1
        self.files: list[str] = []
        self.part_bytes = 0
        self.written: set[int] = _int_set()
        self.written_sites: set[int] = _int_set()
        self.failed = False
        self.closed = False
        self._stopping = False
        self._wake = _thread.allocate_lock()
        self._wake.acquire()
        self._io = _thread.allocate_lock()       # one drainer at a time
        self._running = _thread.allocate_lock()  # held while the writer thread lives
        self._writer_native_id: int | None = None

    # ------------------------------------------------------------ files

    def _path(self) -> str:
        suffix = f".{self.part}" if self.part else ""
        safe_host = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.host)
        return os.path.join(self.out_dir,
                            f"lockscope-{safe_host}-{self.pid}-{self.stamp}{suffix}.jsonl")

    def open(self, header_now: bool = False) -> None:
        """Create the directory (0700) and the first part (0600), with its header
        when ``header_now``. Raises OSError when impossible and _disk.UnsafeFolder
        for a folder another user could control."""
        self._open_part(header_now)
        if self.min_free_mb is None:
            self.min_free = _disk.default_min_free(self.out_dir)
        else:
            self.min_free = int(self.min_free_mb * _disk.MB)

    def _open_part(self, header_now: bool = False) -> None:
        # A part after the first, or a file whose header is due now, is created
        # with its header in it (see _disk.create_file): never an empty file.
        first = dumps_plain(self._header()) if self.part or header_now else None
        folder = _disk.open_folder(self.out_dir)
        try:
            path = self._path()
            n = 1
            while os.path.lexists(path):  # same pid and second as an earlier run: keep both
                base = path[: -len(".jsonl")]
                path = f"{base}-{n}.jsonl"
                n += 1
            self.fd = _disk.create_file(folder, os.path.basename(path), first)
        finally:
            os.close(folder)
        self.files.append(path)
        self.part_bytes = len(first) if first else 0
        self.bytes_total += self.part_bytes
        self.written = _int_set()
        self.written_sites = _int_set()
        self.header_written = bool(first)

    def write_header_now(self) -> None:
        """Write the header at once (a forked child, whose argv is final: a worker
        killed right after its first event then leaves a trace, not an empty file)."""
        if not self._io.acquire(True, 1.0):
            return
        try:
            if not self.header_written and self.fd >= 0 and not self.closed:
                self._write_header()
        except OSError:
            pass  # the writer's next flush reports it
        finally:
            self._io.release()

    def _write_header(self) -> None:
        # Written at the first event or flush rather than at start, so that a program
        # started through ``lockscope run`` shows its own argv.
        try:
            self._write(dumps_plain(self._header()))
        finally:
            # From the file, not set before the write: a KeyboardInterrupt raised in
            # the program's thread around it must neither lose the header nor write
            # it twice (a part's header is its first line).
            try:
                self.header_written = os.fstat(self.fd).st_size > 0
            except OSError:
                self.header_written = True

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
            "python": sys.version.split()[0], "argv": self._argv(),
            "cwd": cwd, "clock": "monotonic", "mono_ns": mono, "wall_ns": wall,
            "parent_run": self.parent_run, "settings": self.settings,
        }

    def _argv(self) -> list[str]:
        argv = [str(a) for a in sys.argv]
        if not self.redact_argv:
            return argv
        from ._redact import redact_argv  # at the first header, not at start-up

        return redact_argv(argv)

    def _write(self, data: bytes | bytearray) -> None:
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except OSError:
            if len(view) < len(data):  # cut a line short: take back what was written
                try:
                    os.ftruncate(self.fd, self.part_bytes)
                except OSError:
                    pass
            raise
        self.part_bytes += len(data)
        self.bytes_total += len(data)

    def cost(self) -> dict:
        """What recording has cost this process since it started (see the ``cost``
        field of ``beat`` and ``end`` records in docs/trace-format.md)."""
        return {"since": self.cost_since, "cpu_ns": time.process_time_ns() - self.cpu0,
                "writer_ns": self.writer_ns, "events": _core.events_taken() - self.events0,
                "bytes": self.bytes_total}

    def _end_record(self, reason: str) -> bytes:
        return dumps_plain({"k": "end", "ts": time.monotonic_ns(), "reason": reason,
                            "cost": self.cost()})

    def _rotate(self) -> None:
        self._write(self._end_record("rotate"))
        self._close_part()
        self.part += 1
        self._open_part()
        self._enforce_cap()

    def _close_part(self) -> None:
        fd, self.fd = self.fd, -1
        self.sizes[self.files[-1]] = self.part_bytes
        os.close(fd)

    def _enforce_cap(self) -> None:
        """Delete the oldest parts until they and a full current part fit the cap."""
        if not self.max_total:
            return
        folder = -1
        try:
            while (len(self.files) > 1
                   and sum(self.sizes.values()) + self.max_bytes > self.max_total):
                if folder < 0:
                    folder = _disk.open_folder(self.out_dir)
                oldest = self.files.pop(0)
                self.sizes.pop(oldest, None)
                try:
                    os.unlink(os.path.basename(oldest), dir_fd=folder)
                except FileNotFoundError:
                    pass
        finally:
            if folder >= 0:
                os.close(folder)

    # ----------------------------------------------------------- writer

    def start_writer(self) -> None:
        """Start the writer thread unless it runs already (or the sink is closed)."""
        if self.closed or self.failed or not self._running.acquire(False):
            return
        self._stopping = False
        self._wake.acquire(False)  # (a stop may have left it released)
        _core.set_waker(self.flush_soon)
        started = _thread.allocate_lock()
        started.acquire()
        try:
            _thread.start_new_thread(self._loop, (started,))
        except BaseException:
            self._running.release()
            raise
        # Return once the writer runs (bounded): a thread that is still starting
        # would look, to code counting threads (_thread._count()), like one the
        # program started later.
        started.acquire(True, 5.0)

    def flush_soon(self) -> None:
        """Have the writer drain now rather than at the end of its interval (also
        called by the hot path when the buffers fill: it never blocks)."""
        try:
            self._wake.release()
        except RuntimeError:  # already woken
            pass

    def stop_writer(self, timeout: float = 5.0) -> bool:
        """Stop the writer thread and wait (bounded) until it is gone from the
        process; True if it was running (``start_writer`` resumes it)."""
        if not self._running.locked():
            return False
        self._stopping = True
        try:
            self._wake.release()
        except RuntimeError:
            pass
        if self._running.acquire(True, timeout):
            self._running.release()
            _await_thread_exit(self._writer_native_id, timeout)
        return True

    def _loop(self, started: Any = None) -> None:
        try:
            self._writer_native_id = _thread.get_native_id()
        except Exception:
            self._writer_native_id = None
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

    def flush(self, final: bool = False) -> None:
        """Drain every buffer to the file (safe to call from any thread); ``final``:
        the recording ends, so close every thread's gap."""
        if self.failed or self.closed:
            return
        if not self._io.acquire(True, 5.0):
            return
        cpu = _thread_cpu_ns()
        try:
            self._drain(final)
        except Exception as exc:  # a bug of ours must never reach the program
            self._fail(f"internal error while writing the trace ({exc!r}); recording disabled")
        finally:
            self.writer_ns += _thread_cpu_ns() - cpu
            self._io.release()

    def _fail(self, msg: str) -> None:
        self.failed = True
        _core.ON = False
        _warn(msg)

    def _take(self, final: bool = False) -> list:
        # Take events before definitions: an event taken here was appended after its
        # object's definition was recorded, so the definition is known by now.
        _core.rearm_waker()
        batches = _take_states(_core.states, final) if _take_states is not None else None
        if batches is not None:  # (the same, in C)
            return batches
        batches = []
        for st in list(_core.states):
            # Read ``ended`` before the length: the thread appends its ``end`` event
            # before it sets ``ended``, so an empty buffer of an ended thread stays empty.
            ended = st.ended
            buf = st._buf  # (None: nothing buffered yet)
            n = len(buf) if buf is not None else 0
            if n:
                if _take is not None:
                    batches.append((st, _take(buf, n)))
                else:
                    pop = buf.popleft
                    batches.append((st, [pop() for _ in range(n)]))
                    _core.taken(n)
            if st.gap is not None and (ended or final):
                # A thread that lost events and then ended (or the recording ends):
                # no event of its own will close the gap, so close it here.
                batches.append((st, [_core.end_gap(st)]))
            lost = st.dropped - st.dropped_reported
            if lost > 0:
                st.dropped_reported += lost
                batches.append((st, [(time.monotonic_ns(), "dropped", lost)]))
            elif not n and ended:
                try:
                    _core.states.remove(st)
                except ValueError:
                    pass
        return batches

    def _drain(self, final: bool = False) -> None:
        if self.summary is not None:
            self.summary.before_take(final)
        batches = self._take(final)
        if self.summary is not None:
            batches = self.summary.process(batches, final, time.monotonic_ns())
        if self.paused or self.min_free:  # (a disk check: by default, no loop over batches)
            need = sum(len(events) for _, events in batches) * _BYTES_PER_EVENT
            if (self.paused and not self._resume(need)) or not self._space_ok(need):
                self._lose(batches, 0, 0)
                return
        self.committed = (0, 0)
        try:
            if not self.header_written:
                self._write_header()
            if self.gaps:
                self._write_gaps()
            out = bytearray()
            bi, start, nb = 0, 0, len(batches)
            while bi < nb:
                if _encode_batches is not None and not start:
                    # C: whole batches, up to one that needs the Python code below
                    limit = self.max_bytes - self.part_bytes if self.max_bytes else -1
                    bi, start = _encode_batches(batches, bi, self.written, self.written_sites,
                                                _OPS, out, limit, self._define,
                                                self._define_site)
                    _core.writer_progress()
                    if bi >= nb:
                        break
                self.batch = bi
                st, events = batches[bi]
                self._encode(st, events, out, start)
                _core.writer_progress()
                bi, start = bi + 1, 0
            now = time.monotonic_ns()
            if self.summary is not None:
                self._encode_summary(out, now, final)
            if now - self.last_beat >= _BEAT_NS:
                self.last_beat = now
                out += dumps_plain({"k": "beat", "ts": now, "cost": self.cost()})
            if out:
                self._write(out)  # (no copy: nothing changes `out` after this)
        except OSError as exc:
            # A full disk, or any write error: pause (never disable) and count
            # what was not written; the part keeps only complete lines.
            self.new_part = True
            self._pause("error", f"cannot write the trace ({exc})")
            self._lose(batches, *self.committed)

    # ------------------------------------------------------------ pauses

    def _space_ok(self, need: int) -> bool:
        if not self.min_free:
            return True
        free = _disk.free_bytes(self.out_dir)
        if free is None or free - need >= self.min_free:
            return True
        self._pause("space", f"less than {self.min_free / _disk.MB:g} MB would be left "
                             f"free on the disk of {self.out_dir} (min_free_mb)")
        return False

    def _pause(self, why: str, msg: str) -> None:
        self.paused = why
        if not self.told:
            self.told = True
            _warn(f"{msg}; recording paused, events are counted as dropped until "
                  "it can write again")

    def _resume(self, need: int) -> bool:
        """Try to end a pause: enough free space, and a part to write in again."""
        if not self._space_ok(need):
            return False
        if self.new_part:
            # The failed write took definitions with it: repeat them in a fresh part.
            try:
                if self.fd >= 0 and self.part_bytes == 0:
                    self._reset_part()
                else:
                    if self.fd >= 0:  # (else a rotation failed to open the next part)
                        self._write(self._end_record("rotate"))
                        self._close_part()
                        self.part += 1
                    self._open_part()
                    self._enforce_cap()
            except OSError:
                return False
            self.new_part = False
        self.paused = None
        return True

    def _reset_part(self) -> None:
        self.written = _int_set()
        self.written_sites = _int_set()
        self.header_written = False

    def _lose(self, batches: list, first: int, start: int) -> None:
        """Count the events of ``batches`` from ``(first, start)`` on as lost."""
        for bi in range(first, len(batches)):
            st, events = batches[bi]
            events = events[start:] if bi == first else events
            if not events:
                continue
            if st not in self.gaps and len(self.gaps) >= _MAX_GAPS:
                st = None  # too many threads to name: counted for the whole process
            gap = self.gaps.get(st)
            if gap is None:
                gap = self.gaps[st] = _Gap(events[0][0])
            gap.add(events)

    def _write_gaps(self) -> None:
        """For each thread whose events were not written: a ``dropped`` record (how
        many) and a ``resync`` record (which lock acquires and releases were lost)."""
        out = bytearray()
        now = time.monotonic_ns()
        for st, gap in self.gaps.items():
            if st is None:
                if gap.dropped:
                    out += b'{"k":"dropped","ts":%d,"count":%d}\n' % (now, gap.dropped)
                continue
            tid = self._define(st, out)
            if gap.dropped:
                out += b'{"k":"dropped","ts":%d,"th":%d,"count":%d}\n' % (now, tid, gap.dropped)
            if gap.lost:
                locks = [{"obj": self._define(obj, out),
                          "task": self._define(task, out) if task is not None else None,
                          "acquired": acquired, "released": released}
                         for obj, task, acquired, released in gap.locks.values()]
                out += dumps({"k": "resync", "ts": now, "th": tid, "lost": gap.lost,
                              "since": gap.since, "locks": locks})
        self._write(bytes(out))
        self.gaps = {}

    def _define(self, obj: Any, out: bytearray) -> int:
        """Write ``obj``'s definition in this part if not yet done, after those it
        refers to (a thread's or task's parent, a resource's owner).  Iterative:
        a chain of parents (a periodic job creating its successor) can be long."""
        if _define_state is not None and type(obj) is _core.ThreadState:
            oid = _define_state(obj, self.written, out)  # (the same, in C)
            if oid >= 0:
                return oid
        oid = obj._ls_id
        if oid in self.written:
            return oid
        written = self.written
        written.add(oid)
        todo = [(obj, False, 0)]
        while todo:
            o, deps_done, depth = todo.pop()
            if deps_done:
                self._write_def(o, out)
                continue
            todo.append((o, True, depth))
            # Ancestors are followed MAX_ANCESTORS deep: while the writer is behind, the
            # buffered events keep a whole chain of self-rescheduling tasks alive, and
            # defining all of it in every new part made parts of definitions only.
            # Beyond that depth a definition names no parent (_write_def), as one
            # repeated in a later part does; the part that first defined it named it.
            if hasattr(o, "parent_ref"):
                depth += 1
                if depth > MAX_ANCESTORS:
                    continue
            for dep in _deps_of(o):
                did = dep._ls_id
                if did not in written:
                    written.add(did)
                    todo.append((dep, False, depth))
        return oid

    def _write_def(self, obj: Any, out: bytearray) -> None:
        rec = obj._ls_record()
        parent = rec.get("parent")
        if parent and parent not in self.written and rec.get("k") in ("thread", "task"):
            # The parent is gone and was not defined in this part: a repeated
            # definition then names no parent (the first part that defined it did).
            rec = {**rec, "parent": None}
        for key in ("site", "coro_site", "user_site"):  # (coro_site: tasks; user_site: locks, resources)
            site = rec.get(key)
            if site:
                self._define_site(site, out)
        out += dumps(rec)

    def _define_site(self, sid: int, out: bytearray) -> int:
        if sid not in self.written_sites:
            self.written_sites.add(sid)
            out += dumps(_core.site_record(sid))
        return sid

    def _rotate_if_full(self, out: bytearray, at: int = 0) -> bool:
        """Start a new part when this one is full (checked between events, so a part
        overshoots the limit by at most a few dozen lines)."""
        if self.max_bytes and self.part_bytes + len(out) >= self.max_bytes:
            self._write(bytes(out))
            out.clear()
            self.committed = (self.batch, at)
            self._rotate()
            return True
        return False

    def _encode(self, st: Any, events: list, out: bytearray, start: int = 0) -> None:
        # The writer's inner loop: its CPU is taken from the program (the GIL), so the
        # common shape (a lock event outside any task) has a flat path of its own.
        self._rotate_if_full(out, start)  # (events[:start] are in `out` already)
        tid = self._define(st, out)
        written, wsites = self.written, self.written_sites
        ops = _OPS
        check_size = 0 if not self.max_bytes else 1
        i, n = start, len(events)
        while i < n:
            if _encode_fast is not None:
                # C: every event of the common shape whose definitions are written;
                # it stops where the Python code below is needed, or at ``limit``.
                limit = self.max_bytes - self.part_bytes if self.max_bytes else -1
                # (it writes the definitions of what the events name on its way)
                i = _encode_fast(events, i, tid, written, wsites, ops, out, limit,
                                 self._define, self._define_site)
                if i >= n:
                    break
                if self._rotate_if_full(out, i):
                    tid = self._define(st, out)
                    written, wsites = self.written, self.written_sites
            elif check_size:
                check_size += 1
                if not check_size & 63 and self._rotate_if_full(out, i):
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
            if op == "resync":
                self._encode_resync(ev[0], tid, ev[2], out)
                continue
            obj = ev[2]
            oid = self._define(obj, out)
            if op == "name":
                out += dumps({"k": "name", "id": oid, "name": ev[5]["name"]})
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
            out += dumps(rec)

    def _encode_summary(self, out: bytearray, now: int, final: bool) -> None:
        """The summary's ``dep`` and ``hist`` records that are due (all dependencies
        again in a new part: each part is self-contained)."""
        self._rotate_if_full(out)
        rotated = self.summary_part != self.part
        self.summary_part = self.part
        # (records() names objects through define, which writes their definitions first)
        def define_site(sid: int) -> int:
            self._define_site(sid, out)
            return sid

        for rec in self.summary.records(lambda obj: self._define(obj, out), now, final, rotated,
                                        define_site):
            out.extend(dumps(rec))

    def _encode_resync(self, ts: int, tid: int, gap: Any, out: bytearray) -> None:
        """The ``resync`` record closing a thread's gap (see docs/trace-format.md)."""
        locks = []
        for obj, task, acquired, released in gap.locks.values():
            locks.append({"obj": self._define(obj, out),
                          "task": self._define(task, out) if task is not None else None,
                          "acquired": acquired, "released": released})
        out += dumps({"k": "resync", "ts": ts, "th": tid, "lost": gap.lost,
                      "since": gap.since, "locks": locks})

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
        _core.set_waker(None)
        self.flush(final=True)
        if not self._io.acquire(True, 5.0):
            return
        try:
            # While paused, the pause message has said it all: no end record.
            if not self.failed and not self.paused and self.fd >= 0:
                if not self.header_written:
                    self._write_header()
                self._write(self._end_record(reason))
        except OSError as exc:
            if not self.told:
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
