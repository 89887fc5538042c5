"""The service's vocabulary, defined once: the label sets of the models, the urgency and
escalation levels, the risk-cue families and the default routes. The policy, the
escalation logic, the API schemas, the cue detector and the training recipes all read
them from here.

The emotion head is trained on the 28 GoEmotions labels (a public, measurable task);
the API reports a smaller customer-service emotion set derived from it. The mapping
lives here so the training code, the analyzer and the docs agree on one definition.
"""

from __future__ import annotations

from typing import Literal, get_args

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")

UrgencyLevel = Literal["low", "medium", "high", "critical"]
URGENCY_LABELS: tuple[UrgencyLevel, ...] = get_args(UrgencyLevel)
"""Urgency levels, lowest first (the urgency head's labels, in this order)."""

ComplaintLabel = Literal["no", "yes"]
COMPLAINT_LABELS: tuple[ComplaintLabel, ...] = get_args(ComplaintLabel)
"""The complaint head's labels, in this order: a customer message is a complaint ("yes")
or not. "yes" last, so P(complaint) is the second column of the head's probabilities."""

EscalationLevel = Literal["none", "monitor", "escalate", "urgent"]
ESCALATION_LEVELS: tuple[EscalationLevel, ...] = get_args(EscalationLevel)
"""Escalation levels, lowest first: a conversation's level is the highest any fired rule asks for."""

RuleLevel = Literal["monitor", "escalate", "urgent"]
"""The levels a policy rule may ask for (every level but `none`)."""

RECOMMENDED_LEVELS: frozenset[EscalationLevel] = frozenset({"escalate", "urgent"})
"""Levels at which a person should step in (`recommended: true`, and a route)."""

CueFamily = Literal[
    "cancellation", "legal", "safety", "security", "public_complaint", "repeat_contact", "human_request"
]
CUE_FAMILIES: tuple[CueFamily, ...] = get_args(CueFamily)
"""Risk-cue families, in the order a message's cues are reported."""

NO_ROUTE = "none"
DEFAULT_ROUTES: tuple[str, ...] = (
    NO_ROUTE,
    "senior_agent",
    "retention",
    "billing",
    "security",
    "supervisor",
    "technical",
)
"""Routes a policy may send a conversation to when it names none of its own."""

GOEMOTIONS_LABELS: tuple[str, ...] = (
    "admiration",
    "amusement",
    "anger",
    "annoyance",
    "approval",
    "caring",
    "confusion",
    "curiosity",
    "desire",
    "disappointment",
    "disapproval",
    "disgust",
    "embarrassment",
    "excitement",
    "fear",
    "gratitude",
    "grief",
    "joy",
    "love",
    "nervousness",
    "optimism",
    "pride",
    "realization",
    "relief",
    "remorse",
    "sadness",
    "surprise",
    "neutral",
)

# Customer-service emotion -> the GoEmotions labels it is read from. A support emotion is
# present when any of its sources is, with the strongest source's probability as score.
SUPPORT_EMOTION_SOURCES: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "disgust"),
    "frustration": ("annoyance", "disapproval"),
    "disappointment": ("disappointment",),
    "anxiety": ("fear", "nervousness"),
    "confusion": ("confusion",),
    "sadness": ("sadness", "grief"),
    "gratitude": ("gratitude",),
    "joy": ("joy", "amusement", "excitement", "love", "admiration"),
    "relief": ("relief",),
    "neutral": ("neutral",),
}

SUPPORT_EMOTIONS: tuple[str, ...] = tuple(SUPPORT_EMOTION_SOURCES)

# Emotions that signal a customer is unhappy; used for "strongest negative emotion".
NEGATIVE_SUPPORT_EMOTIONS: frozenset[str] = frozenset(
    {"anger", "frustration", "disappointment", "anxiety", "confusion", "sadness"}
)

# Ekman's six plus neutral, as GoEmotions publishes the mapping (used for evaluation).
GOEMOTIONS_EKMAN_SOURCES: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": (
        "joy",
        "amusement",
        "approval",
        "excitement",
        "gratitude",
        "love",
        "optimism",
        "relief",
        "pride",
        "admiration",
        "desire",
        "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}
