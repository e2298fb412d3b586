"""CPython's own synchronisation-primitive suites, run against the traced primitives
while the recorder is on (the traced classes must behave exactly like the originals).

The suites come from tests/cpython/lock_tests.py (vendored from CPython 3.11.7) on
Python 3.11, and from the interpreter's own ``test.lock_tests`` on other versions
(the suites follow their ``test.support``).  Without ``test.support`` (some distro
builds strip the test package) the module is skipped.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from pathlib import Path

import pytest

import recorder
from recorder import _threading as traced

VENDORED = Path(__file__).resolve().parents[1] / "cpython" / "lock_tests.py"


def _load_lock_tests():
    pytest.importorskip("test.support", reason="CPython's test.support is not installed")
    if sys.version_info[:2] == (3, 11):
        spec = importlib.util.spec_from_file_location("lockscope_cpython_lock_tests", VENDORED)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module("test.lock_tests")
    except ImportError:
        pytest.skip("test.lock_tests is not available for this Python")


lock_tests = _load_lock_tests()
_session: dict = {}


RECORDING_SPANS_TESTS = True  # one recording over the suites, checked by test_zz


@pytest.fixture(scope="module", autouse=True)
def _recording(tmp_path_factory):
    """The whole module runs with the recorder on."""
    out = tmp_path_factory.mktemp("cpython-suites")
    assert recorder.start(out, flush_interval=0.1).active
    _session["out"] = out
    yield
    if recorder.is_recording():
        recorder.stop()


@pytest.fixture(autouse=True)
def _note_suite(request):
    """Which suite classes ran in this process (pytest -n may spread them)."""
    if request.cls is not None:
        _session.setdefault("ran", set()).add(request.cls.__name__)


def test_primitives_are_traced_during_the_suites():
    assert type(threading.Lock()) is traced.Lock
    assert type(threading.RLock()) is traced.RLock
    assert type(threading.Event()._cond) is traced.Condition
    assert type(threading.Event()._cond._lock) is traced.Lock


class TestTracedLock(lock_tests.LockTests):
    locktype = staticmethod(lambda: threading.Lock())


class TestTracedRLock(lock_tests.RLockTests):
    locktype = staticmethod(lambda: threading.RLock())


class TestTracedConditionAsRLock(lock_tests.RLockTests):
    # A Condition exports its (traced) RLock's API.
    locktype = staticmethod(lambda: threading.Condition())

    def test_recursion_count(self):
        self.skipTest("Condition does not expose _recursion_count()")


class TestTracedEvent(lock_tests.EventTests):
    eventtype = staticmethod(lambda: threading.Event())


class TestTracedCondition(lock_tests.ConditionTests):
    condtype = staticmethod(lambda *a, **k: threading.Condition(*a, **k))


class TestTracedSemaphore(lock_tests.SemaphoreTests):
    semtype = staticmethod(lambda *a, **k: threading.Semaphore(*a, **k))


class TestTracedBoundedSemaphore(lock_tests.BoundedSemaphoreTests):
    semtype = staticmethod(lambda *a, **k: threading.BoundedSemaphore(*a, **k))


class TestTracedBarrier(lock_tests.BarrierTests):
    barriertype = staticmethod(lambda *a, **k: threading.Barrier(*a, **k))


def test_zz_trace_of_the_suites_is_valid():
    """Runs last: the suites' trace validates against the schema, record by record."""
    from lockscope_tracecheck import Trace

    suites = {name for name, c in globals().items()
              if name.startswith("TestTraced") and isinstance(c, type)}
    if suites - _session.get("ran", set()):
        pytest.skip("some of the suites ran in another process (pytest -n)")
    trace = Trace(recorder.stop())
    ops = trace.ops()
    # (the suites start their threads with _thread.start_new_thread: no start/join here)
    for op in ("wait", "acquire", "release", "timeout", "try-fail", "wait-begin",
               "wait-end", "signal"):
        assert ops[op] > 0, f"no {op} events in {dict(ops)}"
    types = {d.get("type") for d in trace.defs.values()}
    assert {"threading.Lock", "threading.RLock", "threading.Semaphore",
            "threading.BoundedSemaphore", "threading.Condition", "threading.Event",
            "threading.Barrier"} <= types
