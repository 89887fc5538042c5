"""Conversation-level summary from per-message analyses and the turns (no encoder work).

The summary is kept up to date one message at a time: `ConversationSummarizer.add` does
constant work per message (running sums, the latest highlights, each rule's matches), and
`summary` reads that state, so the per-message webhook never passes over the earlier
messages (only the evidence lists it returns grow with the conversation).
`summarize_conversation` folds a whole conversation through the same summarizer, so both
paths give the same summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nlp.categories import CategoryConfig, CategoryTally
from nlp.escalation import PolicyMatches, recommend_escalation
from nlp.insights import derive_insights
from nlp.policy import Policy
from nlp.schemas import Channel, ConversationSummary, MessageAnalysis
from nlp.signals import SignalAccumulator, Turn
from nlp.tags import derive_tags
from nlp.topics.live import TopicTally


class ConversationSummarizer:
    """A conversation's summary state under one policy and category configuration: `add`
    each message in order, read `summary` at any point (it changes nothing)."""

    def __init__(self, policy: Policy, categories: CategoryConfig | None = None) -> None:
        self.policy = policy
        self.categories = categories
        self._signals = SignalAccumulator(policy.thresholds)
        self._rules = PolicyMatches(policy)
        self._categories = CategoryTally()
        self._topics = TopicTally()

    def __len__(self) -> int:
        """Messages added."""
        return len(self._signals.analyses)

    @property
    def last(self) -> MessageAnalysis | None:
        """The last message added (None before the first)."""
        return self._signals.analyses[-1] if self._signals.analyses else None

    def add(self, analysis: MessageAnalysis, turn: Turn) -> None:
        """Take in the conversation's next message (`turn` is the same message)."""
        self._signals.add(analysis, turn)
        self._rules.add(analysis)
        self._categories.add(analysis)
        self._topics.add(analysis)

    def extend(self, analyses: Sequence[MessageAnalysis], turns: Sequence[Turn]) -> ConversationSummarizer:
        """`add` each message in order; returns self."""
        for analysis, turn in zip(analyses, turns, strict=True):
            self.add(analysis, turn)
        return self

    def summary(self, channel: Channel | None = None, metadata: Mapping[str, Any] | None = None) -> ConversationSummary:
        """The summary of the messages added so far, on `channel`, with the conversation's
        `metadata` (policy rules may test it)."""
        signals = self._signals.signals(channel, metadata)
        escalation = recommend_escalation(signals, self.policy, self._rules)
        matched = self._categories.categories(self.categories, channel)
        topics = self._topics.topics()
        return ConversationSummary(
            messages=len(signals.analyses),
            customer_messages=len(signals.customer),
            sentiment=signals.sentiment,
            sentiment_trend=signals.trend,
            strongest_negative_emotion=signals.strongest_negative_emotion,
            highest_urgency=signals.highest_urgency,
            risk_cues=list(signals.risk_cues),
            categories=matched,
            timing=signals.timing,
            repeated_to_bot=list(signals.repeated_to_bot),
            tags=derive_tags(signals, escalation, categories=matched, topics=topics),
            escalation=escalation,
            insights=derive_insights(signals, escalation, self.policy.experience),
            topics=topics,
        )


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
    return ConversationSummarizer(policy, categories).extend(analyses, turns).summary(channel, metadata)
