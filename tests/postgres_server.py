"""A throwaway PostgreSQL server for the test session: a new cluster (Debian's PostgreSQL
binaries, run as the `postgres` user, since initdb refuses root) in a temporary folder, on a
free port of 127.0.0.1, removed when the session ends. Each test gets a schema of its own."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from bench.server import free_port

BIN_DIR = Path(os.environ.get("CONVINTEL_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
INSTALL_HINT = (
    f"the PostgreSQL tests need initdb and pg_ctl in {BIN_DIR} (apt-get install postgresql-15, "
    "or set CONVINTEL_TEST_PG_BIN to the folder holding them)"
)
SERVER_OPTIONS = (
    # A test database: durability is not what the tests measure (the store asks nothing of it).
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB"
)


def missing_binaries() -> str | None:
    """Why no server can be started here (None: it can)."""
    missing = [name for name in ("initdb", "pg_ctl") if not os.access(BIN_DIR / name, os.X_OK)]
    return f"{', '.join(missing)} not found; {INSTALL_HINT}" if missing else None


def _as_postgres(*command: str | Path) -> list[str]:
    """Run as the `postgres` user when this is root (initdb and the server refuse root)."""
    args = [str(part) for part in command]
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@dataclass
class PostgresServer:
    folder: Path
    port: int
    _schemas: itertools.count = field(default_factory=itertools.count)

    @classmethod
    def start(cls) -> PostgresServer:
        folder = Path(tempfile.mkdtemp(prefix="convintel-pg-"))
        data = folder / "data"
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        subprocess.run(
            _as_postgres(BIN_DIR / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"),
            check=True,
            capture_output=True,
        )
        server = cls(folder, free_port())
        subprocess.run(
            _as_postgres(
                BIN_DIR / "pg_ctl",
                "-D",
                data,
                "-l",
                folder / "server.log",
                "-w",
                "-o",
                f"-p {server.port} -k {folder} -c listen_addresses=127.0.0.1 {SERVER_OPTIONS}",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        return server

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        subprocess.run(
            _as_postgres(BIN_DIR / "pg_ctl", "-D", self.folder / "data", "-m", "immediate", "-w", "stop"),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def new_schema_url(self) -> str:
        """The URL of a new, empty schema: a database of its own, as far as the store can tell
        (its tables, its alembic_version), made in milliseconds."""
        schema = f"test_{next(self._schemas)}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {schema}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres?options=-csearch_path%3D{schema}"
