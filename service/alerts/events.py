"""The `escalation.changed` event: what a webhook receives (as is, in the `json` format)
when a conversation's escalation level changes on the per-message path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import BaseModel, Field

from nlp.schemas import Escalation, EscalationReason, ModelInfo, ResponseStyle
from nlp.vocabulary import EscalationLevel

ESCALATION_CHANGED: Final = "escalation.changed"
EVENT_ID_PREFIX = "evt_"
EVENT_ID_PATTERN = r"^evt_[0-9a-f]{32}$"
"""`evt_` and a UUID4 in hex: unique without coordination between server processes."""


class EscalationChangedEvent(BaseModel):
    """The body of an `escalation.changed` event. Quotes in `reasons` are redacted as in the
    analysis (`CONVINTEL_REDACT_PII`)."""

    id: str = Field(pattern=EVENT_ID_PATTERN, description="Stable across delivery attempts: de-duplicate on it")
    type: Literal["escalation.changed"] = ESCALATION_CHANGED
    created_at: str = Field(description="When the change was committed (ISO-8601, UTC)")
    conversation_id: str
    message_id: str = Field(description="The message that changed the level")
    old_level: EscalationLevel
    new_level: EscalationLevel
    recommended: bool = Field(description="Whether a person should step in (level escalate or urgent)")
    route_to: str
    confidence: float
    response_style: ResponseStyle | None
    reasons: list[EscalationReason] = Field(description="The policy rules that fired, with their evidence")
    model: ModelInfo


def new_event_id() -> str:
    return f"{EVENT_ID_PREFIX}{uuid.uuid4().hex}"


def escalation_changed(
    conversation_id: str, message_id: str, escalation: Escalation, model: ModelInfo
) -> EscalationChangedEvent:
    """A new event (its own id, the time now) for `escalation`, which `message_id` changed."""
    return EscalationChangedEvent(
        id=new_event_id(),
        created_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        conversation_id=conversation_id,
        message_id=message_id,
        old_level=escalation.previous_level or "none",
        new_level=escalation.level,
        recommended=escalation.recommended,
        route_to=escalation.route_to,
        confidence=escalation.confidence,
        response_style=escalation.response_style,
        reasons=escalation.reasons,
        model=model,
    )
