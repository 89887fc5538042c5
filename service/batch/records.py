"""Streaming input for archive scoring: archive rows (read by `nlp.archive.RowReader`:
JSONL, JSON, CSV or Parquet), each either a whole transcript (the /v1/analyze body) or one
message with a conversation id, become validated transcripts one at a time, so memory
stays flat however large the file is.

Grouped (message) rows must keep each conversation's rows together: a conversation ends
when the conversation id changes. Rows of a conversation that shows up again later are
reported as errors (within the last `batch_reopen_window` conversations) rather than
scored twice; sort the archive by conversation id (then time) before scoring."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import ValidationError

from nlp.archive import ArchiveRow
from nlp.errors import describe_validation_error
from nlp.schemas import ConversationFields, Message, Transcript
from service.settings import Settings
from service.transcript_limits import transcript_breach


class Shape(str, Enum):
    """What one input row holds."""

    auto = "auto"
    transcripts = "transcripts"
    messages = "messages"


# Columns of a message row; everything else in the row is ignored.
MESSAGE_COLUMNS = (
    "conversation_id",
    "message_id",
    "id",
    "role",
    "text",
    "timestamp",
    "channel",
    "customer_id",
    "language",
)


@dataclass(frozen=True)
class InputConversation:
    """A validated transcript and the input rows it came from."""

    transcript: Transcript
    first_row: int
    last_row: int


@dataclass(frozen=True)
class RowError:
    """A row (or a conversation's rows) that could not be scored, and why."""

    row: int
    reason: str
    conversation_id: str | None = None
    last_row: int = 0

    def __post_init__(self) -> None:
        if self.last_row < self.row:
            object.__setattr__(self, "last_row", self.row)

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "conversation_id": self.conversation_id, "reason": self.reason}


InputItem = InputConversation | RowError


class RecentIds:
    """The last `capacity` conversation ids seen: catches a conversation that comes back
    (grouped rows not contiguous, or a duplicated transcript) without growing forever."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, int] = OrderedDict()

    def get(self, conversation_id: str) -> int | None:
        return self._ids.get(conversation_id)

    def add(self, conversation_id: str, row: int) -> None:
        self._ids[conversation_id] = row
        self._ids.move_to_end(conversation_id)
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


def _check_limits(transcript: Transcript, settings: Settings) -> str | None:
    # The API's limits, worded as its 413 answer, so a row and a request fail alike.
    breach = transcript_breach(transcript.messages, settings)
    return breach.message if breach else None


def read_conversations(
    rows: Iterator[ArchiveRow], settings: Settings, shape: Shape = Shape.auto
) -> Iterator[InputItem]:
    """Validated conversations and row errors, in input order. With `Shape.auto`, the
    first parsed row decides: a `messages` field means transcripts, else message rows."""
    rows = iter(rows)
    if shape is Shape.auto:
        pending: list[ArchiveRow] = []
        for row in rows:
            pending.append(row)
            if row.fields is not None:
                shape = Shape.transcripts if "messages" in row.fields else Shape.messages
                break
        rows = _chain(pending, rows)
    recent = RecentIds(settings.batch_reopen_window)
    if shape is Shape.messages:
        yield from _grouped(rows, settings, recent)
    else:
        yield from _transcripts(rows, settings, recent)


def _chain(head: list[ArchiveRow], tail: Iterator[ArchiveRow]) -> Iterator[ArchiveRow]:
    yield from head
    yield from tail


def _transcripts(rows: Iterator[ArchiveRow], settings: Settings, recent: RecentIds) -> Iterator[InputItem]:
    for row in rows:
        if row.fields is None:
            yield RowError(row.number, row.error or "unreadable row")
            continue
        fields = row.fields  # nested fields given as JSON text are already decoded by the reader
        conversation_id = fields.get("conversation_id")
        try:
            transcript = Transcript.model_validate(fields)
        except ValidationError as exc:
            yield RowError(
                row.number,
                describe_validation_error(exc),
                conversation_id if isinstance(conversation_id, str) else None,
            )
            continue
        problem = _check_limits(transcript, settings)
        if problem:
            yield RowError(row.number, problem, transcript.conversation_id)
            continue
        if transcript.conversation_id is not None:
            earlier = recent.get(transcript.conversation_id)
            if earlier is not None:
                yield RowError(
                    row.number,
                    f"conversation {transcript.conversation_id!r} was already read at row {earlier}",
                    transcript.conversation_id,
                )
                continue
            recent.add(transcript.conversation_id, row.number)
        yield InputConversation(transcript, row.number, row.number)


@dataclass
class _OpenConversation:
    conversation_id: str
    first_row: int
    last_row: int
    fields: dict[str, Any]
    messages: list[Message] = field(default_factory=list)
    overflow: bool = False


def _grouped(rows: Iterator[ArchiveRow], settings: Settings, recent: RecentIds) -> Iterator[InputItem]:
    current: _OpenConversation | None = None
    for row in rows:
        if row.fields is None:
            yield RowError(row.number, row.error or "unreadable row")
            continue
        conversation_id = row.fields.get("conversation_id")
        if conversation_id is None or str(conversation_id).strip() == "":
            yield RowError(row.number, "conversation_id: missing (grouped message rows need one)")
            continue
        conversation_id = str(conversation_id)
        if current is not None and current.conversation_id != conversation_id:
            yield _close(current, settings)
            recent.add(current.conversation_id, current.first_row)
            current = None
        if current is None:
            earlier = recent.get(conversation_id)
            if earlier is not None:
                yield RowError(
                    row.number,
                    f"rows of conversation {conversation_id!r} are not contiguous (it started "
                    f"at row {earlier}); sort the input by conversation id",
                    conversation_id,
                )
                continue
            current = _OpenConversation(conversation_id, row.number, row.number, row.fields)
        current.last_row = row.number
        message_fields = {k: row.fields[k] for k in ("role", "text", "timestamp") if k in row.fields}
        message_id = row.fields.get("message_id", row.fields.get("id"))
        if message_id is not None:
            message_fields["id"] = str(message_id)
        try:
            message = Message.model_validate(message_fields)
        except ValidationError as exc:
            yield RowError(row.number, describe_validation_error(exc), conversation_id)
            continue
        if len(current.messages) >= settings.max_messages:
            current.overflow = True  # keep consuming its rows, but hold no more of them
            continue
        current.messages.append(message)
    if current is not None:
        yield _close(current, settings)


def _close(conversation: _OpenConversation, settings: Settings) -> InputItem:
    cid, first, last = conversation.conversation_id, conversation.first_row, conversation.last_row
    if conversation.overflow:
        return RowError(
            first, f"conversation has more than {settings.max_messages} messages (CONVINTEL_MAX_MESSAGES)", cid, last
        )
    if not conversation.messages:
        return RowError(first, "no valid message rows", cid, last)
    fields = {k: conversation.fields[k] for k in ConversationFields.model_fields if k in conversation.fields}
    try:
        transcript = Transcript.model_validate({**fields, "conversation_id": cid, "messages": conversation.messages})
    except ValidationError as exc:
        return RowError(first, describe_validation_error(exc), cid, last)
    problem = _check_limits(transcript, settings)
    if problem:
        return RowError(first, problem, cid, last)
    return InputConversation(transcript, first, last)
