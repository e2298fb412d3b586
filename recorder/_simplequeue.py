"""Traced ``queue.SimpleQueue`` (a C type that does not use ``threading.Condition``).

``get`` that finds the queue empty and blocks is a ``wait-begin`` / ``wait-end`` on
the queue; ``put`` is a ``signal`` (``sig: put``) on it.  Used by
``concurrent.futures.ThreadPoolExecutor`` for its work queue.
"""

from __future__ import annotations

import queue

from . import _core
from ._core import define, site_id

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs milliseconds at start-up)
    from typing import Any

_OrigSimpleQueue = queue.SimpleQueue
_Empty = queue.Empty


_emit = _core.emit
_emit_here = _core.emit_here


class SimpleQueue(_OrigSimpleQueue):
    """A traced ``queue.SimpleQueue``."""

    def __init__(self) -> None:
        define(self, "resource", "queue.SimpleQueue", 3)

    def _ls_record(self) -> dict:
        return self._ls_def

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if _core.ON:
            _emit_here("signal", self, 2, {"sig": "put"})
        _OrigSimpleQueue.put(self, item, block, timeout)

    def put_nowait(self, item: Any) -> None:
        self.put(item, False)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not block or not _core.ON or (timeout is not None and timeout < 0):
            return _OrigSimpleQueue.get(self, block, timeout)
        try:
            return _OrigSimpleQueue.get(self, False)
        except _Empty:
            pass
        site = site_id(2)
        _emit("wait-begin", self, site, {"timeout": timeout} if timeout is not None else None)
        outcome = "error"
        try:
            item = _OrigSimpleQueue.get(self, True, timeout)
            outcome = "ok"
            return item
        except _Empty:
            outcome = "timeout"
            raise
        finally:
            _emit("wait-end", self, site, {"outcome": outcome})

    # get_nowait is the original's: a get that does not block records nothing (see
    # get), and 3.13's ThreadPoolExecutor worker calls it before each job.

    def __repr__(self) -> str:
        return f"<queue.SimpleQueue object #{self._ls_id} at {id(self):#x}>"


if _core.speedups is not None:  # the same put and get in C: no recorder frame each
    _core.speedups.set_simplequeue_hooks(_OrigSimpleQueue.put, _OrigSimpleQueue.get, _Empty)
    SimpleQueue.put = _core.typed(SimpleQueue, _core.speedups.simplequeue_put)
    SimpleQueue.get = _core.typed(SimpleQueue, _core.speedups.simplequeue_get)


def install() -> None:
    queue.SimpleQueue = SimpleQueue


def uninstall() -> None:
    queue.SimpleQueue = _OrigSimpleQueue


