"""Label sets shared by the models, the training recipes and the API.

The emotion head is trained on the 28 GoEmotions labels (a public, measurable task);
the API reports a smaller customer-service emotion set derived from it. The mapping
lives here so the training code, the analyzer and the docs agree on one definition.
"""

from __future__ import annotations

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")

URGENCY_LABELS: tuple[str, ...] = ("low", "medium", "high", "critical")

GOEMOTIONS_LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
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
        "joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism",
        "relief", "pride", "admiration", "desire", "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}
