"""Pydantic models at the library's edges: the transcript that comes in and the analysis
that goes out. The service returns these models as they are, and stores message analyses
in the same shape, so one definition serves the API, the store and the batch output."""

from __future__ import annotations

import math
from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from nlp.text import normalize_text, storable
from nlp.timestamps import parse_timestamp
from nlp.vocabulary import NO_ROUTE, ComplaintLabel, CueFamily, EscalationLevel, RuleLevel

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@\-]*$"
# A customer id is the helpdesk's own (an email, a name, a number): any text but NUL, which
# PostgreSQL cannot store.
CUSTOMER_ID_PATTERN = r"^[^\x00]+$"
# "Some character that str.isspace() does not call space", spelled out so every regex
# engine reading the OpenAPI spec (ECMA, Python, Rust) agrees with the validator below.
# Whitespace, plus the control and zero-width characters that normalize_text removes.
NOT_BLANK_PATTERN = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]"
MAX_METADATA_DEPTH = 32
"""Levels of nesting `metadata` may have. Helpdesk metadata is a few levels deep; far deeper
values exhaust the validator's recursion or cannot be serialised back (a 500 on every read)."""


class Role(str, Enum):
    """Who wrote a message."""

    customer = "customer"
    agent = "agent"
    bot = "bot"
    system = "system"


class Channel(str, Enum):
    """Where the conversation happened."""

    chat = "chat"
    email = "email"
    voice = "voice"
    social = "social"
    sms = "sms"
    other = "other"


class Message(BaseModel):
    """One turn of a conversation."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = Field(
        default=None,
        max_length=128,
        pattern=IDENTIFIER_PATTERN,
        description="Caller's message id; generated from the position when absent.",
    )
    role: Role
    text: str = Field(
        description="The message text. Must contain something besides whitespace and control characters.",
        json_schema_extra={"pattern": NOT_BLANK_PATTERN},
    )  # checked, with a clear message, below
    timestamp: datetime | None = Field(default=None, description="ISO-8601; naive times are read as UTC.")

    @field_validator("text", mode="before")
    @classmethod
    def _text_storable(cls, value: Any) -> Any:
        # Lone surrogates cannot be tokenised, stored or written back as JSON; NUL cannot be stored.
        return storable(value) if isinstance(value, str) else value

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not normalize_text(value):
            raise ValueError("text must not be empty, whitespace or control characters only")
        return value

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp_is_iso(cls, value: Any) -> Any:
        # The one timestamp rule (nlp/timestamps.py): ISO-8601 only, naive read as UTC. Pydantic
        # alone would also take numbers and numeric strings ("1700000000") as Unix times.
        if value is None:
            return None
        parsed = parse_timestamp(value)
        if parsed is None:
            raise ValueError("timestamp must be an ISO-8601 time, such as 2026-03-02T10:00:00Z")
        return parsed


def _storable_json(value: Any, depth: int = 0) -> Any:
    """Every string in a JSON value (keys too) made `storable`; ValueError when the value
    nests deeper than MAX_METADATA_DEPTH or holds a number that is not finite."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or Infinity (Python's parser takes them); stored, they came back as null.
        raise ValueError("metadata numbers must be finite")
    if isinstance(value, (dict, list)) and depth >= MAX_METADATA_DEPTH:
        raise ValueError(f"metadata must not nest deeper than {MAX_METADATA_DEPTH} levels")
    if isinstance(value, dict):
        return {_storable_json(k, depth + 1): _storable_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable_json(v, depth + 1) for v in value]
    return value


class ConversationFields(BaseModel):
    """Conversation-level fields shared by a full transcript and the per-message webhook."""

    model_config = ConfigDict(extra="ignore")

    channel: Channel = Channel.other
    customer_id: str | None = Field(default=None, max_length=256, pattern=CUSTOMER_ID_PATTERN)
    language: str | None = Field(
        default=None,
        max_length=35,
        pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$",
        description="BCP-47 tag such as 'en' or 'pt-BR'. The shipped models are English-only.",
    )
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_storable(cls, value: Any) -> Any:
        return _storable_json(value)


