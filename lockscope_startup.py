"""lockscope's start-up hook: record from the program's first ``import threading``.

Imported by ``lockscope_startup.pth`` (installed into site-packages with lockscope)
when ``LOCKSCOPE_OUT`` is set.  It costs almost nothing at start-up: it imports no
module and only puts a finder on ``sys.meta_path`` that waits for ``threading``.
When the program imports ``threading`` (directly or through ``queue``, ``logging``,
``asyncio``, ``concurrent.futures`` ...), the recorder starts right after that module
has run, before any other code can take ``threading.Lock``; a program that never
imports it has nothing to record and pays nothing.  ``lockscope`` itself (the
analyzer's command line) calls :func:`disable`.  Never raises.

Kept at the top level (not inside ``recorder``) because importing the ``recorder``
package is what costs: it imports ``threading`` and the recorder's modules.

PYTEST_DONT_REWRITE (imported before pytest can mark it for assertion rewriting)
"""

import _thread
import sys

PENDING, STARTED, OFF = "pending", "started", "off"
state = OFF
_finder = None


class _ThreadingFinder:
    """One-shot meta path finder: lets ``threading`` load normally, then starts recording."""

    def find_spec(self, name, path=None, target=None):
        if name != "threading" or state != PENDING:
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or isinstance(spec.loader, type):
            _remove_finder()  # nothing we can wrap: record from the next start() call
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_start(module):
            try:
                exec_module(module)
            finally:
                try:
                    del loader.exec_module  # back to the class's method
                except AttributeError:
                    pass
                _remove_finder()
            _start()

        try:
            loader.exec_module = exec_then_start  # this loader instance only
        except AttributeError:
            _remove_finder()
        return spec


def _remove_finder():
    global _finder
    if _finder is not None:
        try:
            sys.meta_path.remove(_finder)
        except ValueError:
            pass
        _finder = None


def _importing(name):
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def call_after_import(name, callback):
    """Call ``callback()`` when the import of ``name``, now in progress, completes.

    The import system marks the end of a module's import by setting
    ``spec._initializing = False``; the module's spec is given a subclass that
    notices it (and then gets its own class back).  False when ``name`` is not being
    imported or its spec cannot be watched."""
    spec = getattr(sys.modules.get(name), "__spec__", None)
    if not getattr(spec, "_initializing", False):
        return False
    base = type(spec)

    class _Watched(base):
        __slots__ = ()

        def __setattr__(self, attr, value):
            base.__setattr__(self, attr, value)
            if attr == "_initializing" and not value:
                try:
                    self.__class__ = base
                except TypeError:
                    pass
                if sys.modules.get(name) is not None:
                    callback()

    try:
        spec.__class__ = _Watched
    except TypeError:
        return False
    return True


# Modules the recorder itself imports that import threading: when the program's first
# import of threading comes from one of them, the recorder can only start once it is done
# (none of them creates a lock at import time).
_NEEDED_COMPLETE = ("queue",)


def _start(package_complete=False):
    global state
    if state != PENDING:
        return
    if not package_complete and _importing("recorder"):
        return  # the recorder imported threading itself; it calls package_ready() when done
    for name in _NEEDED_COMPLETE:
        if _importing(name) and call_after_import(name, _start):
            return
    state = STARTED
    if in_subinterpreter():
        return  # not recorded (the recorder and its C accelerator are per process)
    try:
        from recorder._autostart import start_from_env

        start_from_env()
    except Exception as exc:  # never stop the program from starting
        try:
            sys.stderr.write(f"lockscope: recorder not started ({exc!r})\n")
        except Exception:
            pass


def in_subinterpreter():
    """True in a subinterpreter (``_testcapi.run_in_subinterp``, ``interpreters``)."""
    is_main = getattr(_thread, "_is_main_interpreter", None)  # 3.12+: no module to load
    if is_main is not None:
        try:
            return not is_main()
        except Exception:
            return False
    for name in ("_interpreters", "_xxsubinterpreters"):  # 3.13+, before
        try:
            mod = __import__(name)
        except ImportError:
            continue
        try:
            return mod.get_current() != mod.get_main()
        except Exception:
            return False
    return False


def package_ready():
    """Called at the end of ``recorder/__init__``: start if the trigger came during its import."""
    if state == PENDING and "threading" in sys.modules and _finder is None:
        _start(package_complete=True)


def disable():
    """This process must not record (the lockscope command line itself).

    Cancels a pending start; a recording already started by the hook is stopped and
    its files removed."""
    global state
    was, state = state, OFF
    _remove_finder()
    if was != STARTED:
        return
    rec = sys.modules.get("recorder")
    if rec is not None and hasattr(rec, "_discard"):
        rec._discard()


def install(environ=None):
    """Arm the hook when ``LOCKSCOPE_OUT`` is set (start at once if threading is loaded)."""
    global state, _finder
    import os

    if not (environ if environ is not None else os.environ).get("LOCKSCOPE_OUT"):
        return
    if state != OFF or _finder is not None:
        return
    state = PENDING
    if "threading" in sys.modules:
        _start()
        return
    _finder = _ThreadingFinder()
    sys.meta_path.insert(0, _finder)


install()
