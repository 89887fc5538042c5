"""What every helpdesk adapter shares: the two outcomes of reading a delivery (messages to
record, or a documented reason to record nothing), the errors that name what a payload
lacks, and the small readers the adapters' payload models are built from (ids, optional
placeholders, channels, timestamps)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from nlp.schemas import IDENTIFIER_PATTERN, Channel, IncomingMessage

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Delivery:
    """Messages to record, in order, all in one conversation."""

    helpdesk: str
    conversation_id: str
    messages: list[IncomingMessage]


@dataclass(frozen=True)
class Ignored:
    """A well-formed delivery that carries no message to record (an internal note, a topic
    convintel does not take, an attachment without text). Answered with success, so the
    helpdesk does not redeliver it."""

    helpdesk: str
    reason: str


@dataclass(frozen=True)
class PayloadProblem:
    field: str
    message: str


class PayloadError(Exception):
    """The payload is not one this helpdesk's adapter reads: a field missing or malformed."""

    def __init__(self, helpdesk: str, problems: Sequence[PayloadProblem]) -> None:
        self.helpdesk = helpdesk
        self.problems = list(problems)
        summary = "; ".join(
            f"{p.field} missing" if p.message == "missing" else f"{p.field}: {p.message}" for p in self.problems[:5]
        )
        super().__init__(f"{helpdesk} payload: {summary}")


class PayloadNotJson(Exception):
    """The body is not JSON at all."""


def parse_payload(helpdesk: str, model: type[Model], body: bytes) -> Model:
    """`body` read as JSON and validated as `model`. Raises PayloadNotJson, or
    PayloadError naming each bad field by its path in the payload."""
    if not body.strip():  # no body at all: a 422 for a missing payload, as for every other endpoint
        raise missing(helpdesk, "payload")
    try:
        # json.loads, as FastAPI does for every other endpoint: it keeps a lone UTF-16
        # surrogate, which the message schema then replaces, where a stricter parser
        # would refuse the whole body.
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise PayloadNotJson(str(exc) or type(exc).__name__) from None
    return validate(helpdesk, model, data)


def validate(helpdesk: str, model: type[Model], data: Any, at: Sequence[str | int] = ()) -> Model:
    """`data` (found at path `at` in the payload) validated as `model`; PayloadError otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise payload_error(helpdesk, exc, at) from None


def payload_error(helpdesk: str, exc: ValidationError, at: Sequence[str | int] = ()) -> PayloadError:
    """A PayloadError with one problem per validation error, each field named by its path
    from the payload's top (`data.item.conversation_parts`)."""
    problems = []
    for error in exc.errors():
        # The top is "payload": "body" is a field of some helpdesks' payloads.
        field = ".".join(str(part) for part in (*at, *error.get("loc", ()))) or "payload"
        message = "missing" if error.get("type") == "missing" else error.get("msg", "invalid value")
        problems.append(PayloadProblem(field, message))
    return PayloadError(helpdesk, problems)


def missing(helpdesk: str, field: str) -> PayloadError:
    return PayloadError(helpdesk, [PayloadProblem(field, "missing")])


def build_message(helpdesk: str, field: str, **fields: Any) -> IncomingMessage:
    """An IncomingMessage, or a PayloadError naming `field` (where the message came from)
    when the helpdesk's values break its schema."""
    try:
        return IncomingMessage.model_validate(fields)
    except ValidationError as exc:
        raise payload_error(helpdesk, exc, (field,)) from None


# --- field types for the adapters' payload models ----------------------------------------


def _blank_is_none(value: Any) -> Any:
    # A placeholder with nothing to render arrives as "": the field was not given.
    return None if isinstance(value, str) and not value.strip() else value


def _number_as_text(value: Any) -> Any:
    # Helpdesks send ids as numbers or strings (a placeholder outside quotes is a number).
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# The constraints come first so that the JSON schema shows them (a validator that runs
# before them wraps them); ids are not trimmed: the schema says what is accepted.
VendorId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN), BeforeValidator(_number_as_text)
]
"""A helpdesk's ticket, conversation, comment or user id: letters, digits and `._:@-`,
starting with a letter or digit, at most 64 characters (numbers are read as text)."""

OptionalId = Annotated[VendorId | None, BeforeValidator(_blank_is_none)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_is_none), BeforeValidator(_number_as_text)]
OptionalFlag = Annotated[bool | None, BeforeValidator(_blank_is_none)]
"""true or false (also as the strings a placeholder renders)."""
OptionalTime = Annotated[datetime | None, BeforeValidator(_blank_is_none)]
"""An ISO-8601 time; naive times are UTC."""


def conversation_id(helpdesk: str, ticket_id: str) -> str:
    """The convintel conversation of a helpdesk's ticket or conversation: `zendesk:123`.
    The helpdesk's name keeps ids from two helpdesks (or the messages API) apart."""
    return f"{helpdesk}:{ticket_id}"


def utc(moment: datetime | None) -> datetime | None:
    """`moment` with a time zone (naive: UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def from_unix(seconds: int | None) -> datetime | None:
    """A Unix time in seconds as an aware datetime; None when absent or out of range."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


# Words in a helpdesk's channel or source name, checked in this order: "Facebook Messenger"
# is social, "Email" is email wherever it came from.
_CHANNEL_WORDS: tuple[tuple[Channel, frozenset[str]], ...] = (
    (Channel.email, frozenset({"email", "mail", "e-mail"})),
    (Channel.sms, frozenset({"sms", "text", "mms"})),
    (Channel.voice, frozenset({"phone", "voice", "voicemail", "call", "calls"})),
    (
        Channel.social,
        frozenset({"twitter", "facebook", "instagram", "whatsapp", "social", "x", "wechat", "line", "telegram"}),
    ),
    (Channel.chat, frozenset({"chat", "messaging", "messenger", "conversation", "livechat"})),
)
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")


def channel_from(name: str | None) -> Channel | None:
    """The convintel channel of a helpdesk's channel or source name ("Web Form", "Mail",
    "phone_call", "Facebook Message"): `other` when no word is known, None without a name."""
    if not name:
        return None
    words = set(_WORD.findall(name.lower()))
    words |= {part for word in words for part in word.split("-")}
    return next((channel for channel, known in _CHANNEL_WORDS if words & known), Channel.other)


def tag_list(tags: str | None, separator: str | None = None) -> list[str]:
    """Tags rendered as one string (`"vip billing"`, `"vip,billing"`) as a list."""
    if not tags:
        return []
    return [tag.strip() for tag in tags.split(separator) if tag.strip()]


def clean_metadata(values: dict[str, Any]) -> dict[str, Any]:
    """`values` without the empty ones (None, "", []), which are placeholders with nothing to say."""
    return {key: value for key, value in values.items() if value not in (None, "", [], {})}
