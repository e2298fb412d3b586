"""``python -m recorder [--out DIR] [--stacks N] (SCRIPT | -m MODULE) [ARGS]...``.

Runs a program with the recorder on, like ``coverage run``; its exit status is kept.
``lockscope run`` uses this in a fresh interpreter with ``LOCKSCOPE_OUT`` set, so
subprocesses of the program are recorded too.

The program runs as under ``python`` itself: a script in a fresh ``__main__`` module
with its directory first on ``sys.path``, a module through the same ``runpy`` entry
point as ``python -m``.  Its uncaught exception's traceback starts where ``python``'s
would (no frame of this launcher), a script or module that cannot be found is one
line (exit status 2), and nothing is left in the trace folder for a program that
never started.
"""

from __future__ import annotations

import builtins
import os
import runpy
import sys
import types
import zipfile
from importlib.machinery import BuiltinImporter, SourceFileLoader

import recorder
from recorder.runner import USAGE, RunArgs, RunUsageError, parse_run_args, print_help

PROG = "lockscope run"  # what the user typed, in the messages about the program
# python's own __main__ module starts with an empty __annotations__ on some versions;
# this module runs in it, so it tells what the program's fresh __main__ should hold.
_MAIN_ANNOTATIONS = "__annotations__" in globals()


class _CannotStart(Exception):
    """The program was not found (the message python would print, without its prefix)."""


def main(argv: list[str]) -> None:
    try:
        args = parse_run_args(argv, default_out=os.environ.get("LOCKSCOPE_OUT")
                              or recorder.DEFAULT_OUT_DIR)
    except RunUsageError as exc:
        sys.stderr.write(f"python -m recorder: {exc} (see 'python -m recorder --help')\n")
        raise SystemExit(2) from None
    if args.help:
        raise SystemExit(print_help(USAGE.format(prog="python -m recorder"), recorder.DEFAULT_OUT_DIR))
    try:
        run = _prepare(args)
        if not recorder.is_recording():
            recorder.start(args.out, **({"stacks": args.stacks} if args.stacks is not None else {}))
        _launch(run)
    except _CannotStart as exc:
        recorder._discard()  # the program never started
        sys.stderr.write(f"{PROG}: {exc}\n")
        raise SystemExit(2) from None


def _prepare(args: RunArgs):
    """Set ``sys.argv`` and ``sys.path`` as ``python`` would; return what runs the program."""
    if args.module is not None:
        sys.argv = ["-m", *args.target]  # argv[0] becomes the module's file once found
        return lambda: _run_module_as_main(args.module, alter_argv=True)
    script, rest = args.target[0], args.target[1:]
    sys.argv = [script, *rest]
    if script == "-":  # the program on standard input, read as it starts (python -)
        _set_path0("")
        return lambda: _exec_script("<stdin>", sys.stdin.buffer.read(), from_file=False)
    path = os.path.abspath(script)
    if os.path.isdir(path) or zipfile.is_zipfile(path):  # a directory or zip with __main__.py
        _set_path0(path)
        return lambda: _run_module_as_main("__main__", alter_argv=False)
    try:
        with open(path, "rb") as fh:
            source = fh.read()
    except OSError as exc:
        raise _CannotStart(f"can't open file {path!r}: [Errno {exc.errno}] {exc.strerror}") from None
    # The script's own directory, symbolic links resolved, as python puts it first.
    _set_path0(os.path.dirname(os.path.realpath(path)))
    return lambda: _exec_script(path, source)


def _set_path0(entry: str) -> None:
    """``sys.path[0]`` is this launcher's (the working directory): the program's instead."""
    if getattr(sys.flags, "safe_path", False):
        return  # python -P / PYTHONSAFEPATH: no such entry, for the program either
    if sys.path:
        sys.path[0] = entry
    else:
        sys.path.insert(0, entry)


def _run_module_as_main(name: str, alter_argv: bool) -> None:
    """``python -m name``: the very function python calls (its two frames are in python's
    tracebacks too).  A module that cannot be found is turned into :class:`_CannotStart`."""
    sys.modules["__main__"] = _fresh_main()  # not this launcher's globals
    try:
        runpy._run_module_as_main(name, alter_argv)
    except SystemExit as exc:
        # runpy reports a module it cannot find as sys.exit("<python>: <message>"),
        # raised in _run_module_as_main itself (the program's own exits come from deeper).
        prefix = f"{sys.executable}: "
        if (isinstance(exc.code, str) and exc.code.startswith(prefix)
                and _innermost_code(exc.__traceback__) is runpy._run_module_as_main.__code__):
            raise _CannotStart(exc.code[len(prefix):]) from None
        raise


def _exec_script(path: str, source: bytes, from_file: bool = True) -> None:
    """``python path``: compile and run the source in a fresh ``__main__`` module."""
    main = _fresh_main()
    main.__dict__.update(__file__=path, __builtins__=builtins, __cached__=None,
                         __loader__=SourceFileLoader("__main__", path) if from_file
                         else BuiltinImporter)
    sys.modules["__main__"] = main
    code = compile(source, path, "exec", dont_inherit=True)
    exec(code, main.__dict__)


def _fresh_main() -> types.ModuleType:
    main = types.ModuleType("__main__")
    if _MAIN_ANNOTATIONS:
        main.__annotations__ = {}
    return main


def _launch(run) -> None:
    """Run the program; if it raises, show the traceback from the program's first frame."""
    try:
        run()
    except (SystemExit, _CannotStart):
        raise
    except BaseException as exc:
        _hide_launcher_frames(exc)
        raise


def _hide_launcher_frames(exc: BaseException) -> None:
    """Make the next ``sys.excepthook`` call (python's report of this uncaught exception,
    just before the usual exit) see ``exc``'s traceback without the launcher's frames
    (runpy's for ``python -m recorder``, and this module's).  The hook in place (the program may have
    set its own) does the printing; the exit status and signal stay python's."""
    shown = sys.excepthook

    def hook(exc_type, value, tb):
        sys.excepthook = shown
        if value is exc:
            tb = _after_launcher(tb)
            value.with_traceback(tb)  # the default hook prints the exception's own traceback
        shown(exc_type, value, tb)

    sys.excepthook = hook


def _after_launcher(tb):
    """The part of ``tb`` below this module's last frame (the program's own frames)."""
    rest = tb
    entry = tb
    while entry is not None:
        if entry.tb_frame.f_code.co_filename == _launch.__code__.co_filename:
            rest = entry.tb_next
        entry = entry.tb_next
    return rest


def _innermost_code(tb):
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code if tb is not None else None


if __name__ == "__main__":
    main(sys.argv[1:])
