"""Run code when the program imports a module, so that recording never imports it.

``when_imported(name, callback)`` calls ``callback(module)`` at once when ``name`` is
imported; when its import is in progress (recording started from inside it), once
that import completes; otherwise right after the program's own import of it
executes, through a one-shot meta path finder.  A program that never imports
``asyncio`` or ``queue`` does not pay for importing them (2-10 ms).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # (typing costs milliseconds at start-up)
    from collections.abc import Callable
    from typing import Any

# name -> callback(module), for modules not imported yet
_pending: dict[str, Callable[[Any], None]] = {}
_finder: _ImportHook | None = None
# name -> callback, for imports in progress (see _after_import_in_progress)
_waiting: dict[str, Callable[[Any], None]] = {}


def _run(name: str, callback: Callable[[Any], None], module: Any) -> None:
    try:
        callback(module)
    except Exception as exc:
        sys.stderr.write(f"lockscope: {name} tracing unavailable ({exc!r})\n")


class _ImportHook:
    """A meta path finder: lets the pending modules import normally, then calls
    their callbacks (each once)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in _pending:
            return None
        # (lockscope_startup's finder for threading does the same; it imports nothing)
        spec = next((spec for finder in sys.meta_path
                     if finder is not self and hasattr(finder, "find_spec")
                     for spec in (finder.find_spec(name, path, target),) if spec is not None),
                    None)
        exec_module = getattr(getattr(spec, "loader", None), "exec_module", None)
        if exec_module is None:
            return spec

        def exec_then_call(module: Any) -> None:
            exec_module(module)
            callback = _pending.pop(name, None)
            if not _pending:
                self.remove()
            sys.modules.setdefault(name, module)
            if callback is not None:
                _run(name, callback, sys.modules[name])

        try:
            spec.loader.exec_module = exec_then_call  # this loader instance only
        except AttributeError:
            pass
        return spec

    def remove(self) -> None:
        """Leave the meta path (no module is pending any more)."""
        global _finder
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        if _finder is self:
            _finder = None


def _after_import_in_progress(name: str) -> None:
    callback = _waiting.pop(name, None)
    if callback is not None and name in sys.modules:
        _run(name, callback, sys.modules[name])


def when_imported(name: str, callback: Callable[[Any], None]) -> None:
    """Call ``callback(module)`` once ``name`` is imported (now, if it is)."""
    global _finder
    module = sys.modules.get(name)
    if module is not None:
        spec = getattr(module, "__spec__", None)
        if getattr(spec, "_initializing", False):
            try:
                from lockscope_startup import call_after_import
            except ImportError:
                call_after_import = None
            if call_after_import is not None:
                _waiting[name] = callback
                if call_after_import(name, lambda: _after_import_in_progress(name)):
                    return
                del _waiting[name]
        _run(name, callback, module)
        return
    _pending[name] = callback
    if _finder is None:
        _finder = _ImportHook()
        sys.meta_path.insert(0, _finder)


def forget(name: str) -> None:
    """Drop a callback that has not run yet."""
    _pending.pop(name, None)
    _waiting.pop(name, None)
    if not _pending and _finder is not None:
        _finder.remove()
