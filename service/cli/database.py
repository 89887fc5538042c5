"""`convintel db upgrade` and `convintel db current`: the store's schema migrations, on
demand (the service also upgrades its database at start-up)."""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli.main import app, load_settings
from service.database_url import describe_database_url

# The store is imported inside the commands: its message type pulls in spaCy (and torch), see __init__.py.

db_app = typer.Typer(no_args_is_help=True, help="The conversation store's database: schema migrations.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade_database(
    revision: Annotated[str, typer.Argument(help="Revision to upgrade to")] = "head",
) -> None:
    """Migrate the database (CONVINTEL_DATABASE_URL, else the SQLite file at CONVINTEL_DB_PATH)
    to the newest schema; a file written before migrations existed is adopted, its rows kept."""
    from service.store.database import Database
    from service.store.migrate import current_revision, upgrade

    settings = load_settings()
    database = Database(settings.store_url(), settings.database_pool())
    try:
        before = current_revision(database)
        upgrade(database, revision)
        after = current_revision(database)
    finally:
        database.close()
    where = describe_database_url(settings.store_url())
    typer.echo(f"{where}: {before or 'unversioned'} -> {after}" if before != after else f"{where}: at {after}")


@db_app.command("current")
def show_revision() -> None:
    """Print the database's schema revision and the newest this version knows."""
    from service.store.database import Database
    from service.store.migrate import current_revision, head_revision

    settings = load_settings()
    database = Database(settings.store_url(), settings.database_pool())
    try:
        current = current_revision(database)
    finally:
        database.close()
    typer.echo(f"{describe_database_url(settings.store_url())}: {current or 'unversioned'} (newest: {head_revision()})")
