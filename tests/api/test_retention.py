"""Retention: the service's background purge and `convintel purge` delete conversations not
changed for CONVINTEL_RETENTION_DAYS days, text included, and nothing else."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from nlp.analyzer import Analyzer
from service.api.app import create_app
from service.cli import app as cli
from service.settings import Settings, get_settings
from tests.api.test_lifecycle_api import SECRET, file_bytes, post
from tests.api.test_store_lifecycle import add, set_updated_at
from tests.conftest import open_store

LONG_AGO = datetime.now(UTC) - timedelta(days=40)


def listed(client: TestClient) -> list[str]:
    return [item["conversation_id"] for item in client.get("/v1/conversations").json()["items"]]


def wait_until_gone(client: TestClient, conversation_id: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while conversation_id in listed(client):
        assert time.monotonic() < deadline, f"{conversation_id} was not purged within {timeout_s} s"
        time.sleep(0.05)


def test_the_service_purges_expired_conversations_at_start_and_on_its_interval(
    database_url: str, tmp_path: Path, analyzer: Analyzer
):
    store = open_store(database_url)
    add(store, "stale", f"an old complaint {SECRET}")
    set_updated_at(store, "stale", LONG_AGO)
    store.close()
    settings = Settings(_env_file=None, database_url=database_url, retention_days=30, retention_interval_s=0.1)
    with TestClient(create_app(settings, analyzer)) as client:
        wait_until_gone(client, "stale")  # the start-up purge
        post(client, "fresh", "a recent question")
        post(client, "ageing", f"soon stale {SECRET}")
        set_updated_at(client.app.state.store, "ageing", LONG_AGO)
        wait_until_gone(client, "ageing")  # a later purge
        assert client.app.state.store.cache.get("ageing") is None
        assert client.get("/v1/conversations/ageing").status_code == 404
        assert listed(client) == ["fresh"]
        if store.database.is_sqlite:  # PostgreSQL's dead rows are VACUUM's: docs/operations.md
            assert SECRET.encode() not in file_bytes(tmp_path / "s.db")


def test_without_retention_nothing_is_purged(database_url: str, analyzer: Analyzer):
    store = open_store(database_url)
    add(store, "stale", "an old complaint")
    set_updated_at(store, "stale", LONG_AGO)
    store.close()
    settings = Settings(_env_file=None, database_url=database_url, retention_days=0, retention_interval_s=0.05)
    with TestClient(create_app(settings, analyzer)) as client:
        time.sleep(0.3)
        assert listed(client) == ["stale"]


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`convintel` settings from the environment: the store in tmp_path and no model bundle
    anywhere, so a command that tried to load one would fail."""
    monkeypatch.setenv("CONVINTEL_DB_PATH", str(tmp_path / "s.db"))
    monkeypatch.setenv("CONVINTEL_MODELS_DIR", str(tmp_path / "no-models"))
    monkeypatch.delenv("CONVINTEL_RETENTION_DAYS", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def run(*args: str):
    get_settings.cache_clear()
    return CliRunner().invoke(cli, ["purge", *args])


def test_purge_deletes_expired_conversations_from_the_configured_store(database_url: str, tmp_path: Path, environment):
    store = open_store(database_url)
    add(store, "stale", f"an old complaint {SECRET}")
    add(store, "fresh", "a recent question")
    set_updated_at(store, "stale", LONG_AGO)
    store.close()
    on_sqlite = store.database.is_sqlite  # else CONVINTEL_DATABASE_URL names the PostgreSQL schema
    dry = run("--older-than-days", "30", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith("1 conversation(s) not changed since ") and "would be deleted" in dry.stdout
    assert not on_sqlite or SECRET.encode() in file_bytes(tmp_path / "s.db")
    assert run("--older-than-days", "41", "--dry-run").stdout.startswith("0 conversation(s)")
    environment.setenv("CONVINTEL_RETENTION_DAYS", "30")
    done = run()
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("deleted 1 conversation(s) not changed since ")
    assert not on_sqlite or SECRET.encode() not in file_bytes(tmp_path / "s.db")
    assert open_store(database_url).get("fresh") is not None and open_store(database_url).get("stale") is None


@pytest.mark.sqlite
def test_purge_without_a_period_or_a_store_is_a_clear_error(tmp_path: Path, environment):
    no_period = run()
    assert no_period.exit_code == 2 and "set CONVINTEL_RETENTION_DAYS or pass --older-than-days" in no_period.output
    no_store = run("--older-than-days", "30")
    assert no_store.exit_code == 2 and f"no conversation store at {tmp_path / 's.db'}" in no_store.output
    assert not (tmp_path / "s.db").exists()
    assert run("--older-than-days", "0").exit_code == 2  # "everything" is not a retention period
