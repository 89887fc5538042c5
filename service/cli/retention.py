"""`convintel purge`: delete conversations past the retention period from the configured
store, as the service's background purge does. It loads no models, and may run while the
service runs (each batch is one write transaction; the service notices the deletions)."""

from __future__ import annotations

from typing import Annotated

import typer

from nlp.timestamps import utc_iso
from service.cli.main import app, fail, load_settings

# The store is imported inside the command: its message type pulls in spaCy (and torch), see __init__.py.


@app.command()
def purge(
    older_than_days: Annotated[
        int | None,
        typer.Option(
            min=1, help="Delete conversations not changed for this many days (default: CONVINTEL_RETENTION_DAYS)"
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count them and delete nothing")] = False,
) -> None:
    """Delete conversations (with their messages) not changed for longer than the retention
    period, from the store (CONVINTEL_DATABASE_URL, else CONVINTEL_DB_PATH); print how many."""
    from service.retention import purge_expired, retention_cutoff
    from service.store import ConversationStore
    from service.store.migrate import open_database

    settings = load_settings()
    days = older_than_days if older_than_days is not None else settings.retention_days
    if not days:
        fail("no retention period: set CONVINTEL_RETENTION_DAYS or pass --older-than-days")
    # Opening a store creates its file: a mistyped path would "purge" an empty new one.
    if settings.database_url is None and not settings.db_path.is_file():
        fail(f"no conversation store at {settings.db_path} (CONVINTEL_DB_PATH)")
    cutoff = retention_cutoff(days)
    store = ConversationStore(open_database(settings.store_url(), settings.database_pool()), cache_messages=0)
    try:
        if dry_run:
            count = store.count_updated_before(cutoff)
            typer.echo(f"{count} conversation(s) not changed since {utc_iso(cutoff)} would be deleted (dry run)")
        else:
            count = purge_expired(store, cutoff)
            typer.echo(f"deleted {count} conversation(s) not changed since {utc_iso(cutoff)}")
    finally:
        store.close()