class Transcript(ConversationFields):
    """A whole conversation to analyse in one call."""

    conversation_id: str | None = Field(default=None, max_length=128, pattern=IDENTIFIER_PATTERN)
    messages: list[Message] = Field(min_length=1)

    @field_validator("messages")
    @classmethod
    def _message_ids_unique(cls, messages: list[Message]) -> list[Message]:
        # A field validator, so that the error names `messages` (a model one names the body).
        seen: set[str] = set()
        for index, message in enumerate(messages):
            if message.id is None:
                continue
            if message.id in seen:
                raise ValueError(f"messages[{index}].id {message.id!r} is used by an earlier message")
            seen.add(message.id)
        return messages


class IncomingMessage(Message, ConversationFields):
    """One new message posted to a conversation (the helpdesk webhook). The conversation
    fields are optional: given on the first call they are stored, later ones update them."""

    channel: Channel | None = None  # type: ignore[assignment]


# --- analysis results -----------------------------------------------------------------


class SentimentResult(BaseModel):
    label: str = Field(description="negative | neutral | positive")
    score: float = Field(ge=-1.0, le=1.0, description="P(positive) - P(negative)")
    probabilities: dict[str, float]


class EmotionScore(BaseModel):
    label: str
    score: float = Field(ge=0.0, le=1.0)


class UrgencyResult(BaseModel):
    label: str = Field(description="low | medium | high | critical")
    score: float = Field(ge=0.0, le=1.0, description="Expected level scaled to [0, 1]")
    probabilities: dict[str, float]


class ComplaintResult(BaseModel):
    """Whether a customer message is a complaint: it reports a problem with, or reproaches,
    the company, its product or service (X-CI's definition)."""

    label: ComplaintLabel = Field(description="yes | no: yes when P(complaint) is above 0.5")
    score: float = Field(ge=0.0, le=1.0, description="P(complaint): the calibrated probability of yes")


class CueHit(BaseModel):
    family: CueFamily
    quote: str = Field(
        description="The phrase that triggered it; for a cue only the cue model found, the message's most "
        "relevant sentence (personal data redacted)"
    )
    source: Literal["pattern", "model"] = Field(
        "pattern", description="'pattern': a cue pattern matched; 'model': only the bundle's cue model found it"
    )


class CategoryHit(BaseModel):
    name: str = Field(description="A configured tag category whose words this message contains")
    quote: str = Field(description="The matched words (personal data redacted)")


class ConversationCategory(BaseModel):
    name: str
    message_id: str = Field(description="The first message where the category's conditions hold")
    quote: str


class TopicScore(BaseModel):
    """A customer message's topic."""

    id: int = Field(description="Topic id in the configured topic model (stable across refits)")
    name: str
    confidence: float = Field(ge=0.0, le=1.0, description="Softmax probability of this topic over all topics")
    similarity: float = Field(ge=-1.0, le=1.0, description="Cosine similarity to the topic centroid")
    parent: int | None = Field(None, description="Id of the topic's parent topic (`GET /v1/topics`)")
    parent_name: str | None = Field(None, description="Name of the parent topic")


class ConversationTopic(BaseModel):
    """A topic of the conversation, from its customer messages."""

    id: int
    name: str
    confidence: float = Field(
        ge=0.0, le=1.0, description="Message confidences for this topic summed, over the number of customer messages"
    )
    message_ids: list[str] = Field(description="Customer messages assigned to this topic")


class MessageAnalysis(BaseModel):
    """What the models say about one message."""

    id: str
    role: Role
    sentiment: SentimentResult
    emotions: list[EmotionScore] = Field(description="Emotions present, strongest first")
    urgency: UrgencyResult | None = Field(
        None,
        description="Customer messages only: how soon a person should look at what the customer asks for. "
        "null for agent, bot and system messages (urgency is a property of the customer's message).",
    )
    complaint: ComplaintResult | None = Field(
        default=None,
        description="Customer messages, when the model bundle has a complaint head (convintel-base 0.3.0 on); "
        "null for agent, bot and system messages and with bundles without that head",
    )
    cues: list[CueHit] = Field(default_factory=list, description="Risk cues in a customer message")
    categories: list[CategoryHit] = Field(default_factory=list, description="Configured tag categories matched")
    warnings: list[str] = Field(
        default_factory=list,
        description="'truncated' (text longer than the encoder reads), 'no_words' (emoji or symbols only)",
    )
    topics: list[TopicScore] = Field(
        default_factory=list,
        description="Customer messages, with a topic model configured: the nearest topic when similar enough",
    )


