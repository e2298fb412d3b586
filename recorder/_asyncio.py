"""asyncio layer of the recorder: task identity and traced asyncio primitives.

``install()`` is called by ``recorder.start()``.  When asyncio is already imported it
hooks it at once; otherwise (recording started at interpreter start-up through
``LOCKSCOPE_OUT``) it waits for the program's own ``import asyncio`` so that a
program that never uses asyncio does not pay for importing it; when recording starts
from inside that import (asyncio imports threading), it waits for the import to end.
"""

from __future__ import annotations

from . import _on_import

_installed = False


def _install_now(_module: object = None) -> None:
    global _installed
    from . import _aio_await, _aio_sync, _aio_tasks

    _aio_tasks.install()
    _aio_sync.install()
    _aio_await.install()
    _installed = True


def install() -> None:
    """Trace asyncio now, or as soon as the program imports it."""
    _on_import.when_imported("asyncio", _install_now)


def uninstall() -> None:
    """Restore asyncio (and forget a pending install)."""
    global _installed
    _on_import.forget("asyncio")
    if _installed:
        from . import _aio_await, _aio_sync, _aio_tasks

        _aio_await.uninstall()
        _aio_sync.uninstall()
        _aio_tasks.uninstall()
        _installed = False
