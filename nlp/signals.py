"""Conversation signals: everything the escalation rules, tags and insights read, computed
once per summary from the message analyses and the turns (role, text, timestamp)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from spacy.lang.en.stop_words import STOP_WORDS

from nlp.policy import Thresholds
from nlp.schemas import (
    Channel,
    EmotionHighlight,
    MessageAnalysis,
    RiskCue,
    Role,
    SentimentDrop,
    SentimentResult,
    SentimentTrend,
    TimingCues,
    UrgencyHighlight,
)
from nlp.timestamps import assume_utc
from nlp.vocabulary import NEGATIVE_SUPPORT_EMOTIONS, SENTIMENT_LABELS, URGENCY_LABELS

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Turn:
    """A message as the summary needs it (text may be redacted: only word overlap and
    patterns are read from it)."""

    id: str
    role: Role
    text: str
    timestamp: datetime | None = None


@dataclass
class ConversationSignals:
    analyses: list[MessageAnalysis]
    turns: list[Turn]
    channel: Channel | None
    customer: list[MessageAnalysis]
    sentiment: SentimentResult | None
    trend: SentimentTrend
    strongest_negative_emotion: EmotionHighlight | None
    highest_urgency: UrgencyHighlight | None
    risk_cues: list[RiskCue] = field(default_factory=list)
    timing: TimingCues = field(default_factory=TimingCues)
    repeated_to_bot: list[str] = field(default_factory=list)
    complaints: list[str] = field(default_factory=list)
    """Customer messages the complaint head calls complaints (empty without that head)."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """The conversation's metadata (the helpdesk's fields, e.g. the customer's tier)."""


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


def sentiment_trend(customer: Sequence[MessageAnalysis], thresholds: Thresholds) -> SentimentTrend:
    """Start, end, least-squares slope and sharp drops of the customer's sentiment."""
    if len(customer) < 2:
        only = customer[0].sentiment.score if customer else None
        return SentimentTrend(label="unknown", first=only, last=only)
    scores = np.array([m.sentiment.score for m in customer])
    first, last = float(scores[0]), float(scores[-1])
    change = round(last - first, 4)
    slope = float(np.polyfit(np.arange(len(scores)), scores, 1)[0])
    if change >= thresholds.trend_min_change:
        label = "improving"
    elif change <= -thresholds.trend_min_change:
        label = "worsening"
    else:
        label = "stable"
    drops = [
        SentimentDrop(from_message_id=a.id, to_message_id=b.id, change=round(b.sentiment.score - a.sentiment.score, 4))
        for a, b in zip(customer, customer[1:])
        if a.sentiment.score - b.sentiment.score >= thresholds.sharp_drop
    ]
    return SentimentTrend(label=label, first=first, last=last, change=change, slope=round(slope, 4), sharp_drops=drops)


def strongest_negative_emotion(customer: Sequence[MessageAnalysis], thresholds: Thresholds) -> EmotionHighlight | None:
    best: EmotionHighlight | None = None
    for message in customer:
        for emotion in message.emotions:
            if emotion.label in NEGATIVE_SUPPORT_EMOTIONS and emotion.score >= thresholds.negative_emotion_min_score:
                if best is None or emotion.score > best.score:
                    best = EmotionHighlight(label=emotion.label, score=emotion.score, message_id=message.id)
    return best


def highest_urgency(customer: Sequence[MessageAnalysis]) -> UrgencyHighlight | None:
    """The customer's most urgent message (None when no message carries an urgency)."""
    rated = [(m, m.urgency) for m in customer if m.urgency is not None]
    if not rated:
        return None
    top, urgency = max(rated, key=lambda pair: (URGENCY_LABELS.index(pair[1].label), pair[1].score))
    return UrgencyHighlight(label=urgency.label, score=urgency.score, message_id=top.id)


def timing_cues(turns: Sequence[Turn], thresholds: Thresholds) -> TimingCues:
    """First response and longest wait (customer turn -> next agent reply), where the
    turns carry timestamps; and whether an agent apologised or acknowledged."""
    apology = re.compile("|".join(thresholds.apology_patterns), re.IGNORECASE)
    acknowledged = any(t.role == Role.agent and apology.search(t.text) for t in turns)
    first_response: float | None = None
    longest: tuple[float, str] | None = None
    waiting_since: Turn | None = None
    for turn in turns:
        if turn.role == Role.customer and waiting_since is None:
            waiting_since = turn
        elif turn.role == Role.agent and waiting_since is not None:
            if turn.timestamp is not None and waiting_since.timestamp is not None:
                wait = (assume_utc(turn.timestamp) - assume_utc(waiting_since.timestamp)).total_seconds()
                if wait >= 0:
                    if first_response is None:
                        first_response = wait
                    if longest is None or wait > longest[0]:
                        longest = (wait, waiting_since.id)
            waiting_since = None
    return TimingCues(
        first_response_seconds=first_response,
        longest_wait_seconds=longest[0] if longest else None,
        longest_wait_message_id=longest[1] if longest else None,
        agent_acknowledged=acknowledged,
    )


def repeated_to_bot(turns: Sequence[Turn], thresholds: Thresholds) -> list[str]:
    """Customer turns that repeat the previous customer turn after a bot answered it
    (word-overlap coefficient, so "agent" repeated as "AGENT please" counts)."""
    flagged: list[str] = []
    previous_customer: Turn | None = None
    bot_in_between = False
    for turn in turns:
        if turn.role == Role.customer:
            if previous_customer is not None and bot_in_between:
                if word_overlap(previous_customer.text, turn.text) >= thresholds.repeat_similarity:
                    flagged.append(turn.id)
            previous_customer, bot_in_between = turn, False
        elif turn.role == Role.bot:
            bot_in_between = True
        elif turn.role == Role.agent:
            previous_customer = None  # a person answered: no longer a bot loop
    return flagged


def content_words(text: str) -> set[str]:
    """Lower-cased words without English stop words ("I", "to", "please", ...); all words
    when nothing else is left, so a message of stop words still compares."""
    words = set(_WORD.findall(text.lower()))
    return (words - STOP_WORDS) or words


def word_overlap(a: str, b: str) -> float:
    """|A ∩ B| / min(|A|, |B|) over content-word sets."""
    words_a, words_b = content_words(a), content_words(b)
    if not words_a or not words_b:
        return 0.0
    return len(words_a & words_b) / min(len(words_a), len(words_b))


def compute_signals(
    analyses: Sequence[MessageAnalysis],
    turns: Sequence[Turn],
    thresholds: Thresholds,
    channel: Channel | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ConversationSignals:
    """All conversation signals; `turns` are in the same order as `analyses`."""
    customer = [m for m in analyses if m.role == Role.customer]
    return ConversationSignals(
        analyses=list(analyses),
        turns=list(turns),
        channel=channel,
        customer=customer,
        sentiment=overall_sentiment(customer),
        trend=sentiment_trend(customer, thresholds),
        strongest_negative_emotion=strongest_negative_emotion(customer, thresholds),
        highest_urgency=highest_urgency(customer),
        risk_cues=[RiskCue(family=c.family, message_id=m.id, quote=c.quote) for m in customer for c in m.cues],
        timing=timing_cues(turns, thresholds),
        repeated_to_bot=repeated_to_bot(turns, thresholds),
        complaints=[m.id for m in customer if m.complaint is not None and m.complaint.label == "yes"],
        metadata=dict(metadata or {}),
    )
