"""Request limits: body size and content type (ASGI middleware, before any parsing), and
the per-transcript limits (messages, characters) checked after validation."""

from __future__ import annotations

import json
from typing import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nlp.schemas import Message as ChatMessage
from service.errors import ApiError
from service.settings import Settings

JSON_TYPES = ("application/json",)


class RequestGuardMiddleware:
    """Rejects bodies over `max_body_bytes` (413) and non-JSON bodies on POST (415)
    before the app reads them, so an oversized upload never reaches the parser."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in JSON_TYPES and not media_type.endswith("+json"):
            await _reject(send, 415, "unsupported_media_type",
                          f"content-type must be application/json, not {media_type or 'missing'!r}")
            return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _reject(send, 413, "too_large", f"request body of {declared} bytes exceeds the limit of {self.max_body_bytes}")
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
                await _reject(send, 413, "too_large", f"request body exceeds the limit of {self.max_body_bytes} bytes")
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


async def _reject(send: Send, status: int, code: str, message: str) -> None:
    payload = json.dumps({"error": {"status": status, "code": code, "message": message, "details": []}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def check_messages(messages: Iterable[ChatMessage], settings: Settings, field: str = "messages") -> None:
    """413 naming the first message whose text is longer than `max_message_chars`."""
    for index, message in enumerate(messages):
        if len(message.text) > settings.max_message_chars:
            raise ApiError(413, "too_large",
                           f"{field}.{index}.text has {len(message.text)} characters; the limit is {settings.max_message_chars}",
                           [{"field": f"{field}.{index}.text", "message": f"longer than {settings.max_message_chars} characters"}])


def check_transcript(messages: list[ChatMessage], settings: Settings, field: str = "messages") -> None:
    """413 when a transcript has too many messages or a message is too long."""
    if len(messages) > settings.max_messages:
        raise ApiError(413, "too_large", f"{field} has {len(messages)} messages; the limit is {settings.max_messages}",
                       [{"field": field, "message": f"more than {settings.max_messages} messages"}])
    check_messages(messages, settings, field)
