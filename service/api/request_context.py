"""The outermost middleware: gives each request its id, stamps it on the response, times
the request for Prometheus, and writes the one structured log line per request.

Routes are named by their template, matched here before anything else runs, so even
answers from other middleware (413, 415, 401, 503) are logged and counted under the route
the caller aimed at, and unknown paths all fall under one `unmatched` label."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.routing import compile_path, get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.request_id import REQUEST_ID_HEADER, accept_request_id, get_request_id, header_value, set_request_id
from service.logs import ACCESS_LOGGER
from service.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS_IN_FLIGHT
from service.settings import Settings

try:  # FastAPI >= 0.16x keeps included routers nested; this walks them
    from fastapi.routing import iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI lists every route in app.routes
    iter_route_contexts = None

log = logging.getLogger(ACCESS_LOGGER)

UNMATCHED_ROUTE = "unmatched"
_ROUTE_KEY = "convintel.route"
# Debug text logging: at most this many texts per request line, each cut to this length.
LOGGED_TEXTS_MAX = 20
LOGGED_TEXT_CHARS = 500


@dataclass(frozen=True)
class RouteInfo:
    """What the service needs to know about a route before routing: its template, the
    methods it answers and its tags (which decide the API key scope)."""

    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    tags: tuple[str, ...]


def route_table(app: Any) -> list[RouteInfo]:
    """The app's routes, flattened (routers included in routers) and compiled once."""
    table = getattr(app.state, "route_table", None)
    if table is None:
        routes = iter_route_contexts(app.routes) if iter_route_contexts is not None else app.routes
        table = []
        for route in routes:
            path = getattr(route, "path", None)
            if path is None:
                continue
            # The template as logs, metrics and the OpenAPI spec name it: without a
            # parameter's convertor (`{customer_id}`, not `{customer_id:anytext}`).
            pattern, template, _ = compile_path(path)
            table.append(
                RouteInfo(
                    template,
                    pattern,
                    frozenset(getattr(route, "methods", None) or ()),
                    tuple(getattr(route, "tags", None) or ()),
                )
            )
        app.state.route_table = table
    return table


def matched_route(scope: Scope) -> RouteInfo | None:
    """The route `scope` is aimed at (path and method, else path only, as for a 405), or
    None; computed once per request."""
    if _ROUTE_KEY not in scope:
        found: RouteInfo | None = None
        app = scope.get("app")
        path = get_route_path(scope)
        for route in route_table(app) if app is not None else ():
            if route.pattern.match(path):
                if not route.methods or scope["method"] in route.methods:
                    found = route
                    break
                found = found or route
        scope[_ROUTE_KEY] = found
    return scope[_ROUTE_KEY]


def allowed_methods(scope: Scope) -> list[str]:
    """Every method some route answers on this path, sorted: the `Allow` of a 405. (Starlette
    names only the first route's, though `GET` and `DELETE` of one path are two routes.)"""
    app = scope.get("app")
    path = get_route_path(scope)
    routes = route_table(app) if app is not None else ()
    return sorted({method for route in routes if route.pattern.match(path) for method in route.methods})


def route_template(scope: Scope) -> str:
    route = matched_route(scope)
    return route.template if route is not None else UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Request id, access log line and request metrics for every HTTP request."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._redactor: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = accept_request_id(header_value(scope, REQUEST_ID_HEADER))
        set_request_id(scope, request_id)
        route = route_template(scope)
        status = 500  # what the caller gets if the app fails before answering
        finished: float | None = None
        body = bytearray()
        id_header = (REQUEST_ID_HEADER.lower().encode("latin-1"), request_id.encode("latin-1"))

        async def stamped_send(message: Message) -> None:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != id_header[0]]
                message = {**message, "headers": [*headers, id_header]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = time.perf_counter()
            await send(message)

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < self.settings.max_body_bytes:
                body.extend(message.get("body", b""))
            return message

        HTTP_REQUESTS_IN_FLIGHT.inc()
        try:
            await self.app(scope, recording_receive if self.settings.log_redacted_text else receive, stamped_send)
        finally:
            HTTP_REQUESTS_IN_FLIGHT.dec()
            # Latency is what the caller saw: up to the end of the response, even when
            # the app went on working after it (a request past its time budget).
            latency = (finished or time.perf_counter()) - started
            HTTP_REQUEST_SECONDS.labels(method=scope["method"], route=route, status=str(status)).observe(latency)
            fields: dict[str, Any] = {
                "request_id": get_request_id(scope),
                "method": scope["method"],
                "route": route,
                "status": status,
                "latency_ms": round(latency * 1000, 3),
                "model_version": _model_version(scope),
                "client": (scope.get("client") or [None])[0],
            }
            key_name = scope.get("state", {}).get("api_key")
            if key_name:
                fields["api_key"] = key_name
            if self.settings.log_redacted_text and body:
                fields["texts_redacted"] = await anyio.to_thread.run_sync(self._redact_texts, bytes(body))
            level = logging.ERROR if status >= 500 and status != 503 else logging.INFO
            log.log(level, "request", extra={"fields": fields})

    def _redact_texts(self, body: bytes) -> list[str]:
        """The message texts in a JSON body, redacted (debug logging only)."""
        try:
            texts = list(_texts_in(json.loads(body)))[:LOGGED_TEXTS_MAX]
        except (ValueError, RecursionError):
            return []
        if self._redactor is None:
            from nlp.redaction import Redactor

            self._redactor = Redactor()
        return [r.text[:LOGGED_TEXT_CHARS] for r in self._redactor.redact_many(texts)]


def _texts_in(value: Any):
    """Every string under a "text" key, depth first (messages, transcripts' messages)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from _texts_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts_in(item)


def _model_version(scope: Scope) -> str | None:
    analyzer = getattr(getattr(scope.get("app"), "state", None), "analyzer", None)
    return analyzer.model_info.version if analyzer is not None else None
