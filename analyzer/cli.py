"""The ``lockscope`` command line: a thin typer layer over recorder and analyzer."""

from __future__ import annotations

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


def main() -> None:
    app()
