"""The ``lockscope`` command line: a thin typer layer over recorder and analyzer.

Reports named ``-`` go to standard output; the terminal summary then goes to standard
error.  A reader that goes away (``| head``) ends the command quietly with status 141,
as if SIGPIPE had killed it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from recorder.runner import CLOSED_PIPE_STATUS, silence_stdout

# Plain help (no rich panels): every option with its value's name, flags without one.
app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Find deadlocks in Python programs: record lock activity, then analyze it.")

STDOUT = "-"

# Arguments are named by their metavar alone ("TRACE...", not "TRACE <list[str]>"):
# typer prints the Python type of an argument next to its name in plain help.
typer.core.TyperArgument.display_type_rich = lambda self, ctx: None  # type: ignore[method-assign]
typer.core.TyperArgument._usage_display_name = lambda self: self.display_name_raw + (  # type: ignore[method-assign]
    "..." if self.nargs != 1 else "")


def _show_version(show: bool) -> None:
    if show:
        from analyzer.entry import version

        typer.echo(f"lockscope {version()}")
        raise typer.Exit(0)


def summary_console(stderr: bool):
    """The rich console of the terminal summary; a closed pipe is left to
    :func:`quiet_when_the_reader_leaves` (rich would exit with status 1)."""
    from rich.console import Console

    class SummaryConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return SummaryConsole(stderr=stderr)


@app.callback()
def _root(
    _version: bool = typer.Option(False, "--version", "-V", callback=_show_version, is_eager=True,
                                  help="Show the version and exit."),
) -> None:
    """Find deadlocks in Python programs: record lock activity, then analyze it."""


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "allow_interspersed_args": False, "help_option_names": []},
             options_metavar="[OPTIONS] SCRIPT [ARGS]... | -m MODULE [ARGS]...",
             short_help="Run a Python program with the recorder on.")
def run(ctx: typer.Context) -> None:
    """Run a program with the recorder on, like python (see: lockscope run --help)."""
    from recorder.runner import run_command

    # One parser for every way in (entry.py without the analyzer, python -m recorder).
    raise typer.Exit(run_command(list(ctx.args)))


FAIL_ON = ("critical", "error", "warning", "info", "never")
GROUP_BY = ("instance", "site")
ACTORS = ("task", "thread", "segment")
PLOTLYJS = ("inline", "cdn")


def choices(values: tuple[str, ...]) -> str:
    """The metavar of an option that takes one of `values`."""
    return "[" + "|".join(values) + "]"


def check_choice(option: str, value: str, allowed: tuple[str, ...]) -> str | None:
    """The one-line complaint when `value` is not one of `allowed`, else None."""
    if value in allowed:
        return None
    return f"{option} must be one of {', '.join(allowed)}, not {value!r}"


def only_one_to_stdout(**targets: str | None) -> str | None:
    """The complaint when more than one report is sent to standard output."""
    to_stdout = [f"--{name}" for name, target in targets.items() if target == STDOUT]
    if len(to_stdout) > 1:
        return f"only one report can go to standard output ('-'), not {' and '.join(to_stdout)}"
    return None


def write_report(target: str, data: bytes) -> None:
    """Write a report to the file `target`, or to standard output when it is ``-``."""
    if target != STDOUT:
        Path(target).write_bytes(data)
        return
    with quiet_when_the_reader_leaves():
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


@contextmanager
def quiet_when_the_reader_leaves() -> Iterator[None]:
    """A closed pipe on standard output (``lockscope analyze t | head -1``) ends the
    command with status 141 (128 + SIGPIPE, what a shell shows for a tool the signal
    killed), without a traceback or a flush error at exit."""
    try:
        yield
    except BrokenPipeError:
        silence_stdout()
        raise typer.Exit(CLOSED_PIPE_STATUS) from None


@app.command(short_help="Find deadlocks and lock trouble in trace files.")
def analyze(
    paths: Annotated[list[str], typer.Argument(metavar="TRACE", help="Trace files, directories "
                                               "(searched recursively) or globs.")],
    json_out: str | None = typer.Option(None, "--json", metavar="FILE",
                                        help="Write the findings JSON here ('-': standard output)."),
    sarif_out: str | None = typer.Option(None, "--sarif", metavar="FILE",
                                         help="Write SARIF 2.1.0 here ('-': standard output)."),
    html_out: str | None = typer.Option(None, "--html", metavar="FILE",
                                        help="Write the HTML report here ('-': standard output)."),
    db: str | None = typer.Option(None, "--db", metavar="FILE",
                                  help="Keep the DuckDB database in this file (see docs/database.md)."),
    fail_on: str = typer.Option("error", "--fail-on", metavar=choices(FAIL_ON),
                                help="Exit 1 when a finding is at or above this severity."),
    long_hold: str = typer.Option("100ms", "--long-hold", metavar="DURATION",
                                  help="Report holds longer than this (e.g. 100ms, 2s)."),
    baseline: str | None = typer.Option(None, "--baseline", metavar="FILE",
                                        help="Earlier findings JSON: suppress known fingerprints."),
    group_by: str = typer.Option("instance", "--group-by", metavar=choices(GROUP_BY),
                                 help="Lock identity: each instance, or all locks created at one site."),
    actors: str = typer.Option("task", "--actors", metavar=choices(ACTORS),
                               help="Unit of concurrency: task (an asyncio task, else its thread), "
                               "thread, or segment (segments such as test cases are separate actors)."),
    max_cycle_length: int = typer.Option(6, "--max-cycle-length", metavar="N",
                                         help="Longest lock-order cycle searched."),
    memory_limit: str | None = typer.Option(None, "--memory-limit", metavar="SIZE",
                                            help="DuckDB memory limit, e.g. 2GB "
                                            "(default: LOCKSCOPE_MEMORY_LIMIT, or half the memory)."),
    temp_limit: str | None = typer.Option(None, "--temp-limit", metavar="SIZE",
                                          help="Most disk space DuckDB may spill to, e.g. 20GB "
                                          "(default: LOCKSCOPE_TEMP_LIMIT, or half the free space)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No terminal summary."),
    plotlyjs: str = typer.Option("inline", "--plotlyjs", metavar=choices(PLOTLYJS),
                                 help="HTML report: embed plotly.js (inline, works "
                                 "offline) or load it from its CDN (cdn, a smaller file)."),
    show_argv: bool = typer.Option(False, "--show-argv", help="Show each process's command line "
                                   "as recorded, without masking secret-looking values."),
    source_root: str | None = typer.Option(None, "--source-root", metavar="DIR", help="Show paths relative to this directory "
                                           "(default: each process's recorded working directory)."),
    all_locks: bool = typer.Option(False, "--all-locks", help="List every lock in the statistics, "
                                   "the libraries' internal locks too (default: one line for them)."),
) -> None:
    """Analyze trace files: lock-order cycles, deadlocks, long holds, contention.

    Prints a summary (to standard error when a report goes to standard output).
    Exit status: 0 nothing at or above --fail-on, 1 something is, 2 unusable input
    or a bad option.
    """

    from analyzer.analysis import analyze as run_analysis
    from analyzer.analysis import failing
    from analyzer.errors import UnusableInput
    from analyzer.interrupt import Interrupted, run_interruptible

    def die(message: str) -> None:
        from analyzer.report.visible import visible

        # names, paths and header fields from a trace are shown with their control characters escaped
        typer.echo(f"lockscope analyze: {visible(message)}", err=True)
        raise typer.Exit(2)

    for complaint in (check_choice("--fail-on", fail_on, FAIL_ON),
                      check_choice("--group-by", group_by, GROUP_BY),
                      check_choice("--actors", actors, ACTORS),
                      check_choice("--plotlyjs", plotlyjs, PLOTLYJS),
                      only_one_to_stdout(json=json_out, sarif=sarif_out, html=html_out)):
        if complaint:
            die(complaint)
    pages: dict[str, str] = {}

    def render_html(doc: dict, con) -> None:  # runs while the database is still open
        from analyzer.report import html

        pages["html"] = html.render(doc, con=con, plotlyjs=plotlyjs)

    try:
        doc = run_interruptible(lambda: run_analysis(
            paths, group_by=group_by, actors=actors, long_hold=long_hold, baseline=baseline, db=db,
            memory_limit=memory_limit, temp_limit=temp_limit, max_cycle_length=max_cycle_length,
            fail_on=fail_on, on_result=render_html if html_out else None, show_argv=show_argv,
            source_root=source_root, all_locks=all_locks))
    except UnusableInput as exc:
        die(str(exc))
    except Interrupted as exc:
        typer.echo(f"lockscope analyze: interrupted by {exc} (nothing written)", err=True)
        raise typer.Exit(128 + exc.signum) from None
    reports: list[tuple[str, bytes]] = []
    if json_out:
        from analyzer.report import json as json_report

        reports.append((json_out, json_report.dumps(doc)))
    if sarif_out:
        from analyzer.report import sarif

        reports.append((sarif_out, sarif.dumps(doc)))
    if html_out:
        reports.append((html_out, pages["html"].encode("utf-8")))
    try:  # files first: a reader leaving standard output early must not cost them
        for target, data in sorted(reports, key=lambda r: r[0] == STDOUT):
            write_report(target, data)
    except OSError as exc:
        die(f"cannot write report: {exc}")
    if not quiet:
        from analyzer.report import terminal

        with quiet_when_the_reader_leaves():
            to_stdout = any(target == STDOUT for target, _ in reports)
            terminal.render(doc, summary_console(stderr=to_stdout))
    raise typer.Exit(1 if failing(doc, fail_on) else 0)


@app.command(short_help="Re-render the HTML report from a database or findings JSON.")
def report(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="A database kept with analyze --db "
                                          "(.duckdb), or a findings JSON file written with analyze --json.")],
    html_out: str = typer.Option(..., "--html", metavar="FILE",
                                 help="Write the HTML report here ('-': standard output)."),
    plotlyjs: str = typer.Option("inline", "--plotlyjs", metavar=choices(PLOTLYJS),
                                 help="Embed plotly.js (inline, works offline) or "
                                 "load it from its CDN (cdn, a smaller file)."),
    all_locks: bool = typer.Option(False, "--all-locks", help="List every lock in the statistics "
                                   "(default: as analyzed, one line for the libraries' locks "
                                   "unless analyze had --all-locks)."),
) -> None:
    """Re-render the HTML report from a kept database or a findings JSON, without re-loading traces.

    From a database the report has timelines and the full lock-order graph; from
    JSON alone it shows everything except the charts that need the events.
    Traces are read by analyze, not here.
    """
    import duckdb
    import orjson

    from analyzer.analysis import stored_findings
    from analyzer.errors import UnusableInput
    from analyzer.inputs import read_header
    from analyzer.report import html, shape

    def die(message: str) -> None:
        from analyzer.report.visible import visible

        # names and fields from a document are shown with their control characters escaped
        typer.echo(f"lockscope report: {visible(message)}", err=True)
        raise typer.Exit(2)

    complaint = check_choice("--plotlyjs", plotlyjs, PLOTLYJS)
    if complaint:
        die(complaint)
    path = Path(source)
    if path.is_dir() or (path.is_file() and read_header(path) is not None):
        what = "a directory" if path.is_dir() else "a trace file"
        die(f"{source} is {what}, not findings: analyze traces with "
            f"'lockscope analyze {source} --html {html_out}'")
    if not path.is_file():
        die(f"{source}: no such file")
    with open(path, "rb") as fh:
        magic = fh.read(16)
    con = None
    try:
        if magic[8:12] == b"DUCK":
            try:
                con = duckdb.connect(str(path), read_only=True)
            except duckdb.Error as exc:
                die(f"{source}: cannot open the database ({str(exc).splitlines()[0]})")
            doc = stored_findings(con)
        else:
            try:
                doc = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError as exc:
                die(f"{source}: neither a lockscope database nor findings JSON ({exc})")
        if not isinstance(doc, dict) or doc.get("format") != "lockscope-findings":
            die(f"{source}: not a lockscope findings document")
        if doc.get("version") != 1:
            die(f"{source}: unsupported findings version {doc.get('version')!r} (this lockscope reads 1)")
        shape.check(doc)
        try:
            page = html.render(doc, con=con, plotlyjs=plotlyjs, all_locks=True if all_locks else None)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            # a field of the right type with contents the renderer cannot use
            die(f"{source}: malformed findings document ({type(exc).__name__}: {exc})")
    except UnusableInput as exc:
        die(f"{source}: {exc}")
    finally:
        if con is not None:
            con.close()
    try:
        write_report(html_out, page.encode("utf-8"))
    except OSError as exc:
        die(f"cannot write report: {exc}")


def main() -> None:
    """The ``lockscope`` command (the console script is ``analyzer.entry:main``)."""
    from analyzer.entry import main as entry_main

    entry_main()
