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


def do_not_record_this_process() -> None:
    """Cancel the start-up hook's recording of this process (and remove what it wrote)."""
    startup = sys.modules.get("lockscope_startup")
    if startup is not None:
        try:
            startup.disable()
        except Exception:
            pass


def version() -> str:
    """This lockscope's version, from the installed package's metadata."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("lockscope")
    except PackageNotFoundError:
        return "unknown (not installed)"


def missing_analyzer_dependencies() -> list[str]:
    return [name for name in ANALYZER_DEPENDENCIES if find_spec(name) is None]


def main() -> None:
    """Entry point of the ``lockscope`` command."""
    do_not_record_this_process()
    args = sys.argv[1:]
    missing = missing_analyzer_dependencies()
    if missing:
        if args[:1] in (["--version"], ["-V"]):
            sys.stdout.write(f"lockscope {version()}\n")
            raise SystemExit(0)
        if args[:1] == ["run"]:
            from recorder.runner import run_command

            raise SystemExit(run_command(args[1:]))
        sys.stderr.write(f"lockscope: the analyzer is not installed (missing "
                         f"{', '.join(missing)}): {INSTALL_HINT}; "
                         f"without it only 'lockscope run' works\n")
        raise SystemExit(2)
    from analyzer.cli import app
    from recorder.runner import CLOSED_PIPE_STATUS

    try:
        app()
    except SystemExit as exc:
        # typer (click) ends a command whose output met a closed pipe (help | head) with
        # status 1, stdout swapped for a wrapper that ignores flush errors: say 141
        # instead, as lockscope's own outputs do.
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            raise SystemExit(CLOSED_PIPE_STATUS) from None
        raise
