"""The ``lockscope`` command line: a thin typer layer over recorder and analyzer."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Find deadlocks in Python programs: record lock activity, then analyze it.")


@app.callback()
def _root() -> None:
    """Find deadlocks in Python programs: record lock activity, then analyze it."""


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "allow_interspersed_args": False})
def run(ctx: typer.Context,
        out: str = typer.Option("lockscope-traces", "--out", help="Directory for trace files."),
        module: str | None = typer.Option(None, "-m", help="Run a module, like python -m."),
        stacks: int | None = typer.Option(
            None, "--stacks", help="Record this many stack frames per new call site."),
        ) -> None:
    """Run a program with the recorder on: lockscope run [--out DIR] script.py [args...]"""
    from recorder.runner import run_program

    target = list(ctx.args)
    if module is None and not target:
        typer.echo("lockscope run: give a script or -m module to run", err=True)
        raise typer.Exit(2)
    raise typer.Exit(run_program(target, out, module=module, stacks=stacks))


FAIL_ON = ("critical", "error", "warning", "info", "never")


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
    memory_limit: str | None = typer.Option(None, "--memory-limit", help="DuckDB memory limit, e.g. 2GB."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No terminal summary."),
) -> None:
    """Analyze trace files: lock-order cycles, deadlocks, long holds, contention."""
    import importlib.util

    from analyzer.analysis import analyze as run_analysis
    from analyzer.analysis import failing
    from analyzer.errors import UnusableInput

    def die(message: str) -> None:
        typer.echo(f"lockscope analyze: {message}", err=True)
        raise typer.Exit(2)

    if fail_on not in FAIL_ON:
        die(f"--fail-on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
    if html_out and importlib.util.find_spec("analyzer.report.html") is None:
        die("HTML report not available yet in this version (--html)")
    try:
        doc = run_analysis(paths, group_by=group_by, actors=actors, long_hold=long_hold,
                           baseline=baseline, db=db, memory_limit=memory_limit,
                           max_cycle_length=max_cycle_length, fail_on=fail_on)
    except UnusableInput as exc:
        die(str(exc))
    try:
        if json_out:
            from analyzer.report import json as json_report

            json_report.write(doc, json_out)
        if sarif_out:
            from analyzer.report import sarif

            sarif.write(doc, sarif_out)
        if html_out:
            from analyzer.report import html

            html.write(doc, html_out)
    except OSError as exc:
        die(f"cannot write report: {exc}")
    if not quiet:
        from analyzer.report import terminal

        terminal.render(doc)
    raise typer.Exit(1 if failing(doc, fail_on) else 0)


def main() -> None:
    app()
