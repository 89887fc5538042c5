"""Bad input gets a clear 4xx naming the problem, or a documented partial result; never a 500."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings


def transcript(*messages: dict, **fields) -> dict:
    return {"channel": "chat", "messages": list(messages), **fields}


def customer(text: str, **fields) -> dict:
    return {"role": "customer", "text": text, **fields}


REJECTED = [
    # (case, body, status, field named in the error)
    ("empty messages list", transcript(), 422, "messages"),
    ("messages missing", {"channel": "chat"}, 422, "messages"),
    ("unknown role", transcript({"role": "robot", "text": "hi"}), 422, "messages.0.role"),
    ("unknown channel", transcript(customer("hi"), channel="pigeon"), 422, "channel"),
    ("text missing", transcript({"role": "customer"}), 422, "messages.0.text"),
    ("blank text", transcript(customer("   \n\t ")), 422, "messages.0.text"),
    ("text not a string", transcript(customer(12)), 422, "messages.0.text"),
    ("invalid timestamp", transcript(customer("hi", timestamp="yesterday at noon")), 422, "messages.0.timestamp"),
    ("numeric timestamp", transcript(customer("hi", timestamp=1700000000)), 422, "messages.0.timestamp"),
    ("oversized message", transcript(customer("a" * 20_001)), 413, "messages.0.text"),
    ("duplicate message ids", transcript(customer("a", id="x"), customer("b", id="x")), 422, "messages"),
    ("bad message id", transcript(customer("a", id="has space")), 422, "messages.0.id"),
    ("metadata not an object", transcript(customer("a"), metadata=[1, 2]), 422, "metadata"),
    ("bad language tag", transcript(customer("a"), language="english please"), 422, "language"),
    ("body is a list", [customer("hi")], 422, "body"),
]


@pytest.mark.parametrize("case,body,status,field", REJECTED, ids=[c[0] for c in REJECTED])
def test_rejected_transcripts_name_the_field(client: TestClient, case, body, status, field):
    response = client.post("/v1/analyze", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status
    named = [d["field"] for d in error["details"]] + [error["message"]]
    assert any(field in item for item in named), (case, error)


@pytest.mark.parametrize(
    "body", [b'{"messages": [', b'\xff\xfe{"messages": []}', b"\x80abc"], ids=["cut", "utf16", "bytes"]
)
def test_invalid_json_is_400(client: TestClient, body: bytes):
    response = client.post("/v1/analyze", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_a_post_without_a_body_is_422_not_415(client: TestClient):
    response = client.post("/v1/analyze")
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "body"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(client: TestClient, content_type):
    headers = {"content-type": content_type} if content_type else {}
    body = json.dumps(transcript(customer("hi"))).encode()
    response = client.post("/v1/analyze", content=body, headers=headers)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_emoji_only_message_is_analysed_with_a_warning(client: TestClient):
    response = client.post("/v1/analyze", json=transcript(customer("😡😡😡"), customer("🙏")))
    assert response.status_code == 200
    assert all("no_words" in m["warnings"] for m in response.json()["messages"])


def test_non_english_text_is_analysed_with_a_language_warning(client: TestClient):
    body = transcript(customer("Me cobraron dos veces y nadie me responde, quiero mi dinero ya."), language="es")
    response = client.post("/v1/analyze", json=body)
    assert response.status_code == 200
    assert any("language 'es'" in w for w in response.json()["warnings"])
    # Without a declared language it is still analysed (documented: English models).
    assert client.post("/v1/analyze", json=transcript(customer("Обслуживание ужасное"))).status_code == 200


def test_control_characters_and_long_text_are_handled(client: TestClient):
    body = transcript(customer("my\x00 order\u200b is \x07late"), customer("word " * 3000))
    response = client.post("/v1/analyze", json=body)
    assert response.status_code == 200
    assert "truncated" in response.json()["messages"][1]["warnings"]


def test_agent_only_conversation_is_a_documented_partial_result(client: TestClient):
    response = client.post("/v1/analyze", json=transcript({"role": "agent", "text": "Hello, how can I help?"}))
    assert response.status_code == 200
    result = response.json()
    assert result["conversation"]["sentiment"] is None
    assert result["conversation"]["escalation"]["level"] == "none"
    assert any("no customer messages" in w for w in result["warnings"])


def test_bad_conversation_id_in_path_is_422(client: TestClient):
    response = client.post("/v1/conversations/bad%20id/messages", json=customer("hi"))
    assert response.status_code == 422
    assert client.post(f"/v1/conversations/{'x' * 200}/messages", json=customer("hi")).status_code == 422


def test_per_message_bad_inputs(client: TestClient):
    assert client.post("/v1/conversations/c1/messages", json={"role": "customer"}).status_code == 422
    too_long = client.post("/v1/conversations/c1/messages", json=customer("b" * 20_001))
    assert too_long.status_code == 413 and "text" in too_long.json()["error"]["message"]
    assert client.get("/v1/conversations/c1").status_code == 404, "rejected messages create nothing"


@pytest.fixture
def small_limits_client(tmp_path, analyzer):
    settings = Settings(
        _env_file=None, db_path=tmp_path / "db.sqlite3", max_body_bytes=4096, max_messages=3, max_batch_transcripts=2
    )
    with TestClient(create_app(settings, analyzer)) as test_client:
        yield test_client


def test_limits_from_settings(small_limits_client: TestClient):
    client = small_limits_client
    big = client.post("/v1/analyze", json=transcript(customer("x" * 5000)))
    assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
    assert [d["field"] for d in big.json()["error"]["details"]] == ["body"]
    many = client.post("/v1/analyze", json=transcript(*[customer("hi")] * 4))
    assert many.status_code == 413 and "messages" in many.json()["error"]["message"]
    batch = client.post("/v1/analyze/batch", json={"transcripts": [transcript(customer("hi"))] * 3})
    assert batch.status_code == 413 and "transcripts" in batch.json()["error"]["message"]
    for i in range(3):
        assert client.post("/v1/conversations/full/messages", json=customer(f"msg {i}")).status_code == 200
    full = client.post("/v1/conversations/full/messages", json=customer("one too many"))
    assert full.status_code == 413 and [d["field"] for d in full.json()["error"]["details"]] == ["conversation_id"]
    assert len(client.get("/v1/conversations/full").json()["messages"]) == 3
