"""Schema migrations (Alembic; the revisions are in service/store/migrations/versions/ and
ship in the wheel). The service upgrades its database at start-up, and `convintel db
upgrade` does so on demand.

The first revision is a baseline that adopts what earlier versions wrote: a SQLite file
with the tables but no `alembic_version` gets only what it lacks (columns, indexes, the
outbox table), its rows untouched. All revisions run in one write transaction, taken one
process at a time (SQLite: the IMMEDIATE transaction; PostgreSQL: an advisory lock), so
replicas starting together migrate once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from service.store.database import Database, PoolConfig

MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """The newest revision this version of convintel knows."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(database: Database) -> str | None:
    """The revision the database is at (None: never migrated, or empty)."""
    with database.read() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database: Database, revision: str = "head") -> None:
    """Migrate the database to `revision` (default: the newest)."""
    config = _config()
    with database.write() as connection:
        database.lock_migrations(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def open_database(url: str, pool: PoolConfig | None = None) -> Database:
    """The database at `url`, migrated to the newest revision (what the service and the
    CLI commands open)."""
    database = Database(url, pool)
    try:
        upgrade(database)
    except BaseException:
        database.close()
        raise
    return database
