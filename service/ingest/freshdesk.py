"""Freshdesk: an automation rule's "Trigger webhook" action, with the JSON body
docs/ingest.md recommends.

Freshdesk webhooks come from automation rules (support.freshdesk.com/support/solutions/
articles/132589, "Using webhooks in automation rules"), with a body the rule defines from
Freshdesk placeholders (`{{ticket.id}}`, `{{ticket.latest_public_comment}}`,
`{{ticket.description}}`...). A rule cannot say who wrote the comment, so each rule
names the author itself: one rule for requester replies (`"author_role": "customer"`), one
for agent replies (`"agent"`), and one on ticket creation that sends the description.

Freshdesk has no placeholder for a comment's id or time. Without a `message_id` in the
body, the message id is a digest of the ticket, the author's role and the body, so a
redelivery is recognised; the cost is that the same words sent twice by the same side of
one ticket are taken for a redelivery and recorded once. The message time is when
convintel received it, unless the body gives a `timestamp`."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from nlp.schemas import Role
from service.ingest.delivery import (
    Delivery,
    Ignored,
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

HELPDESK = "freshdesk"

ROLES: dict[str, Role] = {
    "customer": Role.customer,
    "requester": Role.customer,
    "contact": Role.customer,
    "agent": Role.agent,
    "bot": Role.bot,
    "system": Role.system,
}


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class FreshdeskTicketEvent(BaseModel):
    """The recommended automation rule body (docs/ingest.md#freshdesk)."""

    model_config = ConfigDict(extra="ignore")

    ticket_id: VendorId = Field(description="{{ticket.id}}")
    author_role: Annotated[
        Literal["customer", "requester", "contact", "agent", "bot", "system"], BeforeValidator(_lower)
    ] = Field(description="Fixed in each rule: customer (requester replies, new tickets) or agent")
    body: str = Field(
        description="{{ticket.latest_public_comment}}, or {{ticket.description}} on ticket creation (HTML is "
        "stripped, quoted history dropped)"
    )
    event: OptionalText = Field(None, description="A label for the rule, e.g. customer_reply; kept in metadata")
    message_id: OptionalId = Field(None, description="A message id, where the rule has one; default: a digest")
    requester_email: OptionalText = Field(
        None, description="{{ticket.from_email}}: stored only as a digest, as the customer id"
    )
    source: OptionalText = Field(None, description="{{ticket.source}}: the channel (Email, Portal, Chat, Phone...)")
    priority: OptionalText = Field(None, description="{{ticket.priority}}")
    status: OptionalText = Field(None, description="{{ticket.status}}")
    tags: OptionalText = Field(None, description="{{ticket.tags}}: comma-separated")
    timestamp: OptionalTime = Field(None, description="When the comment was written; default: when received")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Any further fields for the metadata")


def read(body: bytes, *, received_at: datetime) -> Delivery | Ignored:
    """The comment a Freshdesk rule delivered, or why it is ignored. Raises PayloadNotJson
    and PayloadError (naming the missing or bad field)."""
    event = parse_payload(HELPDESK, FreshdeskTicketEvent, body)
    text = message_text(event.body)
    if not text:
        return Ignored(HELPDESK, "comment without text")
    role = ROLES[event.author_role]
    message = build_message(
        HELPDESK,
        "body",
        id=event.message_id or _digest_id(event.ticket_id, role, event.body),
        role=role,
        text=text,
        timestamp=utc(event.timestamp) or received_at,
        channel=channel_from(event.source),
        customer_id=event.requester_email and customer_digest(event.requester_email),
        metadata=clean_metadata(
            {
                **event.metadata,
                "helpdesk": HELPDESK,
                "event": event.event,
                "priority": event.priority and event.priority.lower(),
                "status": event.status and event.status.lower(),
                "source": event.source,
                "tags": tag_list(event.tags, ","),
            }
        ),
    )
    return Delivery(HELPDESK, conversation_id(HELPDESK, event.ticket_id), [message])


def _digest_id(ticket_id: str, role: Role, body: str) -> str:
    """The same id for the same comment delivered again (see the module docstring)."""
    digest = hashlib.sha256(f"{ticket_id}\n{role.value}\n{body}".encode("utf-8", "surrogatepass")).hexdigest()
    return f"fd-{digest[:24]}"


def customer_digest(email: str) -> str:
    """A stable customer id from an email address, without keeping the address: stored
    text is redacted, and a raw address in the customer id would undo that."""
    return "email-sha256:" + hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()[:32]
