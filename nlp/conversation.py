"""Conversation-level summary from per-message analyses (no encoder work: the per-message
webhook re-summarises stored analyses after encoding only the new message)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nlp.escalation import ConversationSignals, recommend_escalation
from nlp.labels import NEGATIVE_SUPPORT_EMOTIONS, SENTIMENT_LABELS, URGENCY_LABELS
from nlp.policy import AnalysisPolicy
from nlp.schemas import (
    ConversationSummary, EmotionHighlight, MessageAnalysis, Role, SentimentResult,
    SentimentTrend, UrgencyHighlight,
)
from nlp.tags import derive_tags


def overall_sentiment(customer: Sequence[MessageAnalysis]) -> SentimentResult | None:
    """Mean of the customer's sentiment distributions (each turn weighs the same)."""
    if not customer:
        return None
    probs = np.array([[m.sentiment.probabilities[label] for label in SENTIMENT_LABELS] for m in customer]).mean(axis=0)
    distribution = dict(zip(SENTIMENT_LABELS, probs))
    return SentimentResult(
        label=SENTIMENT_LABELS[int(np.argmax(probs))],
        score=round(float(distribution["positive"] - distribution["negative"]), 4),
        probabilities={label: round(float(p), 4) for label, p in distribution.items()},
    )


def sentiment_trend(customer: Sequence[MessageAnalysis], policy: AnalysisPolicy) -> SentimentTrend:
    """First versus last customer turn; 'unknown' with fewer than two turns."""
    if len(customer) < 2:
        only = customer[0].sentiment.score if customer else None
        return SentimentTrend(label="unknown", first=only, last=only, change=None)
    first, last = customer[0].sentiment.score, customer[-1].sentiment.score
    change = round(last - first, 4)
    if change >= policy.trend_min_change:
        label = "improving"
    elif change <= -policy.trend_min_change:
        label = "worsening"
    else:
        label = "stable"
    return SentimentTrend(label=label, first=first, last=last, change=change)


def strongest_negative_emotion(customer: Sequence[MessageAnalysis], policy: AnalysisPolicy) -> EmotionHighlight | None:
    best: EmotionHighlight | None = None
    for message in customer:
        for emotion in message.emotions:
            if emotion.label in NEGATIVE_SUPPORT_EMOTIONS and emotion.score >= policy.negative_emotion_min_score:
                if best is None or emotion.score > best.score:
                    best = EmotionHighlight(label=emotion.label, score=emotion.score, message_id=message.id)
    return best


def highest_urgency(customer: Sequence[MessageAnalysis]) -> UrgencyHighlight | None:
    if not customer:
        return None
    top = max(customer, key=lambda m: (URGENCY_LABELS.index(m.urgency.label), m.urgency.score))
    return UrgencyHighlight(label=top.urgency.label, score=top.urgency.score, message_id=top.id)


def summarize_conversation(analyses: Sequence[MessageAnalysis], policy: AnalysisPolicy) -> ConversationSummary:
    """Summarise a conversation from its message analyses, in conversation order."""
    customer = [m for m in analyses if m.role == Role.customer]
    signals = ConversationSignals(
        customer=customer,
        sentiment=overall_sentiment(customer),
        trend=sentiment_trend(customer, policy),
        strongest_negative_emotion=strongest_negative_emotion(customer, policy),
        highest_urgency=highest_urgency(customer),
        anger_by_message={
            m.id: e.score for m in customer for e in m.emotions if e.label == "anger"
        },
    )
    escalation = recommend_escalation(signals, policy)
    return ConversationSummary(
        messages=len(analyses),
        customer_messages=len(customer),
        sentiment=signals.sentiment,
        sentiment_trend=signals.trend,
        strongest_negative_emotion=signals.strongest_negative_emotion,
        highest_urgency=signals.highest_urgency,
        tags=derive_tags(signals, escalation),
        escalation=escalation,
    )
