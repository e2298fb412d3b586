"""lockscope recorder: trace lock activity of a running Python program to JSONL files.

Turn it on with one call::

    import recorder
    recorder.start(out_dir="/var/log/lockscope")   # or: with recorder.start(...):
    ...
    recorder.stop()

or without touching the code: ``lockscope run app.py`` or ``LOCKSCOPE_OUT=DIR`` in the
environment of any Python process where lockscope is installed.  Only the standard
library and orjson are imported.

PYTEST_DONT_REWRITE (may be imported at start-up, before pytest marks it for rewriting)
"""

from __future__ import annotations

import _thread
import atexit
import functools
import operator
import os
import sys

from . import _core, _text, _threading
from . import _options as _opts
from ._disk import DEFAULT_MAX_TOTAL_MB, UnsafeFolder
from ._sink import FORMAT, VERSION, Sink

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs milliseconds at start-up)
    from typing import Any, TypeVar

    T = TypeVar("T")

__all__ = ["start", "stop", "flush", "name", "segment", "trace_files", "is_recording", "cost",
           "Recording", "FORMAT", "VERSION", "DEFAULT_OUT_DIR"]

DEFAULT_OUT_DIR = "lockscope-traces"

_sink: Sink | None = None
_last_files: list[str] = []
_options: dict | None = None
_hooks_installed = False


class Recording:
    """Handle returned by :func:`start`; a context manager that stops recording on exit."""

    def __init__(self, active: bool) -> None:
        self.active = active

    @property
    def files(self) -> list[str]:
        """Trace files written so far by this process."""
        return trace_files()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: Any) -> None:
        stop()


def is_recording() -> bool:
    """True while the recorder is on."""
    return _core.ON


def start(out_dir: str | os.PathLike | None = None, *, stacks: int = _core.DEFAULT_STACK_DEPTH,
          flush_interval: float = 0.25, max_file_mb: float = 64,
          max_buffer_events: int = 1_000_000, trace_asyncio: bool = True,
          max_total_mb: float = DEFAULT_MAX_TOTAL_MB, min_free_mb: float | None = None,
          redact_argv: bool = True, mode: str | None = None,
          summary_threshold_ms: float | None = None) -> Recording:
    """Start recording every lock created from now on.

    ``out_dir``: where trace files go (default ``./lockscope-traces``, or ``LOCKSCOPE_OUT``).
    ``stacks``: record this many frames of stack the first time each call site is seen
    (default 8; 0 = none; lockscope's own frames are left out).
    ``flush_interval``: seconds between writes to disk (the file is never more stale;
    at least 0.01).
    ``max_file_mb``: start a new part when a file reaches this size (0 = never).
    ``max_buffer_events``: events held in memory (all threads together, plus up to 64
    for each thread whose own buffer is nearly empty) before new ones are dropped and
    counted; the writer is woken early once an eighth of it is buffered, and past
    three quarters threads that record pause briefly for it (not when it is stuck).
    ``max_total_mb``: the parts of this run together stay under this size; the oldest
    parts are deleted (0 = no cap).
    ``min_free_mb``: below this much free space on the disk, recording pauses (events
    are counted as dropped) until space is back; default max(256 MB, 5 % of the
    filesystem), 0 = no floor.
    ``redact_argv``: mask secret-looking values of the command line in the trace header.
    ``mode``: ``"full"`` (every event) or ``"summary"`` (for always-on use: each distinct
    lock dependency once with counts, hold/wait histograms, and in full only waits and
    holds over ``summary_threshold_ms`` (default 10), give-ups, waits under a lock and
    thread/task lifecycle; see docs/recorder.md). Default ``LOCKSCOPE_MODE`` or full.
    Never raises: an invalid option gives one warning and its default is used; an
    unusable output directory (or one another user owns, or a symbolic link)
    disables recording with one warning.
    """
    global _sink, _options
    if _core.ON and _sink is not None:
        return Recording(True)
    if _in_subinterpreter():
        sys.stderr.write("lockscope: not recording in a subinterpreter "
                         "(only the main interpreter is recorded)\n")
        return Recording(False)
    try:
        default_dir = os.environ.get("LOCKSCOPE_OUT") or DEFAULT_OUT_DIR
        options = {
            "out_dir": default_dir if out_dir is None else _opts.out_dir(out_dir, default_dir),
            "stacks": _opts.whole("stacks", stacks, _core.DEFAULT_STACK_DEPTH, 0),
            "flush_interval": _opts.flush_interval(flush_interval, 0.25),
            "max_file_mb": _opts.amount("max_file_mb", max_file_mb, 64.0, 0),
            "max_buffer_events": _opts.whole("max_buffer_events", max_buffer_events,
                                             1_000_000, 1),
            "trace_asyncio": bool(trace_asyncio),
            "max_total_mb": _opts.amount("max_total_mb", max_total_mb,
                                         float(DEFAULT_MAX_TOTAL_MB), 0),
            "min_free_mb": None if min_free_mb is None else _opts.amount(
                "min_free_mb", min_free_mb, None, 0),
            "redact_argv": bool(redact_argv),
            "mode": _opts.mode(os.environ.get("LOCKSCOPE_MODE") or "full" if mode is None else mode),
        }
        if options["mode"] == "summary":
            env_ms = os.environ.get("LOCKSCOPE_SUMMARY_THRESHOLD_MS")
            options["summary_threshold_ms"] = _opts.amount(
                "summary_threshold_ms", summary_threshold_ms if summary_threshold_ms is not None
                else _opts.env_number(env_ms, 10.0), 10.0, 0)
        return _start(options, parent_run=None)
    except Exception as exc:  # a bug of ours must never reach the program
        _core.ON = False
        _opts._warn(f"recorder not started ({exc!r})")
        return Recording(False)


