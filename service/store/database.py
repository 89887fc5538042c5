"""The database the conversation store and the alert outbox share: one SQLAlchemy engine,
that is one connection pool, over SQLite (the default: one embedded file) or PostgreSQL
(through psycopg 3: several server processes, on several machines, on one database).

What differs between the two backends lives here and nowhere else:

- SQLite: every connection runs with WAL, synchronous=FULL (a commit is on disk before the
  reply goes out), foreign keys, and `secure_delete` (deleted content is overwritten with
  zeros). Write transactions are IMMEDIATE, so writers queue for the file and what a write
  transaction reads is every committed row. After a deletion the WAL is checkpointed with
  TRUNCATE: its older frames still hold the deleted text.
- PostgreSQL: write transactions run at READ COMMITTED and lock what they change: the
  conversation's row (`SELECT ... FOR UPDATE`) and, for a conversation that has no row yet,
  a transaction advisory lock on its id, so two replicas appending to one conversation
  take turns. Writers locking several conversations lock them in the order of their ids
  (code points, whatever the database's collation), so they never deadlock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.sql.elements import ColumnElement

from nlp.extras import require
from service.database_url import describe_database_url, parse_database_url

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another (process's) write transaction before failing."""
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "secure_delete=ON")
MIGRATION_LOCK_KEY = 0x636F6E76  # "conv": the advisory lock replicas take to migrate one at a time
_WRITE = "convintel_write"  # execution option: SQLite begins this transaction IMMEDIATE


class DatabaseClosed(RuntimeError):
    """The database was closed (the service is shutting down): no new connection is made."""


@dataclass(frozen=True)
class PoolConfig:
    """The connection pool: `size` connections kept open, up to `overflow` more under load,
    and how long a caller waits for one before failing."""

    size: int = 5
    overflow: int = 10
    timeout_s: float = 30.0


class Database:
    """An engine (connection pool) over one database, with read and write transactions
    that behave alike on both backends. Thread-safe."""

    def __init__(self, url: str, pool: PoolConfig | None = None) -> None:
        self.url = parse_database_url(url)
        pool = pool or PoolConfig()
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        options: dict[str, Any] = {
            "pool_size": pool.size,
            "max_overflow": pool.overflow,
            "pool_timeout": pool.timeout_s,
        }
        if self.is_sqlite:
            Path(self.url.database or "").parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}
        else:
            require("psycopg", "postgres", "a PostgreSQL store (CONVINTEL_DATABASE_URL)")
            options["pool_pre_ping"] = True  # a server restart leaves dead connections in the pool
        self.engine: Engine = create_engine(self.url, **options)
        self._closed = False
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)

    def describe(self) -> str:
        """The SQLite file, or the URL without its password, for logs."""
        return describe_database_url(self.url.render_as_string(hide_password=False))

    def close(self) -> None:
        """Close every pooled connection; the database is then closed for good (an engine
        would otherwise open new connections on the next use)."""
        self._closed = True
        self.engine.dispose()

    def _connect(self) -> Connection:
        if self._closed:
            raise DatabaseClosed(f"the database {self.describe()} is closed")
        return self.engine.connect()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot on SQLite; each statement sees what
        was committed before it on PostgreSQL (READ COMMITTED)."""
        with self._connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: it commits when the block ends, or rolls back when it raises.
        On SQLite it is IMMEDIATE: it waits for the file's other writers first."""
        with self._connect() as connection:
            connection.execution_options(**{_WRITE: True})
            with connection.begin():
                yield connection

    def lock_key(self, connection: Connection, key: str) -> None:
        """Hold `key` (a conversation id) until the transaction ends, whether or not a row
        exists for it yet: another write transaction locking the same key waits. SQLite's
        IMMEDIATE transaction already holds the whole file."""
        if not self.is_sqlite:
            connection.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))

    def in_lock_order(self, key: ColumnElement[str]) -> ColumnElement[str]:
        """`key` (conversation ids) to ORDER BY when locking rows: the order of Python's
        `sorted`, which is how a group commit locks its conversations (code points; the
        database's collation may differ), so that writers locking several never deadlock."""
        return key if self.is_sqlite else key.collate("C")  # SQLite compares bytes already

    def lock_migrations(self, connection: Connection) -> None:
        """Let one process at a time migrate (replicas starting together)."""
        if not self.is_sqlite:
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))

    def after_delete(self) -> None:
        """Once a deleting transaction has committed: leave no copy of the deleted text in
        the database's files. On SQLite, copy every WAL frame into the main file and truncate
        the WAL; it waits (up to the busy timeout) for other connections' reads, and if one
        still holds an old snapshot, a later checkpoint empties it instead. PostgreSQL's
        dead rows are VACUUM's (autovacuum's) to reclaim: see docs/operations.md."""
        if not self.is_sqlite:
            return
        with self._connect() as connection:
            # On the driver's connection: outside any transaction, which a checkpoint needs.
            busy, _, _ = connection.connection.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).fetchone()
        if busy:
            log.warning("WAL not emptied after a deletion: another connection is reading; a later checkpoint will")


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's "begin" event below issues BEGIN itself (the driver's own is unreliable).
    dbapi_connection.isolation_level = None
    for pragma in SQLITE_PRAGMAS:
        dbapi_connection.execute(f"PRAGMA {pragma}")


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(_WRITE) else "BEGIN")
