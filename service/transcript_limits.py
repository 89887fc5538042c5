"""The per-transcript limits (messages per transcript, characters per message), without
HTTP: the API answers a breach with 413 (`service/api/limits.py`), archive scoring
reports the row (`service/batch/records.py`). One check, so both say the same thing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nlp.schemas import Message
from service.settings import Settings


@dataclass(frozen=True)
class LimitBreach:
    """What is over its limit: the field (`messages`, `messages.3.text`), a sentence for
    the caller, and a short detail for that field."""

    field: str
    message: str
    detail: str


def message_breach(messages: Iterable[Message], settings: Settings, field: str = "messages") -> LimitBreach | None:
    """The first message whose text is longer than `max_message_chars`, if any (`field`
    empty: one message that is the whole body, named `text`)."""
    for index, message in enumerate(messages):
        if len(message.text) > settings.max_message_chars:
            name = f"{field}.{index}.text" if field else "text"
            limit = settings.max_message_chars
            return LimitBreach(
                name,
                f"{name} has {len(message.text)} characters; the limit is {limit}",
                f"longer than {limit} characters",
            )
    return None


def transcript_breach(messages: list[Message], settings: Settings, field: str = "messages") -> LimitBreach | None:
    """Too many messages (`max_messages`), else the first message that is too long, else None."""
    if len(messages) > settings.max_messages:
        return LimitBreach(
            field,
            f"{field} has {len(messages)} messages; the limit is {settings.max_messages}",
            f"more than {settings.max_messages} messages",
        )
    return message_breach(messages, settings, field)
