"""API keys: off until keys are configured (`CONVINTEL_API_KEYS`, `CONVINTEL_API_KEYS_FILE`
or both), then required on every endpoint but health, docs and (by default) metrics.

A caller sends its key as `X-API-Key: KEY` or `Authorization: Bearer KEY`. Keys are held
as SHA-256 digests only, and a presented key is compared with every configured digest
with `hmac.compare_digest`, so neither memory nor reply timing gives a key away. The check
is ASGI middleware that runs before the body is read: a caller without a key cannot make
the service read or parse anything.

Scopes: `analyze` (the /v1/analyze endpoints), `conversations` (the conversation
endpoints: post, read, list, delete one), `ingest` (the helpdesk webhooks, /v1/ingest/...),
`read` (/v1/models), `alerts` (the alert outbox: listing events, which quote conversations,
and re-driving failed deliveries) and `admin` (everything, any endpoint not mapped below,
and erasing a customer's conversations, which reaches across conversations by a person's
identity). A key configured without scopes has them all.

A helpdesk webhook whose helpdesk secret is configured needs no key: the helpdesk proves
itself with its signature, which the endpoint checks against the body it signs
(`service/api/ingest_routes.py`); most helpdesks cannot send our key anyway."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send

from nlp.yaml_config import ConfigFileError, read_validated
from service.api.errors import send_error
from service.api.request_context import matched_route, route_table
from service.api.request_id import header_value
from service.settings import Settings

ADMIN = "admin"
SCOPES = ("analyze", "conversations", "ingest", "read", "alerts", ADMIN)
# Route tag -> scope it needs. A route with none of these tags needs `admin`: a new
# endpoint is closed until someone decides who may call it.
SCOPE_BY_TAG = {
    "analysis": "analyze",
    "conversations": "conversations",
    "ingest": "ingest",
    "models": "read",
    "alerts": "alerts",
    "erasure": ADMIN,
}
# `ui`: the queue page's static files (no data; its script calls the API with a key);
# `docs`: Swagger UI and its files (they describe only the public API).
OPEN_TAGS = frozenset({"health", "ui", "docs"})
MIN_KEY_LENGTH = 16
API_KEY_HEADER = "X-API-Key"


class ApiKeyError(ConfigFileError):
    """The configured API keys cannot be used (bad file, short key, unknown scope...)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes  # SHA-256 of the key; the key itself is not kept
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return ADMIN in self.scopes or scope in self.scopes


class KeyEntry(BaseModel):
    """One key in the keys file: the key itself or its SHA-256 (hex), and its scopes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    key: SecretStr | None = None
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    scopes: list[str] = Field(default_factory=lambda: list(SCOPES))

    @model_validator(mode="after")
    def _one_secret(self) -> KeyEntry:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError("give exactly one of `key` and `sha256`")
        return self


class KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[KeyEntry]


class KeyRing:
    """The configured keys; empty means authentication is off."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self.keys = tuple(keys)
        seen: dict[bytes, str] = {}
        for key in self.keys:
            if key.digest in seen:
                raise ApiKeyError(f"API keys {seen[key.digest]!r} and {key.name!r} are the same key")
            seen[key.digest] = key.name

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def identify(self, presented: str) -> ApiKey | None:
        """The key matching `presented`, or None. Every configured key is compared, in
        constant time, whether or not an earlier one matched."""
        digest = hash_key(presented)
        found = None
        for key in self.keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def _checked_scopes(name: str, scopes: Iterable[str]) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in scopes if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise ApiKeyError(f"API key {name!r}: unknown scopes {unknown}; known: {', '.join(SCOPES)}")
    return scopes or frozenset(SCOPES)


def _checked_secret(name: str, key: str) -> str:
    # ASCII only: HTTP headers arrive as latin-1, so other characters would never match.
    if len(key) < MIN_KEY_LENGTH or not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
        raise ApiKeyError(
            f"API key {name!r} must be at least {MIN_KEY_LENGTH} printable ASCII characters, without spaces"
        )
    return key


def parse_env_keys(value: str) -> list[ApiKey]:
    """`KEY` or `KEY:scope+scope`, comma-separated; the keys are named env-1, env-2..."""
    keys = []
    for position, entry in enumerate((e.strip() for e in value.split(",")), start=1):
        if not entry:
            continue
        secret, _, scopes = entry.partition(":")
        name = f"env-{position}"
        keys.append(ApiKey(name, hash_key(_checked_secret(name, secret)), _checked_scopes(name, scopes.split("+"))))
    return keys


