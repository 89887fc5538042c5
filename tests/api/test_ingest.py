"""Helpdesk webhooks (POST /v1/ingest/...): each helpdesk's fixture deliveries, signed the
way the helpdesk signs, are stored as messages; a redelivery stores nothing twice; a
missing, wrong or stale signature is 401; a payload without a field it needs is 422 naming
the field; a delivery with no message (a note, another topic) is 200 `ignored`; and the
vendor signature stands in for the API key."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from nlp.analyzer import Analyzer
from nlp.schemas import Channel
from service.api.app import create_app
from service.ingest.delivery import channel_from
from service.ingest.html_text import message_text
from service.settings import Settings
from tests.conftest import FIXTURES

INGEST = FIXTURES / "ingest"
ZENDESK_SECRET = "dGVzdC16ZW5kZXNrLXNpZ25pbmctc2VjcmV0"
INTERCOM_SECRET = "3f1c0a9e5b7d4c2a8e6f0b1d3c5a7e9f"
FRESHDESK_TOKEN = "freshdesk-rule-token-0123456789"
INGEST_KEY = "ingest-key-0123456789ab"
CONVERSATIONS_KEY = "conversations-key-0123456789"


def fixture_body(name: str) -> bytes:
    return (INGEST / name).read_bytes()


def zendesk_headers(body: bytes, secret: str = ZENDESK_SECRET, at: datetime | None = None) -> dict[str, str]:
    """Headers as Zendesk sends them: base64(HMAC-SHA256(secret, timestamp + body))."""
    timestamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return {
        "content-type": "application/json",
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }


def intercom_headers(body: bytes, secret: str = INTERCOM_SECRET) -> dict[str, str]:
    """Headers as Intercom sends them: X-Hub-Signature: sha1=<hex HMAC-SHA1(client secret, body)>."""
    signature = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {"content-type": "application/json", "X-Hub-Signature": f"sha1={signature}"}


def freshdesk_headers(token: str = FRESHDESK_TOKEN) -> dict[str, str]:
    return {"content-type": "application/json", "X-Convintel-Ingest-Token": token}


SIGNERS = {
    "zendesk": lambda body: zendesk_headers(body),
    "intercom": lambda body: intercom_headers(body),
    "freshdesk": lambda body: freshdesk_headers(),
}


def signed_post(client: TestClient, helpdesk: str, body: bytes):
    return client.post(f"/v1/ingest/{helpdesk}", content=body, headers=SIGNERS[helpdesk](body))


def make_settings(tmp_path: Path, **overrides) -> Settings:
    return Settings(_env_file=None, db_path=tmp_path / "conversations.sqlite3", **overrides)


@pytest.fixture
def signed(tmp_path: Path, analyzer: Analyzer):
    """Every helpdesk's secret configured, no API keys."""
    settings = make_settings(
        tmp_path,
        zendesk_webhook_secret=ZENDESK_SECRET,
        intercom_client_secret=INTERCOM_SECRET,
        freshdesk_webhook_token=FRESHDESK_TOKEN,
    )
    with TestClient(create_app(settings, analyzer)) as client:
        yield client