def _start(options: dict, parent_run: str | None, lazy_open: bool = False) -> Recording:
    """Start a run; its file is created now (or, ``lazy_open``, when first written)
    and its writer thread when a thread first records."""
    global _sink, _options
    settings = {k: v for k, v in options.items() if k != "out_dir"}
    # Which implementation of the hot path recorded (for reading overhead figures).
    settings["accelerator"] = "c" if _core.speedups is not None else "python"
    sink = Sink(options["out_dir"], settings, options["flush_interval"],
                options["max_file_mb"], parent_run=parent_run,
                max_total_mb=options.get("max_total_mb", 0),
                min_free_mb=options.get("min_free_mb", 0),
                redact_argv=options.get("redact_argv", True),
                summary=_summary_of(options))
    if not lazy_open and not _open(sink):
        return Recording(False)
    _core.init_skips()
    _core.STACK_DEPTH = options["stacks"]
    _core.set_buffer_cap(options["max_buffer_events"])
    _sink, _options = sink, options
    _threading.install()
    if options.get("trace_asyncio"):
        _install_asyncio()
    _install_process_hooks()
    _core.ON = True
    if _core.states:  # threads recorded before (an earlier run): they need it now
        _ensure_writer()
    else:
        _core.on_bind = _ensure_writer
    return Recording(True)


def _stop_summary_filter() -> None:
    """Turn the hot path's summary filter off: a summary recording that did not end
    through its final records (a full disk, a failed writer) must not leave it on
    for the next recording."""
    start = getattr(_core.speedups, "summary_start", None)
    if start is not None:
        start(None)


def _summary_of(options: dict) -> Any:
    """The writer's summary filter in summary mode, else None."""
    if options.get("mode") != "summary":
        _stop_summary_filter()
        return None
    from ._summary import Summary

    summary = Summary(threshold_ms=options.get("summary_threshold_ms", 10.0))
    summary.start_filter()
    return summary


def _open(sink: Sink, header_now: bool = False) -> bool:
    """Create the sink's first file; False (recording off, one warning) if impossible."""
    try:
        sink.open(header_now)
        return True
    except UnsafeFolder as exc:
        _core.ON = False
        sys.stderr.write(f"lockscope: refusing to write traces to {sink.out_dir!r} "
                         f"({exc}); recording disabled\n")
        return False
    except OSError as exc:
        _core.ON = False
        sys.stderr.write(f"lockscope: cannot write traces to {sink.out_dir!r} "
                         f"({exc.strerror or exc}); recording disabled\n")
        return False


def _in_subinterpreter() -> bool:
    try:
        from lockscope_startup import in_subinterpreter
    except ImportError:  # the start-up hook is not installed (a source checkout)
        return False
    return in_subinterpreter()


def _ensure_writer() -> None:
    """Start the writer thread of the current run (and create its file if not yet)."""
    _core.on_bind = None
    sink = _sink
    if sink is None or sink.closed or not _core.ON:
        return
    opened_now = not sink.files
    # The file gets its header now and its first events at once, so that a process
    # killed early (a pool worker crashed or terminated on purpose) leaves no empty
    # file; one made now is made with its header. (Under ``python -m`` the header
    # waits for the first flush: runpy sets argv[0] only once the module's packages
    # are imported.)
    header_now = sink.parent_run is not None or sys.argv[:1] != ["-m"]
    if opened_now and not _open(sink, header_now):
        return
    if not sink.header_written and header_now:
        sink.write_header_now()
    try:
        if _text.fast_dumps is None:  # (the C accelerator encodes without orjson)
            _text.load_orjson()  # here, not at start-up or in the writer: see there
    finally:  # (a KeyboardInterrupt during the import goes on to the program)
        sink.start_writer()
    if opened_now:  # (its first events: once the one being recorded is buffered)
        _core.wake_after_next_event()