def read_keys_file(path: Path) -> list[ApiKey]:
    """Keys from a YAML or JSON file: `{"keys": [{"name", "key" | "sha256", "scopes"}]}`."""
    entries = read_validated(path, KeysFile, "API keys file", ApiKeyError).keys
    keys = []
    for entry in entries:
        if entry.key is not None:
            digest = hash_key(_checked_secret(entry.name, entry.key.get_secret_value()))
        else:
            digest = bytes.fromhex(entry.sha256 or "")
        keys.append(ApiKey(entry.name, digest, _checked_scopes(entry.name, entry.scopes)))
    return keys


def load_keyring(settings: Settings) -> KeyRing:
    """Every key from the settings (environment and file); raises ApiKeyError."""
    keys: list[ApiKey] = []
    if settings.api_keys is not None:
        keys += parse_env_keys(settings.api_keys.get_secret_value())
    if settings.api_keys_file is not None:
        keys += read_keys_file(settings.api_keys_file)
    return KeyRing(keys)


def presented_key(scope: Scope) -> str | None:
    """The key in `X-API-Key`, else the token of `Authorization: Bearer`."""
    key = header_value(scope, API_KEY_HEADER)
    if key:
        return key.strip()
    authorization = header_value(scope, "authorization") or ""
    method, _, token = authorization.strip().partition(" ")
    if method.lower() != "bearer":
        return None
    return token.strip() or None


def required_scope(scope: Scope, metrics_public: bool, signed_paths: frozenset[str] = frozenset()) -> str | None:
    """The scope the request needs, or None for an open endpoint or one whose caller
    proves itself with a signature (`signed_paths`: route templates)."""
    app = scope.get("app")
    path = scope["path"]
    open_paths = {
        getattr(app, name, None) for name in ("openapi_url", "docs_url", "redoc_url", "swagger_ui_oauth2_redirect_url")
    } - {None}
    if path in open_paths or (metrics_public and path == "/metrics"):
        return None
    route = matched_route(scope)
    if route is not None and route.template in signed_paths:
        return None
    tags = route.tags if route is not None else ()
    if OPEN_TAGS.intersection(tags):
        return None
    return next((SCOPE_BY_TAG[tag] for tag in tags if tag in SCOPE_BY_TAG), ADMIN)


class ApiKeyMiddleware:
    """401 without a valid key, 403 for a key without the endpoint's scope. Routes in
    `signed_paths` are passed through: their handlers check the caller's signature."""

    def __init__(
        self, app: ASGIApp, keyring: KeyRing, metrics_public: bool = True, signed_paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.keyring = keyring
        self.metrics_public = metrics_public
        self.signed_paths = signed_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keyring.enabled:
            await self.app(scope, receive, send)
            return
        needed = required_scope(scope, self.metrics_public, self.signed_paths)
        if needed is None:
            await self.app(scope, receive, send)
            return
        presented = presented_key(scope)
        key = self.keyring.identify(presented) if presented else None
        if key is None:
            await send_error(
                scope,
                send,
                401,
                "unauthorized",
                f"a valid API key is required ({API_KEY_HEADER} header or Authorization: Bearer)",
                headers={"WWW-Authenticate": "Bearer"},
            )
            return
        scope.setdefault("state", {})["api_key"] = key.name
        if not key.allows(needed):
            await send_error(scope, send, 403, "forbidden", f"API key {key.name!r} lacks the {needed!r} scope")
            return
        await self.app(scope, receive, send)


def document_api_keys(app: FastAPI, signed_paths: frozenset[str] = frozenset()) -> None:
    """Declare the key schemes, and 401/403 answers, in the OpenAPI spec of protected
    operations (call only when keys are configured); `signed_paths` take no key."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        components = spec.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update(
            {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
                "BearerKey": {"type": "http", "scheme": "bearer"},
            }
        )
        error_ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
        for route in route_table(app):
            operations = spec.get("paths", {}).get(route.template, {})
            if OPEN_TAGS.intersection(route.tags) or route.template in signed_paths or not operations:
                continue
            for method in route.methods:
                operation = operations.get(method.lower())
                if operation is None:
                    continue
                operation["security"] = [{"ApiKeyHeader": []}, {"BearerKey": []}]
                operation.setdefault("responses", {}).update(
                    {
                        "401": {"description": "No valid API key", **error_ref},
                        "403": {"description": "The key lacks this endpoint's scope", **error_ref},
                    }
                )
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
