"""The ``lockscope`` console script, before any heavy import.

It never records itself (``LOCKSCOPE_OUT`` exported for the programs it runs must not
make the analyzer trace into the folder it analyzes).  ``lockscope run`` works with the
recorder alone (a production install without the analyzer's dependencies); the other
commands need them and say how to install them when they are missing.
"""

from __future__ import annotations

import sys
from importlib.util import find_spec

ANALYZER_DEPENDENCIES = ("typer", "duckdb", "plotly", "networkx")
INSTALL_HINT = "pip install 'lockscope[analyzer]'"
RUN_USAGE = "usage: lockscope run [--out DIR] [--stacks N] (-m module | script.py) [args...]"


def do_not_record_this_process() -> None:
    """Cancel the start-up hook's recording of this process (and remove what it wrote)."""
    startup = sys.modules.get("lockscope_startup")
    if startup is not None:
        try:
            startup.disable()
        except Exception:
            pass


def missing_analyzer_dependencies() -> list[str]:
    return [name for name in ANALYZER_DEPENDENCIES if find_spec(name) is None]


def run_without_typer(argv: list[str]) -> int:
    """``lockscope run`` with the recorder alone: same options as the typer command."""
    from recorder.runner import run_program

    def usage(message: str) -> int:
        sys.stderr.write(f"lockscope run: {message}\n{RUN_USAGE}\n")
        return 2

    out, module, stacks, i = "lockscope-traces", None, None, 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in ("--out", "--stacks", "-m") and not eq:
            if i + 1 >= len(argv):
                return usage(f"{name} needs a value")
            value, i = argv[i + 1], i + 1
        if name == "--out":
            out = value
        elif name == "--stacks":
            try:
                stacks = int(value)
            except ValueError:
                return usage(f"--stacks wants a number, got {value!r}")
        elif name == "-m":
            module, i = value, i + 1
            break
        elif arg in ("-h", "--help"):
            sys.stdout.write(RUN_USAGE + "\n")
            return 0
        elif arg == "--":
            i += 1
            break
        elif arg.startswith("-"):
            return usage(f"unknown option {arg}")
        else:
            break
        i += 1
    target = argv[i:]
    if module is None and not target:
        return usage("give a script or -m module to run")
    return run_program(target, out, module=module, stacks=stacks)


def main() -> None:
    """Entry point of the ``lockscope`` command."""
    do_not_record_this_process()
    args = sys.argv[1:]
    missing = missing_analyzer_dependencies()
    if missing:
        if args[:1] == ["run"]:
            raise SystemExit(run_without_typer(args[1:]))
        sys.stderr.write(f"lockscope: the analyzer is not installed (missing "
                         f"{', '.join(missing)}): {INSTALL_HINT}; "
                         f"without it only 'lockscope run' works\n")
        raise SystemExit(2)
    from analyzer.cli import app

    app()
