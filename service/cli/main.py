"""The `convintel` application object and what every command shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from nlp import __version__

DATA_ROOT = Path("../shared/data")
"""Where the commands that read public data sets look for them unless --data-root or
CONVINTEL_DATA_ROOT says otherwise: beside the checkout, as this project's machines have it."""

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="convintel: conversation intelligence for support teams."
)


def _print_version(value: bool) -> None:
    """--version: print the version and stop before any command runs."""
    if value:
        typer.echo(f"convintel {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """convintel: conversation intelligence for support teams."""


def fail(message: str, code: int = 2) -> NoReturn:
    """End the command with `error: message` on stderr (exit status 2: a usage or input problem)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def report_skipped(count: int, problems: list[str], what: str = "invalid row(s)") -> None:
    """Say on stderr how much input was skipped, with the first few problems."""
    if count:
        typer.secho(f"skipped {count} {what}:", fg=typer.colors.YELLOW, err=True)
        for problem in problems[:10]:
            typer.echo(f"  {problem}", err=True)
