"""The ``lockscope`` command line: a thin typer layer over recorder and analyzer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Find deadlocks in Python programs: record lock activity, then analyze it.")


@app.callback()
def _root() -> None:
    """Find deadlocks in Python programs: record lock activity, then analyze it."""


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "allow_interspersed_args": False, "help_option_names": []},
             options_metavar="[OPTIONS] SCRIPT [ARGS]... | -m MODULE [ARGS]...")
def run(ctx: typer.Context) -> None:
    """Run a program with the recorder on, like python (see: lockscope run --help)."""
    from recorder.runner import run_command

    # One parser for every way in (entry.py without the analyzer, python -m recorder).
    raise typer.Exit(run_command(list(ctx.args)))


FAIL_ON = ("critical", "error", "warning", "info", "never")
PLOTLYJS = ("inline", "cdn")


@app.command()
def analyze(
    paths: Annotated[list[str], typer.Argument(help="Trace files, directories (searched recursively) or globs.")],
    json_out: str | None = typer.Option(None, "--json", help="Write the findings JSON here."),
    sarif_out: str | None = typer.Option(None, "--sarif", help="Write SARIF 2.1.0 here."),
    html_out: str | None = typer.Option(None, "--html", help="Write the HTML report here."),
    db: str | None = typer.Option(None, "--db", help="Keep the DuckDB database in this file (see docs/database.md)."),
    fail_on: str = typer.Option("error", "--fail-on", help="Exit 1 when a finding is at or above: "
                                "critical, error, warning, info, never."),
    long_hold: str = typer.Option("100ms", "--long-hold", help="Report holds longer than this (e.g. 100ms, 2s)."),
    baseline: str | None = typer.Option(None, "--baseline", help="Earlier findings JSON: suppress known fingerprints."),
    group_by: str = typer.Option("instance", "--group-by", help="Lock identity: instance, or site (creation site)."),
    actors: str = typer.Option("task", "--actors", help="Unit of concurrency: task (default: task, else thread), "
                               "thread, or segment (segments such as test cases are separate actors)."),
    max_cycle_length: int = typer.Option(6, "--max-cycle-length", help="Longest lock-order cycle searched."),
    memory_limit: str | None = typer.Option(None, "--memory-limit", help="DuckDB memory limit, e.g. 2GB "
                                            "(default: LOCKSCOPE_MEMORY_LIMIT, or half the memory)."),
    temp_limit: str | None = typer.Option(None, "--temp-limit", help="Most disk space DuckDB may spill to, "
                                          "e.g. 20GB (default: LOCKSCOPE_TEMP_LIMIT, or half the free space)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No terminal summary."),
    plotlyjs: str = typer.Option("inline", "--plotlyjs", help="HTML report: embed plotly.js (inline, works "
                                 "offline) or load it from its CDN (cdn, a smaller file)."),
    show_argv: bool = typer.Option(False, "--show-argv", help="Show each process's command line "
                                   "as recorded, without masking secret-looking values."),
) -> None:
    """Analyze trace files: lock-order cycles, deadlocks, long holds, contention."""

    from analyzer.analysis import analyze as run_analysis
    from analyzer.analysis import failing
    from analyzer.errors import UnusableInput
    from analyzer.interrupt import Interrupted, run_interruptible

    def die(message: str) -> None:
        from analyzer.report.visible import visible

        # names, paths and header fields from a trace are shown with their control characters escaped
        typer.echo(f"lockscope analyze: {visible(message)}", err=True)
        raise typer.Exit(2)

    if fail_on not in FAIL_ON:
        die(f"--fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
    if plotlyjs not in PLOTLYJS:
        die(f"--plotlyjs must be one of {', '.join(PLOTLYJS)}, not {plotlyjs!r}")
    pages: dict[str, str] = {}

    def render_html(doc: dict, con) -> None:  # runs while the database is still open
        from analyzer.report import html

        pages["html"] = html.render(doc, con=con, plotlyjs=plotlyjs)

    try:
        doc = run_interruptible(lambda: run_analysis(
            paths, group_by=group_by, actors=actors, long_hold=long_hold, baseline=baseline, db=db,
            memory_limit=memory_limit, temp_limit=temp_limit, max_cycle_length=max_cycle_length,
            fail_on=fail_on, on_result=render_html if html_out else None, show_argv=show_argv))
    except UnusableInput as exc:
        die(str(exc))
    except Interrupted as exc:
        typer.echo(f"lockscope analyze: interrupted by {exc} (nothing written)", err=True)
        raise typer.Exit(128 + exc.signum) from None
    try:
        if json_out:
            from analyzer.report import json as json_report

            json_report.write(doc, json_out)
        if sarif_out:
            from analyzer.report import sarif

            sarif.write(doc, sarif_out)
        if html_out:
            Path(html_out).write_text(pages["html"], encoding="utf-8")
    except OSError as exc:
        die(f"cannot write report: {exc}")
    if not quiet:
        from analyzer.report import terminal

        terminal.render(doc)
    raise typer.Exit(1 if failing(doc, fail_on) else 0)


@app.command()
def report(
    source: Annotated[str, typer.Argument(help="A database kept with analyze --db (.duckdb), or a findings "
                                          "JSON file written with analyze --json.")],
    html_out: str = typer.Option(..., "--html", help="Write the HTML report here."),
    plotlyjs: str = typer.Option("inline", "--plotlyjs", help="Embed plotly.js (inline, works offline) or "
                                 "load it from its CDN (cdn, a smaller file)."),
) -> None:
    """Re-render the HTML report from a kept database or a findings JSON, without re-loading traces.

    From a database the report has timelines and the full lock-order graph; from
    JSON alone it shows everything except the charts that need the events.
    """
    import duckdb
    import orjson

    from analyzer.analysis import stored_findings
    from analyzer.errors import UnusableInput
    from analyzer.report import html, shape

    def die(message: str) -> None:
        from analyzer.report.visible import visible

        # names and fields from a document are shown with their control characters escaped
        typer.echo(f"lockscope report: {visible(message)}", err=True)
        raise typer.Exit(2)

    if plotlyjs not in PLOTLYJS:
        die(f"--plotlyjs must be one of {', '.join(PLOTLYJS)}, not {plotlyjs!r}")
    path = Path(source)
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
            page = html.render(doc, con=con, plotlyjs=plotlyjs)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            # a field of the right type with contents the renderer cannot use
            die(f"{source}: malformed findings document ({type(exc).__name__}: {exc})")
    except UnusableInput as exc:
        die(f"{source}: {exc}")
    finally:
        if con is not None:
            con.close()
    try:
        Path(html_out).write_text(page, encoding="utf-8")
    except OSError as exc:
        die(f"cannot write report: {exc}")


def main() -> None:
    """The ``lockscope`` command (the console script is ``analyzer.entry:main``)."""
    from analyzer.entry import main as entry_main

    entry_main()
