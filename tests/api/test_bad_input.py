"""Bad input gets a clear 4xx naming the problem, or a documented partial result; never a 500."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from nlp.analyzer import Analyzer
from nlp.config import InspectionConfig
from nlp.inspection import build_inspector
from service.api.app import create_app
from service.settings import Settings


def transcript(*messages: dict, **fields) -> dict:
    return {"channel": "chat", "messages": list(messages), **fields}


def customer(text: str, **fields) -> dict:
    return {"role": "customer", "text": text, **fields}


def nested(levels: int) -> dict:
    """A JSON object `levels` objects deep ({} is one level)."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


REJECTED = [
    # (case, body, status, field named in the error)
    ("empty messages list", transcript(), 422, "messages"),
    ("messages missing", {"channel": "chat"}, 422, "messages"),
    ("unknown role", transcript({"role": "robot", "text": "hi"}), 422, "messages.0.role"),
    ("unknown channel", transcript(customer("hi"), channel="pigeon"), 422, "channel"),
    ("text missing", transcript({"role": "customer"}), 422, "messages.0.text"),
    ("blank text", transcript(customer("   \n\t ")), 422, "messages.0.text"),
    ("control characters only", transcript(customer("\x00\u200b\x07 ")), 422, "messages.0.text"),
    ("text not a string", transcript(customer(12)), 422, "messages.0.text"),
    ("invalid timestamp", transcript(customer("hi", timestamp="yesterday at noon")), 422, "messages.0.timestamp"),
    ("numeric timestamp", transcript(customer("hi", timestamp=1700000000)), 422, "messages.0.timestamp"),
    ("Unix time as a string", transcript(customer("hi", timestamp="1700000000")), 422, "messages.0.timestamp"),
    ("oversized message", transcript(customer("a" * 20_001)), 413, "messages.0.text"),
    ("duplicate message ids", transcript(customer("a", id="x"), customer("b", id="x")), 422, "messages"),
    ("bad message id", transcript(customer("a", id="has space")), 422, "messages.0.id"),
    ("metadata not an object", transcript(customer("a"), metadata=[1, 2]), 422, "metadata"),
    ("metadata nested too deep", transcript(customer("a"), metadata=nested(33)), 422, "metadata"),
    ("metadata nested past recursion", transcript(customer("a"), metadata=nested(900)), 422, "metadata"),
    ("customer id with a NUL character", transcript(customer("a"), customer_id="cust\x00-1"), 422, "customer_id"),
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


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_metadata_numbers_that_are_not_finite_are_422(client: TestClient, number: bytes):
    # Python's JSON parser takes them; stored, they came back as null.
    body = b'{"messages": [{"role": "customer", "text": "hi"}], "metadata": {"x": ' + number + b"}}"
    response = client.post("/v1/analyze", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "metadata"


def test_nested_metadata_is_stored_up_to_its_limit_and_every_read_still_works(client: TestClient):
    # Deeper values once broke the validator (a 500) or, a little less deep, were stored and
    # then broke every read of the conversation and of the listing.
    refused = client.post("/v1/conversations/c1/messages", json=customer("hi", metadata=nested(400)))
    assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "metadata"
    assert client.post("/v1/conversations/c1/messages", json=customer("hi", metadata=nested(32))).status_code == 200
    assert client.get("/v1/conversations/c1").status_code == 200
    assert client.get("/v1/conversations").status_code == 200


def test_nul_characters_are_dropped_before_anything_is_stored(client: TestClient):
    # PostgreSQL cannot store NUL in text: it was a 500 there.
    body = customer("hello\x00 world", customer_id="cust-1", metadata={"k\x00": ["v\x00"]})
    assert client.post("/v1/conversations/c1/messages", json=body).status_code == 200
    response = client.get("/v1/conversations/c1")
    assert response.status_code == 200 and "\\u0000" not in response.text
    assert response.json()["metadata"] == {"k": ["v"]}


def test_a_time_without_a_zone_is_stored_and_returned_as_utc(client: TestClient):
    assert (
        client.post("/v1/conversations/c1/messages", json=customer("hi", timestamp="2026-03-04T10:15")).status_code
        == 200
    )
    (message,) = client.get("/v1/conversations/c1").json()["messages"]
    assert datetime.fromisoformat(message["timestamp"]) == datetime(2026, 3, 4, 10, 15, tzinfo=UTC)


def test_invisible_characters_cannot_hide_an_email_from_redaction(settings: Settings, analyzer: Analyzer):
    redacting = Analyzer(
        analyzer.encoder,
        analyzer.bundle,
        analyzer.policy,
        inspector=build_inspector(InspectionConfig(detect_cues=False, match_categories=False)),
    )
    text = "write to jane\x01.doe@example.com or jane\u200b.roe@example.com"
    with TestClient(create_app(settings, redacting)) as client:
        assert client.post("/v1/conversations/c1/messages", json=customer(text)).status_code == 200
        (message,) = client.get("/v1/conversations/c1").json()["messages"]
    assert message["text"] == "write to [email] or [email]"


def test_customer_ids_with_a_nul_character_are_422_everywhere(client: TestClient):
    listing = client.get("/v1/conversations", params={"customer_id": "cust\x00-1"})
    assert listing.status_code == 422 and listing.json()["error"]["details"][0]["field"] == "customer_id"
    assert client.post("/v1/customers/cust%00-1/erase").status_code == 422
    assert client.post("/v1/customers/cust-1/erase").status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(["2026-01-01T00:00:00Z", "\ud800"]).encode(),  # a lone surrogate, escaped
        b'["2026-01-01T00:00:00Z","\xed\xa0\x80"]',  # the same as raw bytes
        json.dumps(["2026-01-01T00:00:00Z", "a\x00"]).encode(),
        json.dumps(["2026-01-01T00:00:00Z", "not an id"]).encode(),
    ],
    ids=["escaped-surrogate", "surrogate-bytes", "nul", "not-an-id"],
)
def test_a_forged_cursor_is_422(client: TestClient, raw: bytes):
    cursor = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    response = client.get("/v1/conversations", params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "cursor"


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
