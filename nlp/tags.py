"""Conversation tags derived from the summary's signals."""

from __future__ import annotations

from collections.abc import Sequence

from nlp.schemas import ConversationCategory, ConversationTopic, Escalation
from nlp.signals import ConversationSignals
from nlp.topics.labels import slug


def derive_tags(
    signals: ConversationSignals,
    escalation: Escalation,
    categories: Sequence[ConversationCategory] = (),
    topics: Sequence[ConversationTopic] = (),
) -> list[str]:
    """Short machine-friendly tags, e.g. `sentiment:negative`, `complaint` (a customer
    message is a complaint), `risk:cancellation`, `category:billing_dispute`,
    `topic:card-arrive`."""
    tags: list[str] = []
    if signals.sentiment is not None:
        tags.append(f"sentiment:{signals.sentiment.label}")
    if signals.trend.label in {"improving", "worsening"}:
        tags.append(f"trend:{signals.trend.label}")
    if signals.strongest_negative_emotion is not None:
        tags.append(f"emotion:{signals.strongest_negative_emotion.label}")
    if signals.highest_urgency is not None:
        tags.append(f"urgency:{signals.highest_urgency.label}")
    if signals.complaints:
        tags.append("complaint")
    tags.extend(f"risk:{family}" for family in dict.fromkeys(c.family for c in signals.risk_cues))
    tags.extend(f"category:{category.name}" for category in categories)
    if signals.repeated_to_bot:
        tags.append("bot:repeated")
    if escalation.level != "none":
        tags.append(f"escalation:{escalation.level}")
    tags.extend(f"topic:{slug(topic.name)}" for topic in topics)
    return tags
