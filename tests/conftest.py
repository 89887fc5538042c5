"""Shared fixtures: the real shipped bundle (loaded once per session), app instances over a
temporary conversation store, and the database that store lives in.

The store is SQLite unless CONVINTEL_TEST_DATABASE=postgresql (`make test-postgres`): then a
throwaway PostgreSQL server starts for the session (tests/postgres_server.py), and every
store a test opens, through the `database_url` fixture, the settings or a server process,
is a fresh PostgreSQL schema. Tests about SQLite's own files are marked `sqlite` and stay on
SQLite; tests marked `postgres` always run on PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from nlp.analyzer import Analyzer
from nlp.config import AnalyzerConfig, InspectionConfig
from service.api.app import create_app
from service.settings import Settings
from service.store import ConversationStore, sqlite_url
from service.store.migrate import open_database
from tests.postgres_server import PostgresServer, missing_binaries

# CI (CI=true) replays the same examples every run, so a red build always means a change
# broke something; local runs keep exploring new examples (`make test-fuzz` explores more).
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
BUNDLE = ROOT / "models" / "convintel-base"
NO_INSPECTION = InspectionConfig(detect_cues=False, redact_pii=False, match_categories=False)
"""The session analyzer loads no spaCy pipeline; tests that need one build their own."""
ON_POSTGRES = os.environ.get("CONVINTEL_TEST_DATABASE", "sqlite").lower() in ("postgres", "postgresql")
"""CONVINTEL_TEST_DATABASE=postgresql: every store the tests open is on PostgreSQL."""


def in_ci() -> bool:
    """CI=true: a test that needs a missing tool fails instead of skipping."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(message: str) -> None:
    """Skip, saying how to get what is missing; in CI, fail, so that CI cannot pass by skipping."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / "transcripts" / name).read_text())


def bundle_with_window(folder: Path, max_seq_length: int) -> Path:
    """A copy of the shipped bundle in `folder` whose manifest reads `max_seq_length` word pieces."""
    shutil.copytree(BUNDLE, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["encoder"]["max_seq_length"] = max_seq_length
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def open_store(database_url: str, cache_messages: int = 100) -> ConversationStore:
    """A store on the database at `database_url`, migrated: several calls act like several
    server processes on one database."""
    return ConversationStore(open_database(database_url), cache_messages=cache_messages)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    """The session's PostgreSQL server, started on first use; None where it cannot start
    (the tests needing it skip, or fail in CI)."""
    if missing_binaries():
        yield None
        return
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer | None) -> str:
    """A fresh PostgreSQL schema's URL."""
    if postgres_server is None:
        skip_or_fail(str(missing_binaries()))
    assert postgres_server is not None
    return postgres_server.new_schema_url()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test's database: a SQLite file in its folder, or a fresh PostgreSQL schema (the
    switch above, or a test marked `postgres`)."""
    wants_postgres = request.node.get_closest_marker("postgres") or (
        ON_POSTGRES and not request.node.get_closest_marker("sqlite")
    )
    if wants_postgres:
        return request.getfixturevalue("postgres_url")
    return sqlite_url(tmp_path / "s.db")


@pytest.fixture(autouse=True)
def _database_from_switch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the PostgreSQL switch, the settings a test builds, and the server processes it
    starts, use the test's PostgreSQL schema (CONVINTEL_DATABASE_URL)."""
    if ON_POSTGRES and not request.node.get_closest_marker("sqlite"):
        monkeypatch.setenv("CONVINTEL_DATABASE_URL", request.getfixturevalue("database_url"))


@pytest.fixture(scope="session")
def analyzer() -> Analyzer:
    return Analyzer.load(AnalyzerConfig(BUNDLE, inspection=NO_INSPECTION))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, db_path=tmp_path / "conversations.sqlite3", models_dir=ROOT / "models")


@pytest.fixture
def client(settings: Settings, analyzer: Analyzer):
    with TestClient(create_app(settings, analyzer)) as test_client:
        yield test_client
