"""Request and response envelopes of the HTTP API (the analysis itself is nlp.schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nlp.schemas import (
    CUSTOMER_ID_PATTERN,
    Channel,
    ConversationSummary,
    MessageAnalysis,
    ModelInfo,
    Role,
    Timing,
    Transcript,
    TranscriptAnalysis,
)
from nlp.timestamps import parse_timestamp
from nlp.vocabulary import EscalationLevel
from service.api.pagination import (
    CURSOR_PATTERN,
    DEFAULT_PAGE_SIZE,
    MAX_CURSOR_LENGTH,
    MAX_PAGE_SIZE,
    decode_cursor,
)
from service.store import ListPosition


class BatchRequest(BaseModel):
    transcripts: list[Transcript] = Field(min_length=1)


class BatchAnalysis(BaseModel):
    model: ModelInfo
    results: list[TranscriptAnalysis] = Field(description="One analysis per transcript, in request order")
    timing: Timing


class MessageAppendResponse(BaseModel):
    conversation_id: str
    message: MessageAnalysis
    conversation: ConversationSummary
    duplicate: bool = Field(description="True when this message id was already stored (a retry); nothing was added")
    model: ModelInfo
    timing: Timing


class StoredMessageView(BaseModel):
    id: str
    role: Role
    text: str
    timestamp: str | None
    analysis: MessageAnalysis


class ConversationHeaderView(BaseModel):
    """A stored conversation's own fields, as both its full view and a listing show them."""

    conversation_id: str
    channel: Channel
    customer_id: str | None
    language: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str = Field(description="When its last message was stored (a listing's order)")


class ConversationState(ConversationHeaderView):
    messages: list[StoredMessageView]
    conversation: ConversationSummary
    model: ModelInfo


class ConversationListQuery(BaseModel):
    """The query of `GET /v1/conversations`: filters (all optional, combined with AND), page size and cursor."""

    # An unknown parameter is refused, not ignored: a misspelt filter would otherwise list everything.
    model_config = ConfigDict(extra="forbid")

    min_level: EscalationLevel | None = Field(
        None, description="Escalation level at least this (none < monitor < escalate < urgent)"
    )
    channel: Channel | None = None
    customer_id: str | None = Field(None, min_length=1, max_length=256, pattern=CUSTOMER_ID_PATTERN)
    updated_since: datetime | None = Field(
        None, description="Changed at or after this ISO-8601 time (a time without a zone is UTC)"
    )
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Items per page")
    cursor: str | None = Field(
        None,
        max_length=MAX_CURSOR_LENGTH,
        pattern=CURSOR_PATTERN,
        description="`next_cursor` of the previous page, as it came; pass the same filters",
    )

    @field_validator("updated_since", mode="before")
    @classmethod
    def _iso_timestamp(cls, value: Any) -> Any:
        # The one timestamp rule (nlp/timestamps.py): ISO-8601 only, naive means UTC.
        if value is None or isinstance(value, datetime):
            return value
        parsed = parse_timestamp(value)
        if parsed is None:
            raise ValueError("updated_since must be an ISO-8601 time, such as 2026-03-02T10:00:00Z")
        return parsed

    @field_validator("cursor")
    @classmethod
    def _decodable(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value)  # an InvalidCursor is a ValueError: a 422 naming the field
        return value

    @property
    def position(self) -> ListPosition | None:
        """Where the page starts: after the cursor's item (None: from the newest)."""
        return decode_cursor(self.cursor) if self.cursor is not None else None


class ListedEscalation(BaseModel):
    level: EscalationLevel | None = Field(
        description="The level committed with the last message (null: stored before levels were)"
    )
    route_to: str | None = Field(description="Where the policy routes it (null: stored before routes were)")
    rules: list[str] = Field(description="Names of the policy rules that fired; GET /v1/conversations/{id} has details")


class ConversationListItem(ConversationHeaderView):
    message_count: int
    escalation: ListedEscalation


class ConversationList(BaseModel):
    items: list[ConversationListItem] = Field(description="Newest change first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class ErasureResponse(BaseModel):
    customer_id: str
    conversations_deleted: int = Field(
        description="Conversations of this customer that were deleted, with their messages"
    )


class BundleInfo(BaseModel):
    name: str
    version: str
    created: str
    description: str
    encoder: dict[str, Any]
    tasks: dict[str, dict[str, Any]]


class ModelsResponse(BaseModel):
    active: BundleInfo


class HealthResponse(BaseModel):
    status: str
    model: ModelInfo | None = None


class IngestResponse(MessageAppendResponse):
    """A helpdesk delivery recorded: the reply of POST /v1/conversations/{id}/messages for
    its last message, plus which helpdesk and every message id it carried."""

    helpdesk: str = Field(description="zendesk, intercom or freshdesk")
    message_ids: list[str] = Field(
        description="Every message the delivery carried, in order (an Intercom notification may carry several); "
        "`message` is the analysis of the last. `duplicate` is true when all of them were stored already, and "
        "`conversation.escalation.changed` compares the level after the last with the level before the first"
    )


class IngestIgnored(BaseModel):
    """A well-formed helpdesk delivery with no message to record, answered 200 so the
    helpdesk does not redeliver it."""

    helpdesk: str = Field(description="zendesk, intercom or freshdesk")
    ignored: str = Field(description="Why nothing was recorded, e.g. 'private comment (internal note)'")
