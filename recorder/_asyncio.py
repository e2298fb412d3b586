"""asyncio layer of the recorder: task identity and traced asyncio primitives.

``install()`` is called by ``recorder.start()``.  When asyncio is already imported it
hooks it at once; otherwise (recording started at interpreter start-up through
``LOCKSCOPE_OUT``) it waits for the program's own ``import asyncio`` so that a
program that never uses asyncio does not pay for importing it; when recording starts
from inside that import (asyncio imports threading), it waits for the import to end.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs milliseconds at start-up)
    from typing import Any

_installed = False
_hook: _AsyncioImportHook | None = None
_waiting = False  # installing once the import of asyncio in progress completes


class _AsyncioImportHook:
    """A one-shot meta path finder: lets ``asyncio`` import normally, then installs."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "asyncio":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        exec_module = getattr(loader, "exec_module", None)
        if exec_module is None:
            return spec

        def exec_then_install(module: Any) -> None:
            exec_module(module)
            _remove_hook()
            sys.modules.setdefault("asyncio", module)
            try:
                _install_now()
            except Exception as exc:
                sys.stderr.write(f"lockscope: asyncio tracing unavailable ({exc!r})\n")

        try:
            loader.exec_module = exec_then_install  # this loader instance only
        except AttributeError:
            return spec
        return spec


def _remove_hook() -> None:
    global _hook
    if _hook is not None:
        try:
            sys.meta_path.remove(_hook)
        except ValueError:
            pass
        _hook = None


def _install_now() -> None:
    global _installed
    from . import _aio_await, _aio_sync, _aio_tasks

    _aio_tasks.install()
    _aio_sync.install()
    _aio_await.install()
    _installed = True


def _install_after_import() -> None:
    global _waiting
    if not _waiting:
        return
    _waiting = False
    try:
        _install_now()
    except Exception as exc:
        sys.stderr.write(f"lockscope: asyncio tracing unavailable ({exc!r})\n")


def _wait_for_import() -> bool:
    """asyncio is being imported right now (the recorder started from inside that
    import): install when it completes, not half-way.  False if that cannot be done."""
    global _waiting
    try:
        from lockscope_startup import call_after_import
    except ImportError:
        return False
    _waiting = True
    if call_after_import("asyncio", _install_after_import):
        return True
    _waiting = False
    return False


def install() -> None:
    """Trace asyncio now, or as soon as the program imports it."""
    global _hook
    if "asyncio" in sys.modules:
        spec = getattr(sys.modules["asyncio"], "__spec__", None)
        if getattr(spec, "_initializing", False) and _wait_for_import():
            return
        _install_now()
    elif _hook is None:
        _hook = _AsyncioImportHook()
        sys.meta_path.insert(0, _hook)


def uninstall() -> None:
    """Restore asyncio (and forget a pending install)."""
    global _installed, _waiting
    _remove_hook()
    _waiting = False
    if _installed:
        from . import _aio_await, _aio_sync, _aio_tasks

        _aio_await.uninstall()
        _aio_sync.uninstall()
        _aio_tasks.uninstall()
        _installed = False
