"""Interaction insights a support lead reads at a glance: the kind of interaction, how
well it suits automation, a predicted experience score, and whether it was resolved.

experience_score (0-100) and its per-signal breakdown come from nlp/experience.py: the
policy's fitted formula when it has an `experience:` section, else the hand-set one."""

from __future__ import annotations

import re

from nlp.experience import ExperienceModel, experience
from nlp.schemas import Escalation, Insights, Resolution, Role
from nlp.signals import ConversationSignals

# Phrases that close a conversation well or badly, read from the last turns.
RESOLVED_CUSTOMER = re.compile(
    r"\b(that (worked|fixed it|did it|solved it|helps?)|(it'?s|all) (working|sorted|fixed|good) now|works now|"
    r"problem solved|issue (is )?(resolved|fixed)|perfect,? thanks?|thanks?,? (that|it) worked)\b",
    re.IGNORECASE,
)
UNRESOLVED_CUSTOMER = re.compile(
    r"\b(still (not|isn'?t|doesn'?t|don'?t|hasn'?t|won'?t|no)|not (resolved|fixed|working)|didn'?t (help|work)|"
    r"useless|waste of time|nothing has changed|no one (has )?helped)\b",
    re.IGNORECASE,
)
RESOLVED_AGENT = re.compile(
    r"\b(i'?ve (fixed|resolved|processed|refunded|updated|reset)|has been (fixed|resolved|refunded|processed)|"
    r"anything else i can help)\b",
    re.IGNORECASE,
)
HIGH_EMOTION_CUES = frozenset({"legal", "safety", "security", "cancellation", "public_complaint"})


def resolution(signals: ConversationSignals) -> Resolution:
    """resolved / unresolved / unknown, from the closing turns' wording and sentiment."""
    tail = signals.turns[-3:]
    for turn in reversed(tail):
        if turn.role == Role.customer:
            if UNRESOLVED_CUSTOMER.search(turn.text):
                return Resolution(label="unresolved", cue="customer says it is not fixed", message_id=turn.id)
            if RESOLVED_CUSTOMER.search(turn.text):
                return Resolution(label="resolved", cue="customer confirms it is fixed", message_id=turn.id)
    last_customer = signals.customer[-1] if signals.customer else None
    for turn in reversed(tail):
        if turn.role == Role.agent and RESOLVED_AGENT.search(turn.text):
            if last_customer is None or last_customer.sentiment.score >= 0:
                return Resolution(label="resolved", cue="agent reports a fix; customer not unhappy", message_id=turn.id)
    if (
        signals.turns
        and signals.turns[-1].role == Role.customer
        and last_customer is not None
        and last_customer.sentiment.label == "negative"
    ):
        return Resolution(
            label="unresolved", cue="conversation ends on an unhappy customer turn", message_id=last_customer.id
        )
    return Resolution(label="unknown")


def interaction_type(signals: ConversationSignals, escalation: Escalation) -> str:
    families = {c.family for c in signals.risk_cues}
    emotion = signals.strongest_negative_emotion
    if escalation.level in {"escalate", "urgent"} or families & HIGH_EMOTION_CUES or (emotion and emotion.score >= 0.6):
        return "high_emotion"
    if signals.turns and signals.turns[0].role in {Role.agent, Role.bot, Role.system}:
        return "proactive"
    if signals.advisory:
        return "advisory"
    urgency = signals.highest_urgency
    if signals.agent_replied and urgency is not None and urgency.label != "low":
        return "assisted_support"
    return "routine"


def automation_fit(signals: ConversationSignals, kind: str) -> str:
    """high for short, calm, low-urgency queries; low for emotional or risky ones."""
    urgency = signals.highest_urgency
    if kind == "high_emotion" or signals.risk_cues or (urgency and urgency.label in {"high", "critical"}):
        return "low"
    negative = signals.sentiment is not None and signals.sentiment.label == "negative"
    if (
        kind in {"routine", "advisory", "proactive"}
        and len(signals.customer) <= 3
        and not negative
        and (urgency is None or urgency.label == "low")
    ):
        return "high"
    return "medium"


def derive_insights(
    signals: ConversationSignals, escalation: Escalation, experience_model: ExperienceModel | None = None
) -> Insights:
    """Insights; `experience_model` is the policy's `experience:` section (None: hand-set score)."""
    resolved = resolution(signals)
    kind = interaction_type(signals, escalation)
    score, breakdown = experience(signals, resolved, experience_model)
    return Insights(
        interaction_type=kind,
        automation_fit=automation_fit(signals, kind),
        experience_score=score,
        experience_breakdown=breakdown,
        resolution=resolved,
    )