class SentimentDrop(BaseModel):
    from_message_id: str
    to_message_id: str
    change: float


class SentimentTrend(BaseModel):
    """The customer's sentiment trajectory over their turns."""

    label: str = Field(description="improving | stable | worsening | unknown")
    first: float | None = None
    last: float | None = None
    change: float | None = None
    slope: float | None = Field(None, description="Least-squares change per customer turn")
    sharp_drops: list[SentimentDrop] = Field(default_factory=list)


class EmotionHighlight(BaseModel):
    label: str
    score: float
    message_id: str


class UrgencyHighlight(BaseModel):
    label: str
    score: float
    message_id: str


class Evidence(BaseModel):
    message_id: str
    quote: str | None = Field(None, description="The phrase behind the signal (personal data redacted)")


class EscalationReason(BaseModel):
    rule: str = Field(description="The policy rule that fired")
    level: RuleLevel
    detail: str
    signals: list[str] = Field(
        default_factory=list, description="What it read: 'cue:legal', 'model:urgency', 'timing:wait'..."
    )
    message_ids: list[str] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)


class ResponseStyle(BaseModel):
    emotion: str | None = Field(None, description="The emotion the style answers, if any")
    style: str


class Escalation(BaseModel):
    recommended: bool
    level: EscalationLevel
    route_to: str = NO_ROUTE
    confidence: float = Field(0.0, ge=0, le=1)
    response_style: ResponseStyle | None = None
    changed: bool = Field(False, description="Per-message path: the level differs from the previous message's")
    previous_level: EscalationLevel | None = None
    reasons: list[EscalationReason] = Field(default_factory=list)


class RiskCue(BaseModel):
    family: CueFamily
    message_id: str
    quote: str


class TimingCues(BaseModel):
    first_response_seconds: float | None = Field(None, description="First customer turn to first agent reply")
    longest_wait_seconds: float | None = Field(None, description="Longest customer wait for an agent reply")
    longest_wait_message_id: str | None = None
    agent_acknowledged: bool = Field(False, description="An agent apologised or acknowledged the problem")


class Resolution(BaseModel):
    label: str = Field(description="resolved | unresolved | unknown")
    cue: str | None = None
    message_id: str | None = None


class Insights(BaseModel):
    interaction_type: str = Field(description="routine | advisory | high_emotion | proactive | assisted_support")
    automation_fit: str = Field(description="high | medium | low")
    experience_score: int = Field(ge=0, le=100, description="Predicted satisfaction; formula in nlp/experience.py")
    experience_breakdown: dict[str, float] = Field(
        default_factory=dict,
        description="Score points per signal ('base' and each feature); before rounding and clipping they add up to it",
    )
    resolution: Resolution


class ConversationSummary(BaseModel):
    """Conversation-level view, computed from the customer's messages."""

    messages: int
    customer_messages: int
    sentiment: SentimentResult | None = Field(description="The customer's overall sentiment")
    sentiment_trend: SentimentTrend
    strongest_negative_emotion: EmotionHighlight | None
    highest_urgency: UrgencyHighlight | None
    risk_cues: list[RiskCue] = Field(default_factory=list)
    categories: list[ConversationCategory] = Field(
        default_factory=list, description="Configured tag categories whose conditions hold (tags category:<name>)"
    )
    timing: TimingCues = Field(default_factory=TimingCues)
    repeated_to_bot: list[str] = Field(
        default_factory=list, description="Customer turns repeating the previous one after a bot reply"
    )
    tags: list[str]
    escalation: Escalation
    insights: Insights | None = None
    topics: list[ConversationTopic] = Field(
        default_factory=list,
        description="With a topic model configured: topics of the customer messages, strongest first",
    )


class ModelInfo(BaseModel):
    name: str
    version: str


class Timing(BaseModel):
    total_ms: float
    encode_ms: float


class TranscriptAnalysis(BaseModel):
    conversation_id: str | None
    channel: Channel
    model: ModelInfo
    messages: list[MessageAnalysis]
    conversation: ConversationSummary
    timing: Timing
    warnings: list[str] = Field(default_factory=list)
