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

import atexit
import os
import sys
from typing import Any, TypeVar

from . import _core, _threading
from ._disk import DEFAULT_MAX_TOTAL_MB, UnsafeFolder
from ._sink import FORMAT, VERSION, Sink

__all__ = ["start", "stop", "flush", "name", "segment", "trace_files", "is_recording",
           "Recording", "FORMAT", "VERSION", "DEFAULT_OUT_DIR"]

DEFAULT_OUT_DIR = "lockscope-traces"

_sink: Sink | None = None
_last_files: list[str] = []
_options: dict | None = None
_hooks_installed = False

T = TypeVar("T")


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


def start(out_dir: str | os.PathLike | None = None, *, stacks: int = 0,
          flush_interval: float = 0.25, max_file_mb: float = 64,
          max_buffer_events: int = 1_000_000, trace_asyncio: bool = True,
          max_total_mb: float = DEFAULT_MAX_TOTAL_MB, min_free_mb: float | None = None,
          redact_argv: bool = True) -> Recording:
    """Start recording every lock created from now on.

    ``out_dir``: where trace files go (default ``./lockscope-traces``, or ``LOCKSCOPE_OUT``).
    ``stacks``: record this many frames of stack the first time each call site is seen.
    ``flush_interval``: seconds between writes to disk (the file is never more stale).
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
    An unusable output directory (or one another user owns, or a symbolic link)
    disables recording with one warning; it never raises.
    """
    global _sink, _options
    if _core.ON and _sink is not None:
        return Recording(True)
    if out_dir is None:
        out_dir = os.environ.get("LOCKSCOPE_OUT") or DEFAULT_OUT_DIR
    options = {"out_dir": os.fspath(out_dir), "stacks": int(stacks),
               "flush_interval": float(flush_interval), "max_file_mb": float(max_file_mb),
               "max_buffer_events": int(max_buffer_events),
               "trace_asyncio": bool(trace_asyncio), "max_total_mb": float(max_total_mb),
               "min_free_mb": None if min_free_mb is None else float(min_free_mb),
               "redact_argv": bool(redact_argv)}
    return _start(options, parent_run=None)


def _start(options: dict, parent_run: str | None) -> Recording:
    global _sink, _options
    settings = {k: v for k, v in options.items() if k != "out_dir"}
    # Which implementation of the hot path recorded (for reading overhead figures).
    settings["accelerator"] = "c" if _core.speedups is not None else "python"
    sink = Sink(options["out_dir"], settings, options["flush_interval"],
                options["max_file_mb"], parent_run=parent_run,
                max_total_mb=options.get("max_total_mb", 0),
                min_free_mb=options.get("min_free_mb", 0),
                redact_argv=options.get("redact_argv", True))
    try:
        sink.open()
    except UnsafeFolder as exc:
        sys.stderr.write(f"lockscope: refusing to write traces to {options['out_dir']!r} "
                         f"({exc}); recording disabled\n")
        return Recording(False)
    except OSError as exc:
        sys.stderr.write(f"lockscope: cannot write traces to {options['out_dir']!r} "
                         f"({exc.strerror or exc}); recording disabled\n")
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
    sink.start_writer()
    return Recording(True)


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


def stop() -> list[str]:
    """Stop recording, restore the original primitives, flush and close the files.

    Returns the trace files this process wrote."""
    global _sink
    _core.ON = False
    _threading.uninstall()
    _uninstall_asyncio()
    sink, _sink = _sink, None
    if sink is not None:
        sink.close("stop")
        _last_files[:] = sink.files
    return list(_last_files)


def flush() -> None:
    """Write every event recorded so far to the trace file now (no-op when off).

    For readers inside the process (the pytest plugin's per-test findings); the
    background writer flushes on its own every ``flush_interval``."""
    sink = _sink
    if sink is not None:
        sink.flush()


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

def _install_process_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)


def _at_exit() -> None:
    global _sink
    sink = _sink
    if sink is None:
        return
    try:
        _core.ON = False
        sink.close("exit")
        _last_files[:] = sink.files
    except Exception:
        pass


def _after_fork_in_child() -> None:
    """The child of a fork is a new run: it starts its own file and writer."""
    global _sink
    parent = _sink
    if parent is None or not _core.ON:
        return
    try:
        _core.ON = False
        parent.abandon()
        _sink = None
        _core.states.clear()
        try:
            st = _core._tls.st
        except AttributeError:
            st = None
        if st is not None:
            st.buf.clear()  # the parent's events, not ours
            st.parent = None
            st.ident = None
            _core.states.append(st)
        _start(dict(_options or {}), parent_run=parent.run)
    except Exception:
        _core.ON = False


# LOCKSCOPE_OUT: the start-up hook starts recording once threading is imported; when
# that import was this package's own, it could not start before the package was complete.
if "lockscope_startup" in sys.modules:
    sys.modules["lockscope_startup"].package_ready()
