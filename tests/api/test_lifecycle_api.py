"""Listing, deleting and erasing stored conversations over HTTP: pages and filters, clear
422s for bad parameters, deletions that leave no text in the database files, and scopes."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from nlp.analyzer import Analyzer
from service.api.app import create_app
from service.settings import Settings
from tests.api.test_store_lifecycle import seeded

SECRET = "zebra-quokka-7731"
"""A text no stored file holds by chance: found in the raw bytes, it was not erased."""


def file_bytes(db_path: Path) -> bytes:
    """The database file and its WAL, as bytes on disk."""
    return b"".join(path.read_bytes() for path in (db_path, Path(f"{db_path}-wal")) if path.exists())


def post(client: TestClient, conversation_id: str, text: str, **fields) -> None:
    response = client.post(
        f"/v1/conversations/{conversation_id}/messages", json={"role": "customer", "text": text, **fields}
    )
    assert response.status_code == 200, response.text


def walk(client: TestClient, limit: int, **filters) -> list[str]:
    """Every conversation id a client paging through `next_cursor` sees, in order."""
    seen, cursor = [], None
    while True:
        params = {**filters, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/conversations", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [item["conversation_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


@pytest.fixture
def seeded_client(database_url: str, analyzer: Analyzer):
    """An app over the five conversations of `seeded` (c5 changed last, c3 and c4 together)."""
    seeded(database_url).close()
    with TestClient(create_app(Settings(_env_file=None, database_url=database_url), analyzer)) as client:
        yield client


def test_pages_walk_every_conversation_once_newest_change_first(seeded_client: TestClient):
    assert walk(seeded_client, limit=2) == ["c5", "c4", "c3", "c2", "c1"]
    assert walk(seeded_client, limit=200) == ["c5", "c4", "c3", "c2", "c1"]
    first = seeded_client.get("/v1/conversations", params={"limit": 1}).json()
    assert first["items"] == [
        {
            "conversation_id": "c5",
            "channel": "chat",
            "customer_id": "bob",
            "language": None,
            "metadata": {},
            "created_at": first["items"][0]["created_at"],
            "updated_at": "2026-03-02T13:00:00.000+00:00",
            "message_count": 2,
            "escalation": {"level": "none", "route_to": "none", "rules": ["r1"]},
        }
    ]


def test_a_conversation_added_while_paging_is_not_in_the_pages_left(seeded_client: TestClient):
    first = seeded_client.get("/v1/conversations", params={"limit": 2}).json()
    post(seeded_client, "c6", "a new conversation, newest of all")
    rest = seeded_client.get("/v1/conversations", params={"limit": 10, "cursor": first["next_cursor"]}).json()
    assert [i["conversation_id"] for i in first["items"] + rest["items"]] == ["c5", "c4", "c3", "c2", "c1"]
    assert walk(seeded_client, limit=3)[0] == "c6"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"min_level": "none"}, ["c5", "c4", "c3", "c2", "c1"]),
        ({"min_level": "monitor"}, ["c4", "c3", "c2"]),
        ({"min_level": "urgent"}, ["c4"]),
        ({"channel": "chat"}, ["c5", "c3", "c1"]),
        ({"channel": "sms"}, []),
        ({"customer_id": "alice"}, ["c3", "c1"]),
        ({"updated_since": "2026-03-02T12:00:00Z"}, ["c5", "c4", "c3"]),
        ({"updated_since": "2026-03-02T12:00:00"}, ["c5", "c4", "c3"]),  # naive: UTC
        ({"updated_since": "2026-03-02T14:00:00+02:00"}, ["c5", "c4", "c3"]),
        ({"updated_since": "2026-03-02T12:00:00.001Z"}, ["c5"]),
        ({"min_level": "monitor", "channel": "chat", "customer_id": "alice"}, ["c3"]),
    ],
)
def test_each_filter(seeded_client: TestClient, filters: dict, expected: list[str]):
    assert walk(seeded_client, limit=2, **filters) == expected


def cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"min_level": "high"}, "min_level"),
        ({"channel": "fax"}, "channel"),
        ({"customer_id": ""}, "customer_id"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"updated_since": "1700000000"}, "updated_since"),
        ({"cursor": "not a cursor!"}, "cursor"),
        ({"cursor": "abc"}, "cursor"),
        ({"cursor": cursor_of(b'{"after": "c1"}')}, "cursor"),
        ({"cursor": cursor_of(b'["last tuesday", "c1"]')}, "cursor"),
        ({"cursor": cursor_of(b"\xff\xfe")}, "cursor"),
        ({"min_levle": "urgent"}, "min_levle"),
    ],
)
def test_bad_list_parameters_are_a_clear_422(seeded_client: TestClient, params: dict, field: str):
    response = seeded_client.get("/v1/conversations", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and [d["field"] for d in error["details"]] == [field]


@pytest.mark.sqlite
def test_delete_removes_the_conversation_and_its_text_from_the_files(client: TestClient, settings: Settings):
    post(client, "doomed", f"my code word is {SECRET}", customer_id="cust-1")
    post(client, "doomed", "filler " * 800 + SECRET)  # longer than a page: kept on overflow pages
    post(client, "kept", "nothing to hide here")
    assert SECRET.encode() in file_bytes(settings.db_path)  # the check below can fail
    response = client.delete("/v1/conversations/doomed")
    assert response.status_code == 204 and response.content == b""
    assert SECRET.encode() not in file_bytes(settings.db_path)
    assert client.app.state.store.cache.get("doomed") is None
    assert client.get("/v1/conversations/doomed").status_code == 404
    again = client.delete("/v1/conversations/doomed")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    assert walk(client, limit=10) == ["kept"]
    post(client, "doomed", "starting over")  # the same id later: a new conversation
    assert [m["text"] for m in client.get("/v1/conversations/doomed").json()["messages"]] == ["starting over"]


@pytest.mark.sqlite
def test_erase_deletes_every_conversation_of_the_customer_and_its_text(client: TestClient, settings: Settings):
    customer = "acme/jane doe"  # ids are free text: a slash and a space must not stop an erasure
    post(client, "t1", f"first ticket {SECRET}", customer_id=customer)
    post(client, "t2", f"second ticket {SECRET}", customer_id=customer)
    post(client, "t3", "someone else's ticket", customer_id="acme/john")
    assert customer.encode() in file_bytes(settings.db_path)
    response = client.post(f"/v1/customers/{quote(customer, safe='')}/erase")
    assert response.status_code == 200, response.text
    assert response.json() == {"customer_id": customer, "conversations_deleted": 2}
    stored = file_bytes(settings.db_path)
    assert SECRET.encode() not in stored and customer.encode() not in stored
    assert walk(client, limit=10) == ["t3"]
    assert client.post("/v1/customers/acme/jane doe/erase").json()["conversations_deleted"] == 0
    assert client.post("/v1/customers/nobody/erase").json() == {"customer_id": "nobody", "conversations_deleted": 0}


CONVERSATIONS_KEY = "conversations-key-0123456789"
ADMIN_KEY = "admin-key-0123456789abcdef"


def test_listing_and_deleting_need_conversations_and_erasing_needs_admin(tmp_path: Path, analyzer: Analyzer):
    settings = Settings(
        _env_file=None, db_path=tmp_path / "s.db", api_keys=f"{CONVERSATIONS_KEY}:conversations,{ADMIN_KEY}:admin"
    )
    with TestClient(create_app(settings, analyzer)) as client:
        helpdesk, admin = {"X-API-Key": CONVERSATIONS_KEY}, {"X-API-Key": ADMIN_KEY}
        assert client.get("/v1/conversations").status_code == 401
        assert client.get("/v1/conversations", headers=helpdesk).status_code == 200
        assert client.delete("/v1/conversations/c1", headers=helpdesk).status_code == 404  # allowed, unknown
        refused = client.post("/v1/customers/c/erase", headers=helpdesk)
        assert refused.status_code == 403 and "'admin'" in refused.json()["error"]["message"]
        assert client.post("/v1/customers/c/erase", headers=admin).status_code == 200
        erase = client.get("/openapi.json").json()["paths"]["/v1/customers/{customer_id}/erase"]["post"]
        assert erase["security"] and "403" in erase["responses"]


def test_a_405_names_every_method_of_the_path(client: TestClient):
    response = client.put("/v1/conversations/c1", json={})
    assert response.status_code == 405 and response.headers["allow"] == "DELETE, GET"
    assert client.patch("/v1/conversations").headers["allow"] == "GET"


@pytest.mark.parametrize("customer", ["two\nlines", "50% off/ü", " "])
def test_any_customer_id_can_be_erased(client: TestClient, customer: str):
    post(client, "c1", "hello", customer_id=customer)
    response = client.post(f"/v1/customers/{quote(customer, safe='')}/erase")
    assert response.json() == {"customer_id": customer, "conversations_deleted": 1}


def test_an_empty_or_overlong_customer_id_is_a_422(client: TestClient):
    for customer in ("", "x" * 257):
        response = client.post(f"/v1/customers/{customer}/erase")
        assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "customer_id"


def test_a_post_without_a_body_needs_no_content_type(client: TestClient):
    assert client.post("/v1/customers/c1/erase").status_code == 200
    missing = client.post("/v1/analyze")  # a body is required: the endpoint says so, not the type check
    assert missing.status_code == 422 and missing.json()["error"]["details"][0]["field"] == "body"
    typed = client.post("/v1/analyze", content=b"{}", headers={"content-type": "text/plain"})
    assert typed.status_code == 415
