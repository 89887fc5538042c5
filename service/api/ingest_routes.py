"""Helpdesk webhooks: `POST /v1/ingest/zendesk`, `/v1/ingest/intercom` and
`/v1/ingest/freshdesk` take each helpdesk's own payload and run the per-message path.

Each handler gets the raw body from a dependency that first checks the helpdesk's
signature when its secret is configured (401 otherwise), so nothing is parsed for a
caller that cannot sign. The adapter in `service/ingest/` then reads the payload into
messages (400 for a body that is not JSON, 422 naming what the payload lacks), and each
message goes through `ConversationRecorder.record` like a posted message. A delivery
without a message to record (an internal note, another topic) is answered 200 with
`{"ignored": reason}`: helpdesks redeliver what fails, and that would never succeed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from nlp.schemas import ConversationSummary, Timing
from service.api.errors import ApiError, ErrorResponse
from service.api.limits import check_messages, conversation_full
from service.api.routes import RecorderDep, SettingsDep
from service.api.schemas import IngestIgnored, IngestResponse
from service.conversations import ConversationFull, ConversationRecorder, RecordedMessage
from service.ingest import freshdesk, intercom, zendesk
from service.ingest.delivery import Delivery, Ignored, PayloadError, PayloadNotJson
from service.ingest.signatures import (
    INGEST_TOKEN_HEADER,
    INTERCOM_SIGNATURE_HEADER,
    ZENDESK_SIGNATURE_HEADER,
    ZENDESK_TIMESTAMP_HEADER,
    SignatureError,
    verify_intercom,
    verify_token,
    verify_zendesk,
)
from service.metrics import INGEST_DELIVERIES
from service.settings import Settings

router = APIRouter(tags=["ingest"])

ZENDESK_PATH = "/v1/ingest/zendesk"
INTERCOM_PATH = "/v1/ingest/intercom"
FRESHDESK_PATH = "/v1/ingest/freshdesk"

Reader = Callable[..., Delivery | Ignored]
IngestAnswer = IngestResponse | IngestIgnored


def signed_paths(settings: Settings) -> frozenset[str]:
    """The ingest routes whose helpdesk secret is configured: their callers prove
    themselves with the helpdesk's signature, not an API key."""
    secrets = {
        ZENDESK_PATH: settings.zendesk_webhook_secret,
        INTERCOM_PATH: settings.intercom_client_secret,
        FRESHDESK_PATH: settings.freshdesk_webhook_token,
    }
    return frozenset(path for path, secret in secrets.items() if secret is not None)


@contextmanager
def _signature_required() -> Iterator[None]:
    try:
        yield
    except SignatureError as exc:
        raise ApiError(401, "unauthorized", str(exc)) from None


async def zendesk_body(request: Request, settings: SettingsDep) -> bytes:
    """The raw body, its Zendesk signature and timestamp checked when a secret is set."""
    body = await request.body()
    if settings.zendesk_webhook_secret is not None:
        with _signature_required():
            verify_zendesk(
                settings.zendesk_webhook_secret.get_secret_value(),
                body,
                request.headers.get(ZENDESK_SIGNATURE_HEADER),
                request.headers.get(ZENDESK_TIMESTAMP_HEADER),
                now=datetime.now(UTC),
                max_age_s=settings.zendesk_signature_max_age_s,
            )
    return body


async def intercom_body(request: Request, settings: SettingsDep) -> bytes:
    """The raw body, its Intercom signature checked when a client secret is set."""
    body = await request.body()
    if settings.intercom_client_secret is not None:
        with _signature_required():
            verify_intercom(
                settings.intercom_client_secret.get_secret_value(), body, request.headers.get(INTERCOM_SIGNATURE_HEADER)
            )
    return body


async def freshdesk_body(request: Request, settings: SettingsDep) -> bytes:
    """The raw body, the rule's token checked when one is set (Freshdesk signs nothing)."""
    body = await request.body()
    if settings.freshdesk_webhook_token is not None:
        with _signature_required():
            verify_token(settings.freshdesk_webhook_token.get_secret_value(), request.headers.get(INGEST_TOKEN_HEADER))
    return body


ZendeskBody = Annotated[bytes, Depends(zendesk_body)]
IntercomBody = Annotated[bytes, Depends(intercom_body)]
FreshdeskBody = Annotated[bytes, Depends(freshdesk_body)]


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a handler that reads its body itself (to check the
    signature over the exact bytes before parsing): `model`, with its definitions inline."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                rest = {key: value for key, value in node.items() if key != "$ref"}
                return inline({**definitions[reference.removeprefix("#/$defs/")], **rest})
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "The helpdesk's signature or token is missing, wrong or stale"}
}


