"""Conversation-level summary from per-message analyses and the turns (no encoder work:
the per-message webhook re-summarises stored analyses after encoding only the new one)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nlp.categories import CategoryConfig, conversation_categories
from nlp.escalation import recommend_escalation
from nlp.insights import derive_insights
from nlp.policy import Policy
from nlp.schemas import Channel, ConversationSummary, MessageAnalysis
from nlp.signals import Turn, compute_signals
from nlp.tags import derive_tags
from nlp.topics.live import conversation_topics


def summarize_conversation(
    analyses: Sequence[MessageAnalysis],
    turns: Sequence[Turn],
    policy: Policy,
    channel: Channel | None = None,
    categories: CategoryConfig | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ConversationSummary:
    """Summarise a conversation; `turns` align with `analyses` (same order and ids);
    `metadata` is the conversation's (policy rules may test it)."""
    signals = compute_signals(analyses, turns, policy.thresholds, channel, metadata)
    escalation = recommend_escalation(signals, policy)
    matched = conversation_categories(analyses, categories, channel)
    topics = conversation_topics(analyses)
    return ConversationSummary(
        messages=len(analyses),
        customer_messages=len(signals.customer),
        sentiment=signals.sentiment,
        sentiment_trend=signals.trend,
        strongest_negative_emotion=signals.strongest_negative_emotion,
        highest_urgency=signals.highest_urgency,
        risk_cues=signals.risk_cues,
        categories=matched,
        timing=signals.timing,
        repeated_to_bot=signals.repeated_to_bot,
        tags=derive_tags(signals, escalation, categories=matched, topics=topics),
        escalation=escalation,
        insights=derive_insights(signals, escalation, policy.experience),
        topics=topics,
    )
