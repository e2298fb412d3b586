"""Run the analysis so that SIGINT/SIGTERM stop it and remove DuckDB's spill directory.

A Python signal handler only runs in the main thread between bytecodes, never
while DuckDB executes a long query there; so the analysis runs in a worker thread
while the main thread waits, interrupts DuckDB on a signal, and removes the spill
directories once the worker has stopped (or after a grace period).
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from . import load as loader

T = TypeVar("T")
GRACE_S = 10.0  # how long an interrupted query may take to stop before we exit anyway


class Interrupted(Exception):
    """The analysis was stopped by a signal (`signum`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def run_interruptible(fn: Callable[[], T]) -> T:
    """`fn()` in a worker thread; on SIGINT/SIGTERM raise Interrupted, spill removed."""
    if threading.current_thread() is not threading.main_thread():
        return fn()  # signal handlers can only be set in the main thread
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # handed to the main thread
            result["error"] = exc

    received: list[int] = []

    def on_signal(signum: int, _frame) -> None:
        received.append(signum)
        loader.interrupt_all()

    worker = threading.Thread(target=work, name="lockscope-analyze", daemon=True)
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker.start()
        deadline = None
        while worker.is_alive():
            worker.join(0.1)
            if received and deadline is None:
                deadline = time.monotonic() + GRACE_S
            if deadline is not None and time.monotonic() > deadline:
                break
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        loader.remove_spill_dirs()
        if worker.is_alive():  # DuckDB did not stop in time: leave without waiting for it
            name = signal.Signals(received[0]).name
            os.write(2, f"lockscope: interrupted by {name} (the analysis did not stop in time)\n".encode())
            os._exit(128 + received[0])
        raise Interrupted(received[0])
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]  # type: ignore[return-value]
