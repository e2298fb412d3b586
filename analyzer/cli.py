"""The `lockscope` command line (typer app)."""
import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.command()
def version() -> None:
    """Print the version."""
    print("0.1.0")