def _install_asyncio() -> None:
    try:
        from . import _asyncio  # noqa: F401  (added by the asyncio layer)
    except ImportError:
        return
    try:
        _asyncio.install()
    except Exception as exc:  # never break the program for a tracing feature
        sys.stderr.write(f"lockscope: asyncio tracing unavailable ({exc!r})\n")


def _uninstall_asyncio() -> None:
    mod = sys.modules.get(__name__ + "._asyncio")
    if mod is not None:
        try:
            mod.uninstall()
        except Exception:
            pass


def _discard() -> None:
    """Stop recording and remove this run's files (a process that must leave no trace:
    the lockscope command itself, a program that never started)."""
    if not is_recording():
        return
    try:
        files = stop()
    except Exception:
        return
    for path in files:
        try:
            os.unlink(path)
        except OSError:
            pass


def stop() -> list[str]:
    """Stop recording, restore the original primitives, flush and close the files.

    Returns the trace files this process wrote."""
    global _sink
    _core.ON = False
    _core.on_bind = _core.on_thread_end = None
    _threading.uninstall()
    _uninstall_asyncio()
    _uninstall_exit_hook()
    sink, _sink = _sink, None
    if sink is not None:
        _close(sink, "stop")
    _stop_summary_filter()
    return list(_last_files)


def flush() -> None:
    """Write every event recorded so far to the trace file now (no-op when off).

    For readers inside the process (the pytest plugin's per-test findings); the
    background writer flushes on its own every ``flush_interval``."""
    sink = _sink
    if sink is not None and (sink.files or _open(sink)):
        sink.flush()


def cost() -> dict | None:
    """What recording has cost this process so far, or None when it is off.

    The same running totals as the ``cost`` field of the trace's ``beat`` and
    ``end`` records: ``cpu_ns`` (the whole process's CPU time since recording
    started at ``since``), ``writer_ns`` (CPU time spent writing the trace),
    ``events`` (taken from the threads' buffers) and ``bytes`` (written).  For a
    service to export with its own metrics."""
    sink = _sink
    if sink is None or not _core.ON:
        return None
    try:
        return sink.cost()
    except Exception:  # (never raise into the program for a figure)
        return None


def trace_files() -> list[str]:
    """Files written by the current recording (or the last one, once stopped)."""
    if _sink is not None:
        return list(_sink.files)
    return list(_last_files)


def name(obj: T, label: str) -> T:
    """Give a traced lock, condition, event, queue or thread a readable name; returns ``obj``.

    Unnamed locks are known by their creation site.  Objects created while the
    recorder was off are returned unchanged."""
    try:
        target = obj
        if not hasattr(target, "_ls_def"):
            # Library objects: name the primitive that carries their identity.
            for attr in ("_ls_state", "_cond", "not_empty", "mutex", "_lock"):
                inner = getattr(obj, attr, None)
                if inner is not None and (hasattr(inner, "_ls_def")
                                          or isinstance(inner, _core.ThreadState)):
                    target = inner
                    break
        if isinstance(target, _core.ThreadState):
            if target is not obj and target.ended and target.daemon is None:
                target.remember(obj)  # (its end left them unread: see thread_end)
            target.name = label
            _core.emit("name", target, 0, {"name": label})
        else:
            _core.label(target, str(label))
    except Exception:
        pass
    return obj


class segment:
    """Mark a span of the calling thread (a test case, a request) as its own actor.

    ``with recorder.segment("tests/test_x.py::test_a", kind="test"): ...``"""

    def __init__(self, label: str, kind: str = "test") -> None:
        self._ls_id = _core.next_id()
        self._def = {"k": "segment", "id": self._ls_id, "kind": kind, "name": str(label)}

    def _ls_record(self) -> dict:
        return self._def

    def __enter__(self) -> segment:
        _core.emit("segment-begin", self, _core.site_id(2))
        return self

    def __exit__(self, *exc: Any) -> None:
        _core.emit("segment-end", self, 0)


# ------------------------------------------------------ exit and fork handling

_real_os_exit = os._exit
# From 3.13 fork()'s multi-threaded warning counts threads after the after-fork hooks:
# there os.fork is wrapped to resume the writer once fork() has returned.
_real_os_fork = getattr(os, "fork", None) if sys.version_info >= (3, 13) else None
_writer_paused = False
_forking_from_main = True
_fork_wrapper_thread: int | None = None  # the thread inside _os_fork, if any


def _install_process_hooks() -> None:
    global _hooks_installed
    if os._exit is _real_os_exit:
        os._exit = _os_exit
    if _real_os_fork is not None and os.fork is _real_os_fork:
        os.fork = _os_fork
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                            after_in_child=_after_fork_in_child)


def _uninstall_exit_hook() -> None:
    if os._exit is _os_exit:
        os._exit = _real_os_exit
    if _real_os_fork is not None and os.fork is _os_fork:
        os.fork = _real_os_fork


