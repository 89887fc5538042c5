"""Schema migrations: a SQLite file written before migrations existed is adopted by
`convintel db upgrade` (and at start-up) with its rows kept; replicas starting together on
one database migrate once; a database URL the store cannot use is refused with a clear error."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from service.cli import app as cli
from service.settings import Settings, get_settings
from service.store import ConversationFilter, Database, sqlite_url
from service.store.migrate import current_revision, head_revision, open_database
from tests.conftest import open_store

# What the version before migrations wrote (service/store.py's and the outbox's CREATE statements).
EARLIER_SCHEMA = """
CREATE TABLE conversations (id TEXT PRIMARY KEY, channel TEXT NOT NULL, customer_id TEXT, language TEXT,
    metadata TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    escalation_level TEXT, escalation_route TEXT, escalation_rules TEXT);
CREATE TABLE messages (conversation_id TEXT NOT NULL REFERENCES conversations(id), seq INTEGER NOT NULL,
    message_id TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL, timestamp TEXT, analysis TEXT NOT NULL,
    model_version TEXT NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, message_id));
CREATE INDEX conversations_by_update ON conversations (updated_at, id);
CREATE INDEX conversations_by_customer ON conversations (customer_id, updated_at, id);
CREATE TABLE alert_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
    conversation_id TEXT NOT NULL, target_url TEXT NOT NULL, target_name TEXT NOT NULL, format TEXT NOT NULL,
    body TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, last_error TEXT, last_attempt_at TEXT,
    created_at TEXT NOT NULL, delivered_at TEXT);
CREATE INDEX alert_outbox_due ON alert_outbox (status, next_attempt_at);
CREATE INDEX alert_outbox_order ON alert_outbox (target_url, conversation_id, status, seq);
INSERT INTO conversations VALUES ('old', 'chat', 'cust-1', 'en', '{"plan": "pro"}',
    '2025-01-01T00:00:00.000+00:00', '2025-01-02T00:00:00.000+00:00', 'urgent', 'supervisor', '["r1"]');
INSERT INTO alert_outbox (id, type, conversation_id, target_url, target_name, format, body, status, created_at)
    VALUES ('evt-1', 'escalation.changed', 'old', 'http://h', 'h', 'json', '{}', 'delivered', '2025-01-02');
"""


def run_db(*args: str, db_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONVINTEL_DB_PATH", str(db_path))
    monkeypatch.delenv("CONVINTEL_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, ["db", *args])
    finally:
        get_settings.cache_clear()


@pytest.mark.sqlite
def test_a_file_from_before_migrations_is_adopted_with_its_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "earlier.sqlite3"
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(EARLIER_SCHEMA)
    assert run_db("current", db_path=path, monkeypatch=monkeypatch).stdout.endswith(
        f": unversioned (newest: {head_revision()})\n"
    )
    upgraded = run_db("upgrade", db_path=path, monkeypatch=monkeypatch)
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout == f"{path}: unversioned -> {head_revision()}\n"
    again = run_db("upgrade", db_path=path, monkeypatch=monkeypatch)
    assert again.exit_code == 0 and again.stdout == f"{path}: at {head_revision()}\n"
    store = open_store(sqlite_url(path))
    (old,), _ = store.list_conversations(ConversationFilter(), limit=5)
    assert (old.id, old.customer_id, old.metadata, old.escalation_level, old.escalation_rules) == (
        "old",
        "cust-1",
        {"plan": "pro"},
        "urgent",
        ["r1"],
    )
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT id, status FROM alert_outbox").fetchall() == [("evt-1", "delivered")]
    store.close()


def test_replicas_starting_together_migrate_once(database_url: str):
    opened: list[Database] = []
    errors: list[Exception] = []

    def start() -> None:
        try:
            opened.append(open_database(database_url))
        except Exception as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[:2]
    assert {current_revision(database) for database in opened} == {head_revision()}
    for database in opened:
        database.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql+asyncpg://u@h/db", "psycopg 3"),
        ("sqlite://", "in-memory"),
        ("not a url", "not a database URL"),
    ],
)
def test_a_database_url_the_store_cannot_use_is_refused(url: str, says: str):
    with pytest.raises(ValidationError, match=says):
        Settings(_env_file=None, database_url=url)


def test_database_urls_are_normalised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVINTEL_DATABASE_URL", raising=False)  # the settings read it, JSON or not
    relative = Settings(_env_file=None, database_url="sqlite:///var/s.db")
    assert relative.store_url() == sqlite_url(tmp_path / "var" / "s.db")
    plain = Settings(_env_file=None, database_url="postgresql://u:pw@db.example.com/convintel")
    assert plain.store_url() == "postgresql+psycopg://u:pw@db.example.com/convintel"
    assert "pw" not in repr(plain) and "pw" not in Database(plain.store_url()).describe()
    # Workers get the settings as JSON (service/batch/engines.py): no password, and still valid.
    assert "pw" not in plain.model_dump_json()
    assert Settings.model_validate_json(plain.model_dump_json()).database_url is None
