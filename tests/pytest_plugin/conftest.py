"""Shared by the plugin's tests."""
from __future__ import annotations

import threading

import pytest

# In-process pytester runs drop the modules they imported when they end, and
# DuckDB's native extension cannot be imported a second time in one process:
# import the analysis (and DuckDB) here, once, before any inner run does.
import analyzer.analysis  # noqa: F401
import recorder


@pytest.fixture(autouse=True)
def no_leaked_recording():
    """Every in-process run must leave the recorder off and threading restored."""
    lock_type, rlock_type = threading.Lock, threading.RLock
    yield
    assert not recorder.is_recording()
    assert threading.Lock is lock_type and threading.RLock is rlock_type
