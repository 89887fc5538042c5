"""Database URLs as the settings take them (CONVINTEL_DATABASE_URL): which backends are
supported and how a SQLite path is written as a URL. Kept apart from the store, whose
imports are heavy, so that reading the settings stays cheap."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def parse_database_url(url: str) -> URL:
    """`url` parsed; ValueError unless it names SQLite (`sqlite:///path`) or PostgreSQL
    (`postgresql://...`, which is taken as `postgresql+psycopg://...`)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL ({exc}): use sqlite:///PATH or postgresql+psycopg://...") from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://...")
    if backend == "postgresql":
        if "+" in parsed.drivername and parsed.drivername != "postgresql+psycopg":
            raise ValueError("PostgreSQL is reached through psycopg 3: use postgresql+psycopg://...")
        parsed = parsed.set(drivername="postgresql+psycopg")  # SQLAlchemy's default driver varies
    if backend == "sqlite" and not parsed.database:
        raise ValueError("an in-memory SQLite database is not shared between connections: use sqlite:///PATH")
    return parsed


def sqlite_url(path: Path) -> str:
    """The URL of the SQLite file at `path`."""
    return URL.create("sqlite", database=str(path)).render_as_string()


def describe_database_url(url: str) -> str:
    """What logs and `convintel check` show: a SQLite file's path, or the URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database)
    return parsed.render_as_string(hide_password=True)
