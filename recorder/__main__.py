"""``python -m recorder [--out DIR] [--stacks N] (-m module | script.py) [args...]``.

Runs a program with the recorder on, like ``coverage run``; its exit status is kept.
``lockscope run`` uses this in a fresh interpreter with ``LOCKSCOPE_OUT`` set, so
subprocesses of the program are recorded too.
"""

from __future__ import annotations

import os
import runpy
import sys

import recorder


def _usage(msg: str) -> None:
    sys.stderr.write(f"lockscope run: {msg}\n"
                     "usage: python -m recorder [--out DIR] [--stacks N] "
                     "(-m module | script.py) [args...]\n")
    raise SystemExit(2)


def main(argv: list[str]) -> None:
    out = os.environ.get("LOCKSCOPE_OUT") or recorder.DEFAULT_OUT_DIR
    stacks = None
    module = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--out" and i + 1 < len(argv):
            out, i = argv[i + 1], i + 2
        elif arg == "--stacks" and i + 1 < len(argv):
            try:
                stacks = int(argv[i + 1])
            except ValueError:
                _usage(f"--stacks wants a number, got {argv[i + 1]!r}")
            i += 2
        elif arg == "-m" and i + 1 < len(argv):
            module, i = argv[i + 1], i + 2
            break
        elif arg == "--":
            i += 1
            break
        elif arg.startswith("-"):
            _usage(f"unknown option {arg}")
        else:
            break
    rest = argv[i:]
    if module is None and not rest:
        _usage("nothing to run")
    if not recorder.is_recording():
        opts = {"stacks": stacks} if stacks is not None else {}
        recorder.start(out, **opts)
    if module is not None:
        sys.argv = [module, *rest]
        sys.path.insert(0, os.getcwd())
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        script = rest[0]
        if not os.path.exists(script):
            _usage(f"no such file: {script}")
        sys.argv = list(rest)
        # An absolute path, as ``python script.py`` gives since 3.9: call sites then name
        # the file unambiguously whatever the working directory of the analysis.
        path = os.path.abspath(script)
        sys.path.insert(0, os.path.dirname(path))
        runpy.run_path(path, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
