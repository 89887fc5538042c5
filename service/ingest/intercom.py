"""Intercom: webhook notifications of an Intercom app (developers.intercom.com/docs/
references/webhooks/webhook-models).

Every notification has the same envelope, `{"type": "notification_event", "topic", "data":
{"item": ...}}`; for conversation topics the item is the conversation, with the parts the
event added under `conversation_parts.conversation_parts`. Read here:

- `conversation.user.created`, `conversation.admin.single.created`: the opening message
  (the conversation's `source`), and any message parts delivered with it;
- `conversation.user.replied`, `conversation.admin.replied`,
  `conversation.operator.replied`: the message parts.

A part's author says the role: user, lead and contact are the customer; admin and team
are agents; bot is a bot (Intercom's operator and Fin). Notes (`part_type` note) are
internal and are skipped, and so are parts without text (an assignment, an image).
Every other topic (`ping`, `conversation.admin.noted`, `contact.*`...) is ignored.

Bodies are HTML (plain text from API version 2.15 on); either way they are read as text.
The part id is the message id (the opening message's is `source-<id>`), so a redelivered
notification records nothing twice."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from nlp.schemas import IncomingMessage, Role
from service.ingest.delivery import (
    Delivery,
    Ignored,
    OptionalId,
    OptionalText,
    VendorId,
    build_message,
    channel_from,
    clean_metadata,
    conversation_id,
    from_unix,
    missing,
    parse_payload,
    validate,
)
from service.ingest.html_text import message_text

HELPDESK = "intercom"
OPENING_TOPICS = frozenset({"conversation.user.created", "conversation.admin.single.created"})
REPLY_TOPICS = frozenset({"conversation.user.replied", "conversation.admin.replied", "conversation.operator.replied"})
NOTE_PART_TYPES = frozenset({"note", "note_and_reopen"})
ROLES: dict[str, Role] = {
    "user": Role.customer,
    "lead": Role.customer,
    "contact": Role.customer,
    "admin": Role.agent,
    "team": Role.agent,
    "bot": Role.bot,
}
_ITEM = ("data", "item")


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class IntercomData(_Loose):
    item: dict[str, Any] = Field(description="The topic's object: a conversation for the conversation topics")


class IntercomNotification(_Loose):
    """The envelope of every Intercom webhook notification."""

    type: Literal["notification_event"]
    topic: str = Field(min_length=1, max_length=200, description="e.g. conversation.user.replied")
    id: str | None = Field(None, description="The notification id")
    data: IntercomData


class IntercomAuthor(_Loose):
    type: Annotated[Literal["user", "lead", "contact", "admin", "team", "bot"], BeforeValidator(_lower)]
    id: OptionalId = None


class IntercomPart(_Loose):
    id: VendorId
    part_type: str = Field(max_length=200)
    body: str | None = None
    created_at: int | None = None
    author: IntercomAuthor


class IntercomPartList(_Loose):
    conversation_parts: list[IntercomPart]


class IntercomSource(_Loose):
    id: OptionalId = None
    type: OptionalText = Field(None, description="The channel: conversation (Messenger), email, sms, whatsapp...")
    body: str | None = None
    author: IntercomAuthor


class IntercomContact(_Loose):
    id: OptionalId = None
    external_id: OptionalId = None
    user_id: OptionalId = None  # API 1.x's `user`


class IntercomContactList(_Loose):
    contacts: list[IntercomContact] = Field(default_factory=list)


class IntercomTag(_Loose):
    name: str


class IntercomTagList(_Loose):
    tags: list[IntercomTag] = Field(default_factory=list)


class IntercomConversation(_Loose):
    """The parts of a conversation item that convintel reads."""

    type: Literal["conversation"]
    id: VendorId
    created_at: int | None = None
    source: IntercomSource | None = None
    conversation_parts: IntercomPartList | None = None
    contacts: IntercomContactList | None = None
    user: IntercomContact | None = None  # API 1.x
    priority: OptionalText = None
    state: OptionalText = None
    tags: IntercomTagList | None = None
    custom_attributes: dict[str, Any] = Field(default_factory=dict)


def read(body: bytes, *, received_at: datetime) -> Delivery | Ignored:
    """The messages an Intercom notification delivered, or why it is ignored. Raises
    PayloadNotJson and PayloadError (naming the missing or bad field, e.g.
    `data.item.conversation_parts`)."""
    notification = parse_payload(HELPDESK, IntercomNotification, body)
    topic = notification.topic
    if topic not in OPENING_TOPICS | REPLY_TOPICS:
        return Ignored(HELPDESK, f"topic {topic} carries no message convintel records")
    item = validate(HELPDESK, IntercomConversation, notification.data.item, _ITEM)
    fields = _conversation_fields(item, topic, received_at)
    messages: list[IncomingMessage] = []
    if topic in OPENING_TOPICS:
        if item.source is None:
            raise missing(HELPDESK, "data.item.source")
        opening = _message(
            "source", f"source-{item.source.id or item.id}", item.source.author, item.source.body, fields
        )
        messages += [opening] if opening is not None else []
    elif item.conversation_parts is None:
        raise missing(HELPDESK, "data.item.conversation_parts")
    for index, part in enumerate(item.conversation_parts.conversation_parts if item.conversation_parts else ()):
        if part.part_type.lower() in NOTE_PART_TYPES:
            continue  # internal: the customer never sees a note
        timed = {**fields, "timestamp": from_unix(part.created_at) or received_at}
        where = f"data.item.conversation_parts.conversation_parts.{index}"
        message = _message(where, part.id, part.author, part.body, timed)
        messages += [message] if message is not None else []
    if not messages:
        return Ignored(HELPDESK, "no message with text (a note, an assignment or an attachment only)")
    return Delivery(HELPDESK, conversation_id(HELPDESK, item.id), messages)


def _message(
    where: str, message_id: str, author: IntercomAuthor, body: str | None, fields: dict[str, Any]
) -> IncomingMessage | None:
    text = message_text(body or "")
    if not text:
        return None
    return build_message(HELPDESK, where, id=message_id, role=ROLES[author.type], text=text, **fields)


def _conversation_fields(item: IntercomConversation, topic: str, received_at: datetime) -> dict[str, Any]:
    """The conversation-level fields every message of the delivery carries."""
    contact = item.contacts.contacts[0] if item.contacts and item.contacts.contacts else item.user
    customer_id = contact and (contact.external_id or contact.user_id or contact.id)
    tags = [tag.name for tag in item.tags.tags] if item.tags else []
    return {
        "timestamp": from_unix(item.created_at) or received_at,
        "channel": channel_from(item.source.type if item.source else None),
        "customer_id": customer_id,
        "metadata": clean_metadata(
            {
                **item.custom_attributes,
                "helpdesk": HELPDESK,
                "topic": topic,
                "priority": item.priority,
                "state": item.state,
                "tags": tags,
            }
        ),
    }