@router.post(
    ZENDESK_PATH,
    response_model=IngestAnswer,
    responses=_RESPONSES,
    openapi_extra=_request_body(zendesk.ZendeskTicketEvent),
)
async def ingest_zendesk(body: ZendeskBody, recorder: RecorderDep, settings: SettingsDep) -> IngestAnswer:
    """A Zendesk trigger's webhook, with the JSON body of docs/ingest.md: the ticket's
    latest comment becomes a message of conversation `zendesk:<ticket id>`. A private
    comment is ignored."""
    return await ingest(zendesk.read, body, recorder, settings)


@router.post(
    INTERCOM_PATH,
    response_model=IngestAnswer,
    responses=_RESPONSES,
    openapi_extra=_request_body(intercom.IntercomNotification),
)
async def ingest_intercom(body: IntercomBody, recorder: RecorderDep, settings: SettingsDep) -> IngestAnswer:
    """An Intercom webhook notification: the new messages of conversation
    `intercom:<conversation id>` (topics conversation.user.created, .user.replied,
    .admin.replied, .admin.single.created, .operator.replied). Notes and other topics are
    ignored."""
    return await ingest(intercom.read, body, recorder, settings)


@router.post(
    FRESHDESK_PATH,
    response_model=IngestAnswer,
    responses=_RESPONSES,
    openapi_extra=_request_body(freshdesk.FreshdeskTicketEvent),
)
async def ingest_freshdesk(body: FreshdeskBody, recorder: RecorderDep, settings: SettingsDep) -> IngestAnswer:
    """A Freshdesk automation rule's webhook, with the JSON body of docs/ingest.md: the
    comment becomes a message of conversation `freshdesk:<ticket id>`."""
    return await ingest(freshdesk.read, body, recorder, settings)


async def ingest(read: Reader, body: bytes, recorder: ConversationRecorder, settings: Settings) -> IngestAnswer:
    """Read a delivery with a helpdesk's `read` and record its messages, answering like
    POST /v1/conversations/{id}/messages (400, 413, 422 as it does)."""
    started = time.perf_counter()
    try:
        # In a worker thread: reading a large HTML body takes a while (about 0.7 s for the
        # 2 MiB body limit), and the event loop serves every other request meanwhile.
        outcome = await run_in_threadpool(read, body, received_at=datetime.now(UTC))
    except PayloadNotJson as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from None
    except PayloadError as exc:
        details = [{"field": problem.field, "message": problem.message} for problem in exc.problems]
        raise ApiError(422, "validation_error", str(exc), details) from None
    if isinstance(outcome, Ignored):
        INGEST_DELIVERIES.labels(helpdesk=outcome.helpdesk, outcome="ignored").inc()
        return IngestIgnored(helpdesk=outcome.helpdesk, ignored=outcome.reason)
    check_messages(outcome.messages, settings)
    recorded: list[RecordedMessage] = []
    try:
        for message in outcome.messages:
            recorded.append(await recorder.record(outcome.conversation_id, message))
    except ConversationFull as exc:
        raise conversation_full(exc, settings) from None
    duplicate = all(r.duplicate for r in recorded)
    INGEST_DELIVERIES.labels(helpdesk=outcome.helpdesk, outcome="duplicate" if duplicate else "recorded").inc()
    return IngestResponse(
        helpdesk=outcome.helpdesk,
        conversation_id=outcome.conversation_id,
        message_ids=[r.message.id for r in recorded],
        message=recorded[-1].message.analysis,
        conversation=_delivery_summary(recorded),
        duplicate=duplicate,
        model=recorder.analyzer.model_info,
        timing=Timing(
            total_ms=round((time.perf_counter() - started) * 1000, 3),
            encode_ms=round(sum(r.encode_ms for r in recorded), 3),
        ),
    )


def _delivery_summary(recorded: list[RecordedMessage]) -> ConversationSummary:
    """The conversation after the delivery's last message, its escalation `changed` once
    per delivery: the level now against the level before the delivery's first message."""
    summary = recorded[-1].summary
    before = recorded[0].summary.escalation.previous_level
    summary.escalation.previous_level = before
    summary.escalation.changed = any(not r.duplicate for r in recorded) and summary.escalation.level != (
        before or "none"
    )
    return summary
