"""What the conversation store reads and writes, as plain dataclasses: stored messages and
conversations, listing filters and positions, and how times are written."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nlp.schemas import MessageAnalysis, Role
from nlp.signals import Turn
from nlp.timestamps import parse_timestamp
from nlp.vocabulary import EscalationLevel


@dataclass
class StoredMessage:
    seq: int
    id: str
    role: str
    text: str
    timestamp: str | None
    analysis: MessageAnalysis
    turn: Turn = field(init=False, repr=False)
    """The message as the summary reads it, built once (the timestamp parsed)."""

    def __post_init__(self) -> None:
        self.turn = Turn(
            id=self.id,
            role=Role(self.role),
            text=self.text,
            timestamp=parse_timestamp(self.timestamp),
        )


@dataclass
class ConversationHeader:
    """A conversation's own row: what a listing shows and the stored conversation starts with."""

    id: str
    channel: str
    customer_id: str | None
    language: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str


@dataclass
class StoredConversation(ConversationHeader):
    escalation_level: str | None = None
    messages: list[StoredMessage] = field(default_factory=list)

    @property
    def analyses(self) -> list[MessageAnalysis]:
        return [m.analysis for m in self.messages]

    @property
    def turns(self) -> list[Turn]:
        return [m.turn for m in self.messages]


@dataclass(frozen=True)
class ConversationFilter:
    """Which conversations a listing holds; a field left None does not filter."""

    min_level: EscalationLevel | None = None
    """Escalation level at least this (a conversation without a level counts as `none`)."""
    channel: str | None = None
    customer_id: str | None = None
    updated_since: datetime | None = None
    """Changed at or after this moment (millisecond resolution, as stored)."""


@dataclass(frozen=True)
class ListPosition:
    """Where a listing stopped: the last item's change time (as stored) and id. The next
    page starts after it, so conversations inserted meanwhile never shift a page."""

    updated_at: str
    id: str


@dataclass
class ConversationListing(ConversationHeader):
    """One conversation as a listing shows it: its header, level, route and message count,
    read without its messages."""

    escalation_level: str | None
    escalation_route: str | None
    escalation_rules: list[str]
    message_count: int


class MessageExists(Exception):
    """The conversation already holds a message with this id (ids are unique per conversation)."""


def now_stored() -> str:
    """The current time as the store writes times."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def stored_time(moment: datetime) -> str:
    """`moment` as the store writes times (UTC, milliseconds), so that stored times compare
    with it as strings; naive means UTC. A moment that has no UTC time (within a day of
    year 1 or 9999) becomes the earliest or latest time there is."""
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)
    return moment.isoformat(timespec="milliseconds")
