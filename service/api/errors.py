"""One error shape for every 4xx/5xx: {"error": {"status", "code", "message", "details"}}.

Validation errors name the offending field (`messages.3.role`), so a caller can fix the
request without reading our code."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from service.api.request_context import allowed_methods
from service.api.request_id import REQUEST_ID_HEADER, get_request_id

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str
    details: list[ErrorDetail]
    request_id: str | None = None


class ErrorResponse(BaseModel):
    """The one error shape, as documented in the OpenAPI spec: every 4xx/5xx answer of
    every operation refers to this one component."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "status": 422,
                        "code": "validation_error",
                        "message": "invalid request: messages.0.role: Input should be 'customer', 'agent', "
                        "'bot' or 'system'",
                        "details": [
                            {
                                "field": "messages.0.role",
                                "message": "Input should be 'customer', 'agent', 'bot' or 'system'",
                            }
                        ],
                        "request_id": "3f2b9c1e8a7d4e6f",
                    }
                }
            ]
        }
    )

    error: ErrorBody


# Answers any endpoint may give (the router adds them to every operation in the spec).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Body is not valid JSON",
        413: "Body, transcript, message or batch over its limit",
        415: "Body is not application/json",
        422: "Schema violation, naming the field",
        500: "Unexpected error (a bug): the request was not processed",
        503: "Models not loaded yet, or the request ran past its time budget",
    }.items()
}


class ApiError(Exception):
    """An error answered to the caller as it is."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []
        self.headers = headers or {}


def error_body(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """The error shape: {"error": {"status", "code", "message", "details", "request_id"}}."""
    return {
        "error": {
            "status": status,
            "code": code,
            "message": message,
            "details": details or [],
            "request_id": request_id,
        }
    }


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        status_code=status, content=error_body(status, code, message, details, request_id), headers=headers
    )


async def send_error(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> None:
    """Answer an error from ASGI middleware, before the app (and its handlers) run."""
    payload = json.dumps(error_body(status, code, message, details, request_id=get_request_id(scope))).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _field_path(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "path", "query")]
    return ".".join(parts) or "body"


def _validation_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    request_id = get_request_id(request.scope)
    if any(e.get("type") == "json_invalid" for e in errors):
        first = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (first.get("ctx") or {}).get("error", "malformed JSON")
        return error_response(400, "invalid_json", f"request body is not valid JSON: {reason}", request_id=request_id)
    details = [
        {"field": _field_path(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid value")} for e in errors
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    return error_response(422, "validation_error", f"invalid request: {summary}", details, request_id=request_id)


def _http_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:
        # FastAPI's only 400 here: a JSON body it could not decode (not UTF-8, UTF-16 or 32);
        # the service's own 400s are ApiErrors.
        reason = f"request body is not valid JSON: {exc.detail}"
        return error_response(400, "invalid_json", reason, request_id=get_request_id(request.scope))
    code = {
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
        503: "unavailable",
    }.get(exc.status_code, "http_error")
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request.scope))}
    return error_response(
        exc.status_code, code, str(exc.detail), request_id=get_request_id(request.scope), headers=headers
    )


def _api_error_handler(request: Request, exc: ApiError) -> JSONResponse:
    return error_response(
        exc.status, exc.code, exc.message, exc.details, request_id=get_request_id(request.scope), headers=exc.headers
    )


def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    # This answer is sent from Starlette's outermost middleware, past the one that stamps
    # the request id on responses, so the header is set here. The log formatter keeps the
    # stack but not the exception's message, which may quote a caller's text.
    request_id = get_request_id(request.scope)
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.url.path,
        exc_info=exc,
        extra={"fields": {"request_id": request_id}},
    )
    return error_response(
        500,
        "internal_error",
        "internal error; the request was not processed",
        request_id=request_id,
        headers={REQUEST_ID_HEADER: request_id} if request_id else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
