"""Shared by the plugin's tests."""
from __future__ import annotations

# In-process pytester runs drop the modules they imported when they end. DuckDB's
# native extension cannot be imported a second time in one process, and the
# recorder's asyncio layer patches the asyncio module it first imported (a later
# run's fresh `asyncio` would be untraced): import them here, once, before any
# inner run does.
import asyncio
import threading

import pytest

import analyzer.analysis  # noqa: F401
import recorder
import recorder._asyncio  # noqa: F401


@pytest.fixture(autouse=True)
def no_leaked_recording():
    """Every in-process run must leave the recorder off and threading restored."""
    lock_type, rlock_type, alock_type = threading.Lock, threading.RLock, asyncio.Lock
    yield
    assert not recorder.is_recording()
    assert threading.Lock is lock_type and threading.RLock is rlock_type
    assert asyncio.Lock is alock_type


@pytest.fixture(autouse=True)
def not_an_xdist_worker(monkeypatch):
    """An inner run is a session of its own, even when this suite runs under xdist:
    the plugin takes PYTEST_XDIST_WORKER (set in an xdist worker's environment) to
    mean that its process is a worker, and a worker leaves the report to its
    controller.  (Without this, ``pytest -n 2`` failed 20 of these tests.)"""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
