"""API keys: off by default; once configured, 401 without a valid key, 403 for a key
without the endpoint's scope; health (and by default metrics) stay open."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nlp.analyzer import Analyzer
from service.api.app import create_app
from service.api.auth import ApiKeyError, ApiKeyMiddleware, KeyRing, load_keyring, parse_env_keys
from service.settings import Settings
from tests.conftest import load_fixture

ANALYST = "analyst-key-0123456789"
WEBHOOK = "webhook-key-0123456789"
ADMIN = "admin-key-0123456789ab"
FILE_KEY = "file-key-abcdefghijklmnop"
HASHED_KEY = "hashed-key-abcdefghijklmnop"
TRANSCRIPT = load_fixture("double_charge.json")
MESSAGE = {"role": "customer", "text": "I was charged twice for one order."}


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(
        "keys:\n"
        f"  - {{name: reporting, key: {FILE_KEY}, scopes: [read]}}\n"
        f"  - {{name: hashed, sha256: {hashlib.sha256(HASHED_KEY.encode()).hexdigest()}, scopes: [analyze]}}\n"
    )
    return path


@pytest.fixture
def secured(tmp_path: Path, analyzer: Analyzer, keys_file: Path):
    settings = Settings(
        _env_file=None,
        db_path=tmp_path / "db.sqlite3",
        api_keys=f"{ANALYST}:analyze,{WEBHOOK}:conversations+read, {ADMIN}",
        api_keys_file=keys_file,
    )
    with TestClient(create_app(settings, analyzer)) as client:
        yield client


def test_without_keys_configured_every_endpoint_is_open(client: TestClient):
    assert client.post("/v1/analyze", json=TRANSCRIPT).status_code == 200
    assert client.post("/v1/conversations/c-open/messages", json=MESSAGE).status_code == 200
    assert client.get("/v1/models").status_code == 200
    assert "security" not in client.get("/openapi.json").json()["paths"]["/v1/analyze"]["post"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "wrong-key-0123456789"},
        {"Authorization": f"Basic {ANALYST}"},
        {"Authorization": "Bearer"},
        {"X-API-Key": ANALYST[:-1]},
        {"X-API-Key": ANALYST + "x"},
    ],
)
def test_a_missing_or_wrong_key_is_401(secured: TestClient, headers: dict):
    response = secured.post("/v1/analyze", json=TRANSCRIPT, headers=headers)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "unauthorized" and error["request_id"] == response.headers["x-request-id"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_401_comes_before_the_body_is_read_or_parsed(secured: TestClient):
    response = secured.post("/v1/analyze", content=b"{not json", headers={"content-type": "text/plain"})
    assert response.status_code == 401  # not 400 or 415: a stranger learns nothing


def test_a_key_works_in_either_header(secured: TestClient):
    assert secured.post("/v1/analyze", json=TRANSCRIPT, headers={"X-API-Key": ANALYST}).status_code == 200
    assert (
        secured.post("/v1/analyze", json=TRANSCRIPT, headers={"Authorization": f"Bearer {ANALYST}"}).status_code == 200
    )
    assert (
        secured.post("/v1/analyze", json=TRANSCRIPT, headers={"Authorization": f"bearer   {ANALYST}"}).status_code
        == 200
    )


@pytest.mark.parametrize(
    "key,method,path,body,status",
    [
        (ANALYST, "POST", "/v1/analyze", TRANSCRIPT, 200),
        (ANALYST, "POST", "/v1/analyze/batch", {"transcripts": [TRANSCRIPT]}, 200),
        (ANALYST, "POST", "/v1/conversations/c1/messages", MESSAGE, 403),
        (ANALYST, "GET", "/v1/models", None, 403),
        (WEBHOOK, "POST", "/v1/conversations/c1/messages", MESSAGE, 200),
        (WEBHOOK, "GET", "/v1/conversations/unknown", None, 404),
        (WEBHOOK, "GET", "/v1/models", None, 200),
        (WEBHOOK, "POST", "/v1/analyze", TRANSCRIPT, 403),
        (ADMIN, "POST", "/v1/analyze", TRANSCRIPT, 200),
        (ADMIN, "POST", "/v1/conversations/c2/messages", MESSAGE, 200),
        (FILE_KEY, "GET", "/v1/models", None, 200),
        (FILE_KEY, "POST", "/v1/analyze", TRANSCRIPT, 403),
        (HASHED_KEY, "POST", "/v1/analyze", TRANSCRIPT, 200),
        (HASHED_KEY, "GET", "/v1/models", None, 403),
        (WEBHOOK, "GET", "/v1/alerts", None, 403),
        (ADMIN, "GET", "/v1/alerts", None, 200),
    ],
)
def test_scopes(secured: TestClient, key, method, path, body, status):
    response = secured.request(method, path, json=body, headers={"X-API-Key": key})
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["error"]["code"] == "forbidden"


def test_unknown_paths_need_a_key_too(secured: TestClient):
    # No route enumeration for strangers: an unknown path is 401 first, 404 with a key.
    assert secured.get("/v1/secret").status_code == 401
    assert secured.get("/v1/secret", headers={"X-API-Key": ADMIN}).status_code == 404


def test_health_docs_and_metrics_stay_open(secured: TestClient):
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs", "/docs/assets/swagger-ui-bundle.js", "/metrics"):
        assert secured.get(path).status_code == 200, path


def test_metrics_can_be_closed(tmp_path: Path, analyzer: Analyzer):
    settings = Settings(
        _env_file=None,
        db_path=tmp_path / "db.sqlite3",
        api_keys=f"{ANALYST}:analyze,{ADMIN}:admin",
        metrics_public=False,
    )
    with TestClient(create_app(settings, analyzer)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"X-API-Key": ANALYST}).status_code == 403
        assert client.get("/metrics", headers={"X-API-Key": ADMIN}).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_the_spec_documents_the_keys_when_they_are_on(secured: TestClient):
    spec = secured.get("/openapi.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"ApiKeyHeader", "BearerKey"}
    operation = spec["paths"]["/v1/analyze"]["post"]
    assert operation["security"] and {"401", "403"} <= set(operation["responses"])
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_keys_are_kept_hashed(secured: TestClient):
    keyring: KeyRing = next(m.kwargs["keyring"] for m in secured.app.user_middleware if m.cls is ApiKeyMiddleware)
    held = repr([vars(k) if hasattr(k, "__dict__") else k for k in keyring.keys])
    assert ANALYST not in held and ANALYST.encode() not in b"".join(k.digest for k in keyring.keys)
    assert all(len(k.digest) == 32 for k in keyring.keys)
    assert ANALYST not in repr(secured.app.state.settings)  # the settings hold it as a secret


@pytest.mark.parametrize(
    "value,problem",
    [
        ("short", "at least 16"),
        ("clé-assez-longue-0123456789", "printable ASCII"),
        ("a-long-enough-key-123:analyse", "unknown scopes"),
        ("a-long-enough-key-123,a-long-enough-key-123", "are the same key"),
    ],
)
def test_bad_env_keys_stop_start_up(tmp_path: Path, value: str, problem: str):
    with pytest.raises(ApiKeyError, match=problem):
        create_app(Settings(_env_file=None, db_path=tmp_path / "db.sqlite3", api_keys=value))


@pytest.mark.parametrize(
    "content,problem",
    [
        ("keys: [{name: a, key: a-long-enough-key-123, sha256: '" + "0" * 64 + "'}]", "exactly one of"),
        ("keys: [{name: a}]", "exactly one of"),
        ("keys: [{name: a, key: a-long-enough-key-123, scopes: [root]}]", "unknown scopes"),
        ("keys: [{name: a, sha256: abc}]", "keys.0.sha256"),
        ("keys: [{name: a, key: a-long-enough-key-123, colour: red}]", "keys.0.colour"),
        ("{not yaml: [", "not valid YAML"),
        ("- just a list", "expected a mapping"),
        (json.dumps({"keys": [{"name": "a", "key": "short"}]}), "at least 16"),
    ],
)
def test_bad_keys_file_stops_start_up(tmp_path: Path, content: str, problem: str):
    path = tmp_path / "keys.yaml"
    path.write_text(content)
    with pytest.raises(ApiKeyError, match=problem):
        load_keyring(Settings(_env_file=None, api_keys_file=path))


def test_missing_keys_file_is_named(tmp_path: Path):
    with pytest.raises(ApiKeyError, match="nope.yaml"):
        load_keyring(Settings(_env_file=None, api_keys_file=tmp_path / "nope.yaml"))


def test_env_keys_parse_scopes():
    keys = parse_env_keys(f" {ANALYST}:analyze+read ,, {ADMIN} ")
    assert [(k.name, sorted(k.scopes)) for k in keys] == [
        ("env-1", ["analyze", "read"]),
        ("env-3", ["admin", "alerts", "analyze", "conversations", "ingest", "read"]),
    ]
    assert KeyRing(keys).identify(ANALYST).name == "env-1"
    assert KeyRing(keys).identify("nobody-0123456789") is None
