"""The `convintel` application object and what every command shares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from nlp import __version__

if TYPE_CHECKING:
    from service.settings import Settings

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


def check_output_folder(path: Path) -> None:
    """Fail now, before a command's work, when its reports could not be written to `path`
    (a file, or under a folder that cannot be written); nothing is created here, so a
    command that fails later leaves nothing behind."""
    if path.exists() and not path.is_dir():
        fail(f"{path} is a file; --output names a folder")
    nearest = next(folder for folder in (path, *path.parents) if folder.exists())
    if not nearest.is_dir() or not os.access(nearest, os.W_OK):
        fail(f"cannot write under {nearest}")


def load_settings() -> Settings:
    """The settings from the environment, or one error line per command naming each
    CONVINTEL_* variable that is wrong (not a pydantic traceback)."""
    from pydantic import ValidationError

    from service.settings import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CONVINTEL_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        fail(f"invalid configuration: {problems}")


def report_skipped(count: int, problems: list[str], what: str = "invalid row(s)") -> None:
    """Say on stderr how much input was skipped, with the first few problems."""
    if count:
        typer.secho(f"skipped {count} {what}:", fg=typer.colors.YELLOW, err=True)
        for problem in problems[:10]:
            typer.echo(f"  {problem}", err=True)
