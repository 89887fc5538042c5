"""The `convintel` command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from service.cli import app
from tests.conftest import FIXTURES

runner = CliRunner()


def test_analyze_file_prints_the_analysis():
    result = runner.invoke(app, ["analyze", str(FIXTURES / "transcripts" / "happy_resolution.json")])
    assert result.exit_code == 0, result.output
    analysis = json.loads(result.stdout)
    assert analysis["conversation_id"] == "demo-2001" and len(analysis["messages"]) == 3


def test_analyze_stdin():
    body = json.dumps({"messages": [{"role": "customer", "text": "My card was stolen, block it now!"}]})
    result = runner.invoke(app, ["analyze", "-", "--no-pretty"], input=body)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["messages"][0]["role"] == "customer"


def test_analyze_bad_input_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"messages": []}')
    result = runner.invoke(app, ["analyze", str(bad)])
    assert result.exit_code == 2 and "not a valid transcript" in result.output
    missing = runner.invoke(app, ["analyze", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_serve_refuses_a_broken_bundle(tmp_path, monkeypatch):
    from service.settings import get_settings

    monkeypatch.setenv("CONVINTEL_MODELS_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["serve"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "no model bundle named 'convintel-base'" in result.output


@pytest.mark.parametrize("command", [["check"], ["serve"], ["db", "current"], ["purge", "--dry-run"]])
def test_a_bad_setting_is_one_error_line_naming_the_variable(monkeypatch, command):
    from service.settings import get_settings

    monkeypatch.setenv("CONVINTEL_ZENDESK_WEBHOOK_SECRET", "")
    monkeypatch.setenv("CONVINTEL_FRESHDESK_WEBHOOK_TOKEN", "short")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, command)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid configuration: "), result.output
    assert "CONVINTEL_ZENDESK_WEBHOOK_SECRET: " in lines[0] and "CONVINTEL_FRESHDESK_WEBHOOK_TOKEN: " in lines[0]


@pytest.mark.sqlite  # where state goes: the SQLite file (CONVINTEL_DATABASE_URL unset)
def test_check_validates_the_configuration_and_says_where_state_goes(tmp_path, monkeypatch):
    from service.settings import get_settings

    monkeypatch.setenv("CONVINTEL_DB_PATH", str(tmp_path / "state.sqlite3"))
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["check"])
        monkeypatch.setenv("CONVINTEL_POLICY_FILE", str(tmp_path / "missing.yaml"))
        get_settings.cache_clear()
        broken = runner.invoke(app, ["check"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "model bundle: convintel-base" in result.stdout and "encoder backend: torch" in result.stdout
    assert f"conversation state: {tmp_path / 'state.sqlite3'}" in result.stdout
    assert result.stdout.endswith("configuration ok\n")
    assert not (tmp_path / "state.sqlite3").exists(), "check writes no state"
    assert broken.exit_code == 2 and "configuration check failed" in broken.output and "missing.yaml" in broken.output


def test_check_names_an_unreachable_database_in_one_line(monkeypatch):
    from service.settings import get_settings

    # Port 9 (discard) has no PostgreSQL server: the connection is refused at once.
    monkeypatch.setenv("CONVINTEL_DATABASE_URL", "postgresql+psycopg://convintel:secret@127.0.0.1:9/convintel")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["check"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "cannot open the database postgresql+psycopg://convintel:***@127.0.0.1:9/convintel" in result.output
    assert "secret" not in result.output and "Traceback" not in result.output
