"""Request and response envelopes of the HTTP API (the analysis itself is nlp.schemas)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from nlp.schemas import (
    Channel,
    ConversationSummary,
    MessageAnalysis,
    ModelInfo,
    Role,
    Timing,
    Transcript,
    TranscriptAnalysis,
)


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


class ConversationState(BaseModel):
    conversation_id: str
    channel: Channel
    customer_id: str | None
    language: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    messages: list[StoredMessageView]
    conversation: ConversationSummary
    model: ModelInfo


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