def _close(sink: Sink, reason: str) -> None:
    """Flush ``sink``, write its ``end`` record and close it (its file is created
    first if nothing was written yet: every run leaves a complete trace)."""
    try:
        if not sink.closed and (sink.files or _open(sink)):
            sink.close(reason)
        _last_files[:] = sink.files
    except Exception:
        pass


def _finish(reason: str = "exit") -> None:
    """The process is ending: finish the trace (no-op when not recording)."""
    sink = _sink
    if sink is None:
        return
    _core.ON = False
    _core.on_bind = None
    _close(sink, reason)


def _at_exit() -> None:
    _finish("exit")


@functools.wraps(_real_os_exit)
def _os_exit(status):  # noqa: ANN001, ANN202  (the signature of os._exit)
    # Processes that end with os._exit (multiprocessing's fork and forkserver
    # children, for one) skip the exit hooks: finish the trace first.
    try:
        operator.index(status)
    except Exception:
        return _real_os_exit(status)  # raises as the original does
    try:
        _finish("exit")
    except BaseException:
        pass
    _real_os_exit(status)


def _before_fork() -> None:
    """Stop the writer around fork(): the child then starts with one thread, and a
    program with no threads of its own gets no multi-threaded-fork warning (3.12+)."""
    global _writer_paused, _forking_from_main
    sink = _sink
    _writer_paused = False
    if sink is None:
        return
    try:
        _text.wait_for_import(5.0)
        threading = sys.modules.get("threading")
        # A thread started by threading ends through its bootstrap, never through
        # the interpreter's exit (true again in a child forked from such a thread,
        # where that thread becomes threading's "main thread").
        current = threading._active.get(_thread.get_ident()) if threading else None
        _forking_from_main = not isinstance(current, threading.Thread) or isinstance(
            current, (threading._MainThread, threading._DummyThread))
        if threading is not None and len(threading._active) + len(threading._limbo) > 1:
            # The program has threads of its own: fork() warns of them anyway, and
            # the child has only the forking thread. Stopping the writer would only
            # delay the fork (CPython's test_3_join_in_forked_from_thread races it
            # against the main thread's exit).
            return
        _writer_paused = sink.stop_writer()
    except Exception:
        pass


def _after_fork_in_parent() -> None:
    # Through os.fork(), the writer resumes once fork() has returned: on 3.13 the
    # multi-threaded-fork warning counts threads after these hooks.
    if _fork_wrapper_thread != _thread.get_ident():
        _resume_writer()


def _resume_writer() -> None:
    global _writer_paused
    sink = _sink
    if _writer_paused and sink is not None:
        _writer_paused = False
        try:
            sink.start_writer()
        except Exception:
            pass


if _real_os_fork is not None:
    @functools.wraps(_real_os_fork)
    def _os_fork():  # noqa: ANN202  (the signature of os.fork)
        global _fork_wrapper_thread
        parent = os.getpid()
        _fork_wrapper_thread = _thread.get_ident()
        try:
            return _real_os_fork()
        finally:
            # (also when it raised in the parent: the warning made an error)
            _fork_wrapper_thread = None
            if os.getpid() == parent:
                _resume_writer()


def _after_fork_in_child() -> None:
    """The child of a fork is a new run: its own file, created when first written,
    and its own writer, started when it records."""
    global _sink
    _core.let_go_of_threads(_core.bound_state())
    parent = _sink
    if parent is None or not _core.ON:
        return
    try:
        _core.ON = False
        parent.abandon()
        _sink = None
        st = _core.bound_state()
        _core.reset_thread_local()
        if st is not None:
            # The forking thread keeps its identity; it is bound again (starting the
            # writer) at its next event.
            if st._buf is not None:
                st._buf.clear()  # the parent's events, not ours
            st.dropped = st.dropped_reported = 0
            st.parent = None
            st.parent_ref = None
            st.ident = _thread.get_ident()
            st.native_id = _native_id()
            _core.fork_state = st
        _core.on_thread_end = None if _forking_from_main else _after_thread_end
        _start(dict(_options or {}), parent_run=parent.run, lazy_open=True)
    except Exception:
        _core.ON = False


def _after_thread_end() -> None:
    """In a child forked from a thread other than the main one, the process ends
    when its last thread does, without exit hooks: finish the trace then."""
    threading = sys.modules.get("threading")
    if threading is not None and not threading._active and not threading._limbo:
        _core.on_thread_end = None
        _finish("exit")


def _native_id() -> int | None:
    try:
        return _thread.get_native_id()
    except Exception:
        return None


# LOCKSCOPE_OUT: the start-up hook starts recording once threading is imported; when
# that import was this package's own, it could not start before the package was complete.
if "lockscope_startup" in sys.modules:
    sys.modules["lockscope_startup"].package_ready()