def stored(client: TestClient, conversation_id: str) -> dict:
    response = client.get(f"/v1/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    return response.json()


# --- each helpdesk's deliveries --------------------------------------------------------


def test_zendesk_comments_are_stored_and_a_redelivery_is_a_duplicate(signed: TestClient):
    first = signed_post(signed, "zendesk", fixture_body("zendesk/customer_comment.json"))
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["helpdesk"] == "zendesk" and answer["conversation_id"] == "zendesk:35436"
    assert answer["message_ids"] == ["54509363035291"] and answer["duplicate"] is False
    assert answer["message"]["role"] == "customer" and answer["message"]["urgency"] is not None
    assert signed_post(signed, "zendesk", fixture_body("zendesk/agent_reply.json")).status_code == 200

    # Zendesk redelivers with a fresh timestamp and signature: nothing new is stored.
    again = signed_post(signed, "zendesk", fixture_body("zendesk/customer_comment.json"))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["message"] == answer["message"]

    conversation = stored(signed, "zendesk:35436")
    assert [(m["id"], m["role"]) for m in conversation["messages"]] == [
        ("54509363035291", "customer"),
        ("54509451282203", "agent"),
    ]
    assert conversation["messages"][0]["timestamp"].startswith("2024-05-25T01:23:45")
    assert conversation["channel"] == "email" and conversation["customer_id"] == "20978392"
    metadata = conversation["metadata"]
    assert metadata["helpdesk"] == "zendesk" and metadata["priority"] == "high" and metadata["tier"] == "enterprise"
    assert metadata["tags"] == ["billing", "vip"]


def test_intercom_notifications_are_stored_with_html_read_as_text(signed: TestClient):
    for name in ("user_created", "admin_replied", "user_replied"):
        response = signed_post(signed, "intercom", fixture_body(f"intercom/{name}.json"))
        assert response.status_code == 200, response.text
    conversation = stored(signed, "intercom:147000001")
    messages = conversation["messages"]
    # The admin reply's assignment part has no body: only its comment is a message.
    assert [(m["id"], m["role"]) for m in messages] == [
        ("source-403918330", "customer"),
        ("20113498417", "agent"),
        ("20113512005", "customer"),
    ]
    assert messages[0]["text"] == (
        "Hi! The app logs me out every time I open it since yesterday's update.\n\nI can't get to my invoices."
    )
    assert all("<" not in m["text"] and "&#39;" not in m["text"] for m in messages)
    assert messages[1]["timestamp"].startswith("2024-06-04T10:05:00")
    assert conversation["channel"] == "chat" and conversation["customer_id"] == "cust-7781"
    assert conversation["metadata"]["tier"] == "pro" and conversation["metadata"]["priority"] == "priority"

    again = signed_post(signed, "intercom", fixture_body("intercom/user_replied.json"))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(stored(signed, "intercom:147000001")["messages"]) == 3


def test_an_intercom_notification_with_several_parts_records_each_once(signed: TestClient):
    payload = json.loads(fixture_body("intercom/user_replied.json"))
    parts = payload["data"]["item"]["conversation_parts"]["conversation_parts"]
    follow_up = {**copy.deepcopy(parts[0]), "id": "20113512006", "body": "<p>Hello? Anyone there?</p>"}
    parts.append(follow_up)
    body = json.dumps(payload).encode()
    answer = signed_post(signed, "intercom", body).json()
    assert answer["message_ids"] == ["20113512005", "20113512006"] and answer["duplicate"] is False
    assert answer["message"]["id"] == "20113512006"
    assert signed_post(signed, "intercom", body).json()["duplicate"] is True
    assert len(stored(signed, "intercom:147000001")["messages"]) == 2


def test_freshdesk_rules_are_stored_without_the_quoted_history_or_the_email(signed: TestClient):
    answers = [
        signed_post(signed, "freshdesk", fixture_body(f"freshdesk/{name}.json"))
        for name in ("ticket_created", "agent_reply", "customer_reply")
    ]
    assert [a.status_code for a in answers] == [200, 200, 200], answers[-1].text
    conversation = stored(signed, "freshdesk:4821")
    assert [m["role"] for m in conversation["messages"]] == ["customer", "agent", "customer"]
    reply = conversation["messages"][2]["text"]
    assert "cancelling my account" in reply and "escalated the refund" not in reply  # the quote is dropped
    assert "jamie.doe" not in json.dumps(conversation)  # the customer id is a digest of the address
    assert conversation["customer_id"].startswith("email-sha256:")
    assert conversation["channel"] == "email" and conversation["metadata"]["plan"] == "business"

    again = signed_post(signed, "freshdesk", fixture_body("freshdesk/customer_reply.json"))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["message_ids"] == [conversation["messages"][2]["id"]]
    assert len(stored(signed, "freshdesk:4821")["messages"]) == 3


# --- deliveries without a message: 200 and `ignored` -------------------------------------


@pytest.mark.parametrize(
    "helpdesk,name,reason",
    [
        ("zendesk", "zendesk/private_note.json", "private comment"),
        ("intercom", "intercom/admin_noted.json", "conversation.admin.noted"),
        ("intercom", "intercom/ping.json", "topic ping"),
    ],
)
def test_deliveries_without_a_message_are_ignored_with_success(signed: TestClient, helpdesk, name, reason):
    response = signed_post(signed, helpdesk, fixture_body(name))
    assert response.status_code == 200, response.text
    assert response.json()["helpdesk"] == helpdesk and reason in response.json()["ignored"]
    assert signed.get("/v1/conversations/zendesk:35436").status_code == 404
    assert signed.get("/v1/conversations/intercom:147000001").status_code == 404
    metrics = signed.get("/metrics").text
    assert f'convintel_ingest_deliveries_total{{helpdesk="{helpdesk}",outcome="ignored"}}' in metrics


def test_empty_placeholders_are_fields_not_given(signed: TestClient):
    # A Zendesk placeholder with nothing to render arrives as "".
    payload = json.loads(fixture_body("zendesk/customer_comment.json"))
    payload.update(comment_public="", requester_id="", via="", priority="", status="", updated_at="", tags="")
    response = signed_post(signed, "zendesk", json.dumps(payload).encode())
    assert response.status_code == 200, response.text
    conversation = stored(signed, "zendesk:35436")
    assert conversation["customer_id"] is None and conversation["channel"] == "other"
    assert conversation["messages"][0]["timestamp"]  # when it was received
    assert set(conversation["metadata"]) == {"organization", "tier", "helpdesk"}


def test_a_reply_with_only_a_note_or_an_attachment_is_ignored(signed: TestClient):
    payload = json.loads(fixture_body("intercom/user_replied.json"))
    part = payload["data"]["item"]["conversation_parts"]["conversation_parts"][0]
    part["body"] = '<div class="intercom-container"><img src="https://example.com/screenshot.png"></div>'
    response = signed_post(signed, "intercom", json.dumps(payload).encode())
    assert response.status_code == 200 and "no message with text" in response.json()["ignored"]


# --- signatures --------------------------------------------------------------------------


def _tampered(body: bytes) -> bytes:
    return body.replace(b"charged twice", b"charged thrice")


@pytest.mark.parametrize(
    "helpdesk,name,headers",
    [
        ("zendesk", "zendesk/customer_comment.json", lambda body: {"content-type": "application/json"}),
        ("zendesk", "zendesk/customer_comment.json", lambda body: zendesk_headers(body, secret="another-secret")),
        ("zendesk", "zendesk/customer_comment.json", lambda body: zendesk_headers(_tampered(body))),
        (
            "zendesk",
            "zendesk/customer_comment.json",
            lambda body: {**zendesk_headers(body), "X-Zendesk-Webhook-Signature-Timestamp": "yesterday"},
        ),
        ("intercom", "intercom/user_created.json", lambda body: {"content-type": "application/json"}),
        ("intercom", "intercom/user_created.json", lambda body: intercom_headers(body, secret="0" * 32)),
        ("intercom", "intercom/user_created.json", lambda body: intercom_headers(body + b" ")),
        ("freshdesk", "freshdesk/customer_reply.json", lambda body: {"content-type": "application/json"}),
        ("freshdesk", "freshdesk/customer_reply.json", lambda body: freshdesk_headers("not-the-token-0123456789")),
    ],
)
def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(signed: TestClient, helpdesk, name, headers):
    body = fixture_body(name)
    response = signed.post(f"/v1/ingest/{helpdesk}", content=body, headers=headers(body))
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["code"] == "unauthorized" and error["request_id"] == response.headers["x-request-id"]
    conversation_id = {"zendesk": "zendesk:35436", "intercom": "intercom:147000001", "freshdesk": "freshdesk:4821"}
    assert signed.get(f"/v1/conversations/{conversation_id[helpdesk]}").status_code == 404


def test_an_unsigned_body_gets_401_before_it_is_parsed(signed: TestClient):
    response = signed.post("/v1/ingest/zendesk", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 401  # not 400: a stranger learns nothing about the payload


@pytest.mark.parametrize("offset", [timedelta(minutes=-10), timedelta(minutes=10)])
def test_a_stale_zendesk_timestamp_is_401(signed: TestClient, offset: timedelta):
    body = fixture_body("zendesk/customer_comment.json")
    headers = zendesk_headers(body, at=datetime.now(UTC) + offset)  # correctly signed, but replayed
    response = signed.post("/v1/ingest/zendesk", content=body, headers=headers)
    assert response.status_code == 401
    assert "s away from the server's clock" in response.json()["error"]["message"]


def test_the_zendesk_window_is_a_setting(tmp_path: Path, analyzer: Analyzer):
    settings = make_settings(tmp_path, zendesk_webhook_secret=ZENDESK_SECRET, zendesk_signature_max_age_s=3600)
    body = fixture_body("zendesk/customer_comment.json")
    with TestClient(create_app(settings, analyzer)) as client:
        headers = zendesk_headers(body, at=datetime.now(UTC) - timedelta(minutes=10))
        assert client.post("/v1/ingest/zendesk", content=body, headers=headers).status_code == 200


# --- payloads that are not what the adapter reads: 400 and 422 naming the field ----------


def _without(name: str, *path: str) -> bytes:
    payload = json.loads(fixture_body(name))
    holder = payload
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    return json.dumps(payload).encode()


def _with(name: str, value, *path: str) -> bytes:
    payload = json.loads(fixture_body(name))
    holder = payload
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    "helpdesk,body,field,message",
    [
        (
            "intercom",
            _without("intercom/user_replied.json", "data", "item", "conversation_parts"),
            "data.item.conversation_parts",
            "intercom payload: data.item.conversation_parts missing",
        ),
        (
            "intercom",
            _without("intercom/user_created.json", "data", "item", "source"),
            "data.item.source",
            "intercom payload: data.item.source missing",
        ),
        (
            "intercom",
            _with(
                "intercom/user_replied.json",
                [{"id": "9", "part_type": "comment", "body": "hi", "author": {"type": "robot"}}],
                "data",
                "item",
                "conversation_parts",
                "conversation_parts",
            ),
            "data.item.conversation_parts.conversation_parts.0.author.type",
            "intercom payload: data.item.conversation_parts.conversation_parts.0.author.type:",
        ),
        ("intercom", _without("intercom/user_replied.json", "data"), "data", "intercom payload: data missing"),
        (
            "zendesk",
            _without("zendesk/customer_comment.json", "comment_id"),
            "comment_id",
            "zendesk payload: comment_id missing",
        ),
        (
            "zendesk",
            _with("zendesk/customer_comment.json", "", "comment_id"),  # a placeholder that rendered nothing
            "comment_id",
            "zendesk payload: comment_id:",
        ),
        (
            "zendesk",
            _with("zendesk/customer_comment.json", "Light-agent-ish", "author_role"),
            "author_role",
            "zendesk payload: author_role:",
        ),
        (
            "freshdesk",
            _without("freshdesk/customer_reply.json", "author_role"),
            "author_role",
            "freshdesk payload: author_role missing",
        ),
        ("freshdesk", b"[1, 2]", "payload", "freshdesk payload: payload:"),
        ("zendesk", b"", "payload", "zendesk payload: payload missing"),
        ("intercom", b" \n", "payload", "intercom payload: payload missing"),
    ],
)
def test_an_incomplete_payload_is_422_naming_the_field(signed: TestClient, helpdesk, body, field, message):
    response = signed_post(signed, helpdesk, body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["message"].startswith(message)
    assert field in [d["field"] for d in error["details"]]


def test_a_comment_with_nul_characters_is_stored_without_them_and_deep_metadata_is_422(signed: TestClient):
    # NUL was a 500 on PostgreSQL; metadata hundreds of levels deep was stored and broke every read.
    deep: dict = {}
    for _ in range(299):
        deep = {"a": deep}
    refused = signed_post(signed, "zendesk", _with("zendesk/customer_comment.json", deep, "metadata"))
    assert refused.status_code == 422 and "metadata" in refused.json()["error"]["details"][0]["field"]
    accepted = signed_post(signed, "zendesk", _with("zendesk/customer_comment.json", "hi \x00 there", "body"))
    assert accepted.status_code == 200, accepted.text
    conversation = stored(signed, accepted.json()["conversation_id"])
    assert [m["text"] for m in conversation["messages"]] == ["hi  there"]


@pytest.mark.parametrize("helpdesk", ["zendesk", "intercom", "freshdesk"])
def test_a_signed_body_that_is_not_json_is_400(signed: TestClient, helpdesk: str):
    response = signed_post(signed, helpdesk, b'{"ticket_id": ')
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


def test_a_comment_over_the_length_limit_is_413(tmp_path: Path, analyzer: Analyzer):
    body = _with("zendesk/customer_comment.json", "x" * 101, "body")
    with TestClient(create_app(make_settings(tmp_path, max_message_chars=100), analyzer)) as client:
        response = client.post("/v1/ingest/zendesk", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["details"][0]["field"] == "messages.0.text"


# --- the signature instead of the API key ------------------------------------------------


def test_without_secrets_or_keys_the_endpoints_are_open_like_the_rest(client: TestClient):
    body = fixture_body("freshdesk/ticket_created.json")
    response = client.post("/v1/ingest/freshdesk", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200 and response.json()["conversation_id"] == "freshdesk:4821"


@pytest.fixture
def keyed(tmp_path: Path, analyzer: Analyzer):
    """API keys on; only Zendesk's secret configured."""
    settings = make_settings(
        tmp_path,
        api_keys=f"{INGEST_KEY}:ingest,{CONVERSATIONS_KEY}:conversations",
        zendesk_webhook_secret=ZENDESK_SECRET,
    )
    with TestClient(create_app(settings, analyzer)) as client:
        yield client


def test_a_helpdesk_without_a_secret_needs_an_api_key_with_the_ingest_scope(keyed: TestClient):
    body = fixture_body("freshdesk/ticket_created.json")
    json_type = {"content-type": "application/json"}
    assert keyed.post("/v1/ingest/freshdesk", content=body, headers=json_type).status_code == 401
    forbidden = keyed.post("/v1/ingest/freshdesk", content=body, headers={**json_type, "X-API-Key": CONVERSATIONS_KEY})
    assert forbidden.status_code == 403 and "'ingest'" in forbidden.json()["error"]["message"]
    allowed = keyed.post("/v1/ingest/freshdesk", content=body, headers={**json_type, "X-API-Key": INGEST_KEY})
    assert allowed.status_code == 200, allowed.text


def test_a_configured_signature_replaces_the_api_key(keyed: TestClient):
    body = fixture_body("zendesk/customer_comment.json")
    assert keyed.post("/v1/ingest/zendesk", content=body, headers=zendesk_headers(body)).status_code == 200
    # A key is no substitute for the signature once the helpdesk's secret is set.
    with_key = keyed.post(
        "/v1/ingest/zendesk", content=body, headers={"content-type": "application/json", "X-API-Key": INGEST_KEY}
    )
    assert with_key.status_code == 401
    # The signature opens the ingest endpoint only.
    assert keyed.get("/v1/conversations/zendesk:35436", headers=zendesk_headers(b"")).status_code == 401


def test_the_spec_documents_the_payloads_and_who_needs_a_key(keyed: TestClient):
    paths = keyed.get("/openapi.json").json()["paths"]
    zendesk_body = paths["/v1/ingest/zendesk"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"ticket_id", "comment_id", "author_role", "body"} <= set(zendesk_body["required"])
    intercom_body = paths["/v1/ingest/intercom"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "$ref" not in json.dumps(intercom_body)  # definitions inline
    assert "security" not in paths["/v1/ingest/zendesk"]["post"]  # signed, not keyed
    assert paths["/v1/ingest/freshdesk"]["post"]["security"]  # no token set: an API key
    assert "401" in paths["/v1/ingest/zendesk"]["post"]["responses"]


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value,problem",
    [
        ("zendesk_webhook_secret", "  ", "must not be blank"),
        ("intercom_client_secret", "", "must not be blank"),
        ("freshdesk_webhook_token", "short", "at least 16"),
        ("freshdesk_webhook_token", "a token with spaces in it", "without spaces"),
    ],
)
def test_unusable_secrets_stop_start_up(tmp_path: Path, field: str, value: str, problem: str):
    with pytest.raises(ValidationError, match=problem):
        make_settings(tmp_path, **{field: value})


# --- the adapters' text and channel rules ------------------------------------------------


@pytest.mark.parametrize(
    "body,text",
    [
        ("I typed a < b and 3 > 2", "I typed a < b and 3 > 2"),  # plain text is left alone
        ("  plain, trimmed \n", "plain, trimmed"),
        ("<p>one</p><p>two&nbsp;&amp; three</p>", "one\n\ntwo & three"),
        ("line<br>break<br/>again", "line\nbreak\nagain"),
        ("<div>reply</div><blockquote>quoted <blockquote>twice</blockquote> old</blockquote>", "reply"),
        ('<div>new</div><div class="gmail_quote"><div>On Monday you wrote:</div>old</div>', "new"),
        ("<style>p {color: red}</style><p>shown</p><script>alert(1)</script>", "shown"),
        ('<img src="a.png">', ""),
    ],
)
def test_message_text(body: str, text: str):
    assert message_text(body) == text


@pytest.mark.parametrize(
    "name,channel",
    [
        ("Mail", Channel.email),
        ("Email", Channel.email),
        ("Chat", Channel.chat),
        ("conversation", Channel.chat),
        ("phone_call", Channel.voice),
        ("Phone call (incoming)", Channel.voice),
        ("Text", Channel.sms),
        ("Facebook Messenger", Channel.social),
        ("whatsapp", Channel.social),
        ("Web Form", Channel.other),
        ("Portal", Channel.other),
        (None, None),
    ],
)
def test_channel_from(name, channel):
    assert channel_from(name) == channel
