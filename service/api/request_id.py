"""Request ids: taken from the caller's `X-Request-ID` when it is safe to echo and log,
generated otherwise. The id lives in the ASGI scope's state (what `request.state` reads),
so middleware, handlers and error responses all answer with the same one."""

from __future__ import annotations

import re
import uuid

from starlette.types import Scope

REQUEST_ID_HEADER = "X-Request-ID"
# Bounded and free of spaces, quotes and line breaks: the id goes into a response header
# and into every log line, so a caller cannot forge extra headers or log fields with it.
MAX_REQUEST_ID_LENGTH = 128
_SAFE_REQUEST_ID = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._:=+/@-]{{0,{MAX_REQUEST_ID_LENGTH - 1}}}$")
_STATE_KEY = "request_id"


def accept_request_id(given: str | None) -> str:
    """`given` when it is a safe id (at most 128 of letters, digits and `._:=+/@-`), a new
    random one otherwise."""
    if given and _SAFE_REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def header_value(scope: Scope, name: str) -> str | None:
    """The first value of header `name` (lower case) in an HTTP scope, or None."""
    wanted = name.lower().encode("latin-1")
    for key, value in scope.get("headers", ()):
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def set_request_id(scope: Scope, request_id: str) -> None:
    scope.setdefault("state", {})[_STATE_KEY] = request_id


def get_request_id(scope: Scope) -> str | None:
    """The id the request context middleware assigned, or None outside it."""
    state = scope.get("state")
    return state.get(_STATE_KEY) if isinstance(state, dict) else None
