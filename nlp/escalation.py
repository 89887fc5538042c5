"""The first escalation policy: rules over the conversation's customer-side signals.

Each rule that fires adds a reason naming itself and the messages behind it; the level is
the highest any rule asks for."""

from __future__ import annotations

from dataclasses import dataclass, field

from nlp.labels import URGENCY_LABELS
from nlp.policy import AnalysisPolicy
from nlp.schemas import (
    EmotionHighlight, Escalation, EscalationReason, MessageAnalysis, SentimentResult,
    SentimentTrend, UrgencyHighlight,
)

ESCALATION_LEVELS: tuple[str, ...] = ("none", "monitor", "escalate", "urgent")
RECOMMENDED_LEVELS = frozenset({"escalate", "urgent"})


@dataclass
class ConversationSignals:
    """What the escalation rules read, computed once per summary."""

    customer: list[MessageAnalysis]
    sentiment: SentimentResult | None
    trend: SentimentTrend
    strongest_negative_emotion: EmotionHighlight | None
    highest_urgency: UrgencyHighlight | None
    anger_by_message: dict[str, float] = field(default_factory=dict)


def recommend_escalation(signals: ConversationSignals, policy: AnalysisPolicy) -> Escalation:
    """Apply the rules to `signals` and return the recommendation with its reasons."""
    fired: list[tuple[str, EscalationReason]] = []

    critical = [
        m.id for m in signals.customer
        if m.urgency.probabilities.get("critical", 0.0) >= policy.urgent_min_critical_probability
    ]
    if critical:
        fired.append(("urgent", EscalationReason(
            rule="urgency.critical", detail="a customer message reads as critical", message_ids=critical)))

    threshold = URGENCY_LABELS.index(policy.escalate_on_urgency)
    urgent_enough = [m.id for m in signals.customer if URGENCY_LABELS.index(m.urgency.label) >= threshold]
    if urgent_enough and not critical:
        fired.append(("escalate", EscalationReason(
            rule=f"urgency.{policy.escalate_on_urgency}",
            detail=f"customer urgency at {policy.escalate_on_urgency} or above", message_ids=urgent_enough)))

    angry = [mid for mid, score in signals.anger_by_message.items() if score >= policy.anger_escalate_score]
    if angry and signals.sentiment is not None and signals.sentiment.label == "negative":
        fired.append(("escalate", EscalationReason(
            rule="emotion.anger", detail="the customer is angry and negative overall", message_ids=angry)))

    trend = signals.trend
    if trend.label == "worsening" and trend.last is not None and trend.last <= policy.worsening_escalate_end_score:
        fired.append(("escalate", EscalationReason(
            rule="sentiment.worsening",
            detail=f"customer sentiment fell from {trend.first:+.2f} to {trend.last:+.2f}",
            message_ids=[signals.customer[0].id, signals.customer[-1].id])))
    elif trend.label == "worsening":
        fired.append(("monitor", EscalationReason(
            rule="sentiment.worsening", detail="customer sentiment is getting worse",
            message_ids=[signals.customer[0].id, signals.customer[-1].id])))

    if signals.sentiment is not None and signals.sentiment.score <= policy.monitor_negative_score:
        fired.append(("monitor", EscalationReason(
            rule="sentiment.negative", detail=f"customer sentiment is negative ({signals.sentiment.score:+.2f})",
            message_ids=[m.id for m in signals.customer if m.sentiment.label == "negative"])))

    emotion = signals.strongest_negative_emotion
    if emotion is not None and emotion.score >= policy.monitor_negative_emotion_score:
        fired.append(("monitor", EscalationReason(
            rule="emotion.strong_negative", detail=f"strong {emotion.label} ({emotion.score:.2f})",
            message_ids=[emotion.message_id])))

    if signals.highest_urgency is not None and signals.highest_urgency.label == "medium":
        fired.append(("monitor", EscalationReason(
            rule="urgency.medium", detail="customer urgency is medium",
            message_ids=[signals.highest_urgency.message_id])))

    fired.sort(key=lambda item: -ESCALATION_LEVELS.index(item[0]))  # stable: rule order kept
    level = fired[0][0] if fired else "none"
    return Escalation(recommended=level in RECOMMENDED_LEVELS, level=level, reasons=[r for _, r in fired])
