"""Checks shared by every test folder."""
from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _no_recording_left_behind(request):
    """A test that leaves the recorder running makes the next one's start() continue
    the old recording (into the old folder): stop it, and fail the test that left it.
    (Modules whose recording spans their tests say ``RECORDING_SPANS_TESTS = True``.)"""
    yield
    if getattr(request.module, "RECORDING_SPANS_TESTS", False) or "cpython" in request.node.path.parts:
        return  # (tests/cpython: CPython's suites, run under one recording by their harness)
    recorder = sys.modules.get("recorder")
    if recorder is not None and recorder.is_recording():
        recorder.stop()
        pytest.fail("the test left the recorder running", pytrace=False)
