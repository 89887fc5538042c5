"""The escalation advice and privacy guarantees over HTTP, with the service's full text
inspection (risk cues, categories, redaction) switched on as it ships."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.api.app import create_app
from service.runtime import load_analyzer
from service.settings import Settings
from service.store.tables import metadata
from tests.conftest import ROOT

CARD, EMAIL, PHONE = "4111 1111 1111 1111", "maria.lopez@example.com", "+44 7700 900123"


@pytest.fixture(scope="module")
def full_analyzer():
    return load_analyzer(Settings(_env_file=None, models_dir=ROOT / "models"))


@pytest.fixture
def full_settings(tmp_path) -> Settings:
    return Settings(_env_file=None, db_path=tmp_path / "state.sqlite3", models_dir=ROOT / "models")


@pytest.fixture
def full_client(full_settings, full_analyzer):
    with TestClient(create_app(full_settings, full_analyzer)) as client:
        yield client


def post(client: TestClient, conversation: str, mid: str, text: str, role: str = "customer") -> dict:
    response = client.post(
        f"/v1/conversations/{conversation}/messages", json={"id": mid, "role": role, "text": text, "channel": "chat"}
    )
    assert response.status_code == 200, response.text
    return response.json()["conversation"]["escalation"]


def test_change_flag_fires_once_per_level_change(full_client):
    first = post(full_client, "c1", "m1", "Hi, what are your opening hours on Saturday?")
    assert first["level"] == "none" and first["changed"] is False
    second = post(
        full_client,
        "c1",
        "m2",
        "Someone used my card without permission, this is fraud. I will report you to the regulator.",
    )
    assert second["level"] in ("escalate", "urgent")
    assert second["changed"] is True and second["previous_level"] == "none"
    third = post(full_client, "c1", "m3", "Also there is another unknown payment on the same card.")
    assert third["level"] == second["level"]
    assert third["changed"] is False and third["previous_level"] == second["level"]
    retry = full_client.post(
        "/v1/conversations/c1/messages", json={"id": "m3", "role": "customer", "text": "whatever", "channel": "chat"}
    ).json()
    assert retry["duplicate"] is True and retry["conversation"]["escalation"]["changed"] is False


def test_no_raw_personal_data_in_any_response_or_stored_row(full_client, full_settings):
    texts = [
        f"My card {CARD} was charged twice and I want a refund. Email me at {EMAIL}.",
        f"This is the third time I write! Call me on {PHONE}, or I will cancel and post a review about you.",
    ]
    replies = [
        full_client.post(
            "/v1/conversations/p1/messages", json={"id": f"m{i}", "role": "customer", "text": text, "channel": "email"}
        )
        for i, text in enumerate(texts, start=1)
    ]
    whole = full_client.post(
        "/v1/analyze", json={"channel": "email", "messages": [{"role": "customer", "text": text} for text in texts]}
    )
    state = full_client.get("/v1/conversations/p1")
    bodies = [r.text for r in (*replies, whole, state)]
    assert all(r.status_code == 200 for r in (*replies, whole, state))
    escalation = state.json()["conversation"]["escalation"]
    assert escalation["recommended"] is True  # the cues still fired on the original text
    quotes = [e["quote"] for reason in escalation["reasons"] for e in reason["evidence"] if e.get("quote")]
    assert quotes, "evidence quotes are returned"
    for body in bodies:
        for secret in (CARD, EMAIL, "7700 900123", "4111"):
            assert secret not in body
    stored_text = [m["text"] for m in state.json()["messages"]]
    assert "<email>" in stored_text[0] or "[email]" in stored_text[0]

    with full_client.app.state.store.database.read() as db:  # every row of every table
        dump = "\n".join(str(row) for table in metadata.sorted_tables for row in db.execute(select(table)))
    assert "customer" in dump  # the dump holds the stored rows
    for secret in (CARD, EMAIL, "4111", "900123"):
        assert secret not in dump
