"""Zendesk: a ticket trigger's webhook, with the JSON body docs/ingest.md recommends.

A Zendesk trigger's payload is whatever its JSON body template says, filled in from
Zendesk placeholders (support.zendesk.com/hc/en-us/articles/4408886858138, "Zendesk
placeholders reference"). The recommended body, one delivery per new comment:

    {"ticket_id": "{{ticket.id}}", "comment_id": "{{ticket.latest_comment.id}}",
     "comment_public": "{{ticket.latest_comment.is_public}}",
     "author_role": "{{current_user.role}}", "body": "{{ticket.latest_comment.value}}",
     "requester_id": "{{ticket.requester.id}}", "via": "{{ticket.via}}",
     "priority": "{{ticket.priority}}", "status": "{{ticket.status}}",
     "tags": "{{ticket.tags}}", "updated_at": "{{ticket.updated_at_with_timestamp}}",
     "metadata": {...}}

The comment id is the message id, so a redelivery, or a trigger that fires on an update
that added no comment, finds the comment stored and records nothing new."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from nlp.schemas import Role
from service.ingest.delivery import (
    Delivery,
    Ignored,
    OptionalFlag,
    OptionalId,
    OptionalText,
    OptionalTime,
    VendorId,
    build_message,
    channel_from,
    clean_metadata,
    conversation_id,
    parse_payload,
    tag_list,
    utc,
)
from service.ingest.html_text import message_text

HELPDESK = "zendesk"

# `{{current_user.role}}` renders "End-user", "Agent" or "Admin"; the names convintel uses
# for roles are accepted too, for bodies built by hand.
ROLES: dict[str, Role] = {
    "end-user": Role.customer,
    "customer": Role.customer,
    "agent": Role.agent,
    "admin": Role.agent,
    "administrator": Role.agent,
    "bot": Role.bot,
    "system": Role.system,
}


def _role_name(value: Any) -> Any:
    # "End-user", "end user" and "END_USER" are one role.
    return "-".join(value.strip().lower().replace("_", " ").split()) if isinstance(value, str) else value


class ZendeskTicketEvent(BaseModel):
    """The recommended trigger body (docs/ingest.md#zendesk). Only the fields below are
    read; `metadata` is copied to the conversation's metadata (e.g. a customer tier from a
    user or organization field placeholder)."""

    model_config = ConfigDict(extra="ignore")

    ticket_id: VendorId = Field(description="{{ticket.id}}")
    comment_id: VendorId = Field(description="{{ticket.latest_comment.id}}: the message id")
    author_role: Annotated[
        Literal["end-user", "customer", "agent", "admin", "administrator", "bot", "system"],
        BeforeValidator(_role_name),
    ] = Field(description="{{current_user.role}}: End-user is the customer; Agent and Admin are agents")
    body: str = Field(description="{{ticket.latest_comment.value}}: the comment as plain text (HTML is stripped)")
    comment_public: OptionalFlag = Field(
        None, description="{{ticket.latest_comment.is_public}}: a private comment (internal note) is ignored"
    )
    requester_id: OptionalId = Field(None, description="{{ticket.requester.id}}: the customer id")
    via: OptionalText = Field(None, description="{{ticket.via}}: the channel (Mail, Chat, Web Form...)")
    priority: OptionalText = Field(None, description="{{ticket.priority}}")
    status: OptionalText = Field(None, description="{{ticket.status}}")
    tags: OptionalText = Field(None, description="{{ticket.tags}}: space-separated")
    updated_at: OptionalTime = Field(
        None, description="{{ticket.updated_at_with_timestamp}}: when the comment was added; default: when received"
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Any further fields for the metadata")


def read(body: bytes, *, received_at: datetime) -> Delivery | Ignored:
    """The comment a Zendesk trigger delivered, or why it is ignored. Raises
    PayloadNotJson and PayloadError (naming the missing or bad field)."""
    event = parse_payload(HELPDESK, ZendeskTicketEvent, body)
    if event.comment_public is False:
        return Ignored(HELPDESK, "private comment (internal note)")
    text = message_text(event.body)
    if not text:
        return Ignored(HELPDESK, "comment without text")
    message = build_message(
        HELPDESK,
        "body",
        id=event.comment_id,
        role=ROLES[event.author_role],
        text=text,
        timestamp=utc(event.updated_at) or received_at,
        channel=channel_from(event.via),
        customer_id=event.requester_id,
        metadata=clean_metadata(
            {
                **event.metadata,
                "helpdesk": HELPDESK,
                "priority": event.priority and event.priority.lower(),
                "status": event.status and event.status.lower(),
                "via": event.via,
                "tags": tag_list(event.tags),
            }
        ),
    )
    return Delivery(HELPDESK, conversation_id(HELPDESK, event.ticket_id), [message])
