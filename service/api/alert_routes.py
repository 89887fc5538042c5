"""`GET /v1/alerts` and `POST /v1/alerts/{event_id}/retry`: the alert outbox over HTTP
(service/alerts/). Both need the `alerts` scope (service/api/auth.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from service.alerts.events import EVENT_ID_PATTERN
from service.alerts.outbox import AlertNotFound, AlertNotRetryable, AlertStatus, Outbox, OutboxEntry
from service.alerts.webhooks import AlertConfig, AlertFormat
from service.api.errors import ApiError, ErrorResponse
from service.api.routes import loaded_state

router = APIRouter(tags=["alerts"])

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 500

EventId = Annotated[str, Path(pattern=EVENT_ID_PATTERN, description="The event id (`evt_` and 32 hex digits)")]


class AlertView(BaseModel):
    id: str = Field(description="The event id, sent as X-Convintel-Event-Id: the same on every attempt")
    type: str
    status: AlertStatus
    conversation_id: str
    target: str = Field(description="The webhook's name (the URL is not shown: it may be a secret)")
    format: AlertFormat
    attempts: int = Field(description="Failed or successful attempts since the event was queued or last retried")
    created_at: str
    next_attempt_at: str | None = Field(description="When a pending event is tried next (ISO-8601, UTC)")
    last_attempt_at: str | None
    last_error: str | None = Field(description="Why the last failed attempt failed")
    delivered_at: str | None
    event: dict[str, Any] = Field(description="The event body (docs/alerts.md)")

    @classmethod
    def of(cls, entry: OutboxEntry) -> AlertView:
        next_at = entry.next_attempt_at
        return cls(
            id=entry.id,
            type=entry.type,
            status=entry.status,
            conversation_id=entry.conversation_id,
            target=entry.target_name,
            format=entry.format,
            attempts=entry.attempts,
            created_at=entry.created_at,
            next_attempt_at=None
            if next_at is None or entry.status != "pending"
            else datetime.fromtimestamp(next_at, UTC).isoformat(timespec="milliseconds"),
            last_attempt_at=entry.last_attempt_at,
            last_error=entry.last_error,
            delivered_at=entry.delivered_at,
            event=json.loads(entry.body),
        )


class AlertList(BaseModel):
    alerts: list[AlertView] = Field(description="Newest first")


async def get_outbox(request: Request) -> Outbox:
    return loaded_state(request, "outbox")


async def get_alert_config(request: Request) -> AlertConfig:
    return request.app.state.alert_config


OutboxDep = Annotated[Outbox, Depends(get_outbox)]
AlertConfigDep = Annotated[AlertConfig, Depends(get_alert_config)]


@router.get("/v1/alerts", response_model=AlertList)
def list_alerts(
    outbox: OutboxDep,
    status: Annotated[AlertStatus | None, Query(description="Only events with this status; default: all")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT, description="At most this many events")] = DEFAULT_LIST_LIMIT,
) -> AlertList:
    """Alert events (one per webhook and level change), newest first: `pending` (waiting
    for an attempt), `delivered` or `failed` (given up; see `retry`)."""
    return AlertList(alerts=[AlertView.of(entry) for entry in outbox.entries(status, limit)])


@router.post(
    "/v1/alerts/{event_id}/retry",
    response_model=AlertView,
    responses={
        404: {"model": ErrorResponse, "description": "Unknown event"},
        409: {"model": ErrorResponse, "description": "The event is not failed, or its webhook is no longer configured"},
    },
)
def retry_alert(event_id: EventId, outbox: OutboxDep, config: AlertConfigDep) -> AlertView:
    """Deliver a failed event again: it becomes `pending`, due now, with a fresh count of
    attempts, and keeps its id and body. 409 when it is not failed (a pending event is
    already being tried; a delivered one was acknowledged) or when its webhook is no
    longer configured."""
    entry = outbox.get(event_id)
    if entry is None:
        raise ApiError(404, "not_found", f"no alert event {event_id!r}")
    if entry.status == "failed" and config.target(entry.target_url) is None:
        raise ApiError(409, "target_not_configured", f"the webhook of event {event_id!r} is no longer configured")
    try:
        return AlertView.of(outbox.retry(event_id))
    except AlertNotFound:
        raise ApiError(404, "not_found", f"no alert event {event_id!r}") from None
    except AlertNotRetryable as exc:
        raise ApiError(
            409, "not_failed", f"event {event_id!r} is {exc.status}; only a failed event is retried"
        ) from None
