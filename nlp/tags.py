"""Conversation tags derived from the summary's signals (rule-based categories from
configuration are issue 5's)."""

from __future__ import annotations

from nlp.escalation import ConversationSignals
from nlp.schemas import Escalation


def derive_tags(signals: ConversationSignals, escalation: Escalation) -> list[str]:
    """Short machine-friendly tags, e.g. `sentiment:negative`, `urgency:high`."""
    tags: list[str] = []
    if signals.sentiment is not None:
        tags.append(f"sentiment:{signals.sentiment.label}")
    if signals.trend.label in {"improving", "worsening"}:
        tags.append(f"trend:{signals.trend.label}")
    if signals.strongest_negative_emotion is not None:
        tags.append(f"emotion:{signals.strongest_negative_emotion.label}")
    if signals.highest_urgency is not None:
        tags.append(f"urgency:{signals.highest_urgency.label}")
    if escalation.level != "none":
        tags.append(f"escalation:{escalation.level}")
    return tags
