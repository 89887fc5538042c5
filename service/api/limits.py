"""Request limits: body size and content type (ASGI middleware, before any parsing), the
per-request time budget (ASGI middleware), and the per-transcript limits (messages,
characters) checked after validation, answered as 413 (the checks themselves are in
`service/transcript_limits.py`, shared with archive scoring)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nlp.schemas import Message as ChatMessage
from service.api.errors import ApiError, send_error
from service.api.request_context import matched_route
from service.conversations import ConversationFull
from service.settings import Settings
from service.transcript_limits import LimitBreach, message_breach, transcript_breach

JSON_TYPES = ("application/json",)
log = logging.getLogger(__name__)


class RequestGuardMiddleware:
    """Rejects bodies over `max_body_bytes` (413) and non-JSON bodies on POST (415)
    before the app reads them, so an oversized upload never reaches the parser. A POST
    without a body (`POST /v1/alerts/{id}/retry` takes none) has no media type to check;
    an endpoint that needs a body answers its absence with 422."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_details = [{"field": "body", "message": f"more than {max_body_bytes} bytes"}]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = matched_route(scope) if scope["type"] == "http" else None
        if (
            scope["type"] != "http"
            or scope["method"] not in {"POST", "PUT", "PATCH"}
            or route is None
            or scope["method"] not in route.methods
        ):
            # Not a body this app takes: the router answers (404, 405) without reading it.
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if headers.get("content-length", "").strip() == "0" or (
            "content-length" not in headers and "transfer-encoding" not in headers
        ):
            # No body at all (HTTP/1.1 has one only with a length or chunks): nothing to
            # type or measure. An endpoint that acts without one (erasure) runs; one that
            # needs one answers its own 422 (or 400).
            await self.app(scope, receive, send)
            return
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        # No body at all (a length of 0, or neither a length nor chunks): no type to be wrong.
        no_body = headers.get("content-length") == "0" or not {"content-length", "transfer-encoding"} & headers.keys()
        if not no_body and media_type not in JSON_TYPES and not media_type.endswith("+json"):
            await send_error(
                scope,
                send,
                415,
                "unsupported_media_type",
                f"content-type must be application/json, not {media_type or 'missing'!r}",
            )
            return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await send_error(
                scope,
                send,
                413,
                "too_large",
                f"request body of {declared} bytes exceeds the limit of {self.max_body_bytes}",
                details=self.body_details,
            )
            return
        # Read the body up to the limit (it may be chunked, with no length declared).
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await send_error(
                    scope,
                    send,
                    413,
                    "too_large",
                    f"request body exceeds the limit of {self.max_body_bytes} bytes",
                    details=self.body_details,
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class TimeBudgetMiddleware:
    """Answers 503 `timeout` when a request has not started its response within
    `budget_s` seconds, whether it waited for a worker thread or ran too long.

    The caller gets the 503 on time. Work still waiting for a worker thread is dropped;
    work already running in one cannot be interrupted (Python threads cannot be killed), so
    it finishes and its response is discarded. A per-message post that times out may
    therefore still be stored: a retry with the same message id is answered `duplicate`."""

    def __init__(self, app: ASGIApp, budget_s: float) -> None:
        self.app = app
        self.budget_s = budget_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.budget_s:  # 0: no budget
            await self.app(scope, receive, send)
            return
        answered = anyio.Event()  # the app started its response, or returned without one
        expired = False
        failure: Exception | None = None

        async def guarded_send(message: Message) -> None:
            if expired:  # the caller already has its 503
                return
            if message["type"] == "http.response.start":
                answered.set()
            await send(message)

        async def run_app() -> None:
            nonlocal failure
            try:
                await self.app(scope, receive, guarded_send)
            except Exception as exc:  # re-raised below as itself, not inside an ExceptionGroup
                failure = exc
            finally:
                answered.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run_app)
            with anyio.move_on_after(self.budget_s):
                await answered.wait()
            if not answered.is_set():
                expired = True
                await send_error(
                    scope,
                    send,
                    503,
                    "timeout",
                    f"the request did not finish within its time budget of {self.budget_s:g} s",
                    headers={"Retry-After": "1"},
                )
                tasks.cancel_scope.cancel()
        if failure is not None:
            if not expired:
                raise failure
            # Too late to answer 500: the caller has its 503. Keep the bug visible in the logs.
            log.error("unhandled error after the time budget ran out", exc_info=failure)


def check_messages(messages: Iterable[ChatMessage], settings: Settings, field: str = "messages") -> None:
    """413 naming the first message whose text is longer than `max_message_chars`
    (`field` empty: one message that is the whole body, named `text`)."""
    _raise(message_breach(messages, settings, field))


def check_transcript(messages: list[ChatMessage], settings: Settings, field: str = "messages") -> None:
    """413 when a transcript has too many messages or a message is too long."""
    _raise(transcript_breach(messages, settings, field))


def conversation_full(exc: ConversationFull, settings: Settings) -> ApiError:
    """The 413 for a message the stored conversation has no room for, naming the conversation."""
    named = {"field": "conversation_id", "message": f"the conversation already holds {settings.max_messages} messages"}
    return ApiError(413, "too_large", f"{exc}; the limit is {settings.max_messages}", [named])


def _raise(breach: LimitBreach | None) -> None:
    if breach is not None:
        raise ApiError(413, "too_large", breach.message, [{"field": breach.field, "message": breach.detail}])
