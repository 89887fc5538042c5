"""Conversation signals: everything the escalation rules, tags and insights read, computed
once per summary from the message analyses and the turns (role, text, timestamp)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
# A customer asking about prices, plans or purchases: an advisory interaction (insights).
ADVISORY = re.compile(
    r"\b(pric(e|es|ing)|plan|upgrade|quote|recommend|which (one|plan|option)|buy|purchase|subscribe|discount|offer)\b",
    re.IGNORECASE,
)


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
    lowest_sentiment: float | None = None
    """The lowest customer turn's sentiment score (None without customer turns)."""
    peak_high_urgency: float = 0.0
    """The highest P(urgency >= high) of any customer turn."""
    advisory: bool = False
    """A customer turn asks about prices, plans or purchases (insights.ADVISORY)."""
    agent_replied: bool = False
    """Some agent turn exists."""


def urgency_at_least(message: MessageAnalysis, level: str) -> float:
    """P(urgency >= level) for one message (0 for a message without urgency: not the customer's)."""
    if message.urgency is None:
        return 0.0
    start = URGENCY_LABELS.index(level)
    return float(sum(message.urgency.probabilities.get(label, 0.0) for label in URGENCY_LABELS[start:]))


@dataclass
class SentimentSums:
    """Running sums over the customer's sentiment, so the mean and the least-squares slope
    cost the same for the 500th turn as for the 2nd."""

    count: int = 0
    probabilities: list[float] = field(default_factory=lambda: [0.0] * len(SENTIMENT_LABELS))
    scores: float = 0.0
    weighted: float = 0.0
    """Sum of position * score (positions 0, 1, 2, ...): the slope's cross term."""
    lowest: float | None = None

    def add(self, sentiment: SentimentResult) -> None:
        self.probabilities = [
            total + sentiment.probabilities[label] for total, label in zip(self.probabilities, SENTIMENT_LABELS)
        ]
        self.scores += sentiment.score
        self.weighted += self.count * sentiment.score
        self.lowest = sentiment.score if self.lowest is None else min(self.lowest, sentiment.score)
        self.count += 1

    def overall(self) -> SentimentResult | None:
        """Mean of the sentiment distributions (each turn weighs the same); None without turns."""
        if not self.count:
            return None
        distribution = {label: total / self.count for label, total in zip(SENTIMENT_LABELS, self.probabilities)}
        return SentimentResult(
            label=max(SENTIMENT_LABELS, key=lambda label: distribution[label]),  # first of equals, like argmax
            score=round(distribution["positive"] - distribution["negative"], 4),
            probabilities={label: round(p, 4) for label, p in distribution.items()},
        )

    def slope(self) -> float:
        """Least-squares slope of score over position (0 with fewer than two turns)."""
        n = self.count
        if n < 2:
            return 0.0
        sum_x, sum_xx = n * (n - 1) // 2, (n - 1) * n * (2 * n - 1) // 6
        return (n * self.weighted - sum_x * self.scores) / (n * sum_xx - sum_x * sum_x)


@dataclass
class SignalAccumulator:
    """The conversation signals, updated one message at a time: `add` does constant work
    per message (no pass over the earlier ones), and `signals` reads the running state.
    `compute_signals` folds a whole conversation through it, so both paths agree."""

    thresholds: Thresholds
    analyses: list[MessageAnalysis] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    customer: list[MessageAnalysis] = field(default_factory=list)
    sentiment: SentimentSums = field(default_factory=SentimentSums)
    drops: list[SentimentDrop] = field(default_factory=list)
    strongest_emotion: EmotionHighlight | None = None
    urgency: tuple[tuple[int, float], UrgencyHighlight] | None = None
    """(ranking key, highlight) of the most urgent customer turn so far."""
    peak_high_urgency: float = 0.0
    risk_cues: list[RiskCue] = field(default_factory=list)
    complaints: list[str] = field(default_factory=list)
    acknowledged: bool = False
    first_response: float | None = None
    longest_wait: tuple[float, str] | None = None
    waiting_since: Turn | None = None
    repeated: list[str] = field(default_factory=list)
    previous_customer: Turn | None = None
    bot_in_between: bool = False
    advisory: bool = False
    agent_replied: bool = False

    def __post_init__(self) -> None:
        self._apology = re.compile("|".join(self.thresholds.apology_patterns), re.IGNORECASE)

    def add(self, analysis: MessageAnalysis, turn: Turn) -> None:
        """Take in the conversation's next message (`turn` is the same message)."""
        self.analyses.append(analysis)
        self.turns.append(turn)
        if analysis.role == Role.customer:
            self._add_customer(analysis)
        self._add_timing(turn)
        self._add_repeat(turn)
        if turn.role == Role.customer and not self.advisory:
            self.advisory = bool(ADVISORY.search(turn.text))
        self.agent_replied = self.agent_replied or turn.role == Role.agent

    def _add_customer(self, message: MessageAnalysis) -> None:
        thresholds = self.thresholds
        if self.customer:
            before = self.customer[-1]
            if before.sentiment.score - message.sentiment.score >= thresholds.sharp_drop:
                change = round(message.sentiment.score - before.sentiment.score, 4)
                self.drops.append(SentimentDrop(from_message_id=before.id, to_message_id=message.id, change=change))
        self.customer.append(message)
        self.sentiment.add(message.sentiment)
        for emotion in message.emotions:
            if emotion.label in NEGATIVE_SUPPORT_EMOTIONS and emotion.score >= thresholds.negative_emotion_min_score:
                if self.strongest_emotion is None or emotion.score > self.strongest_emotion.score:
                    self.strongest_emotion = EmotionHighlight(
                        label=emotion.label, score=emotion.score, message_id=message.id
                    )
        urgency = message.urgency
        if urgency is not None:
            key = (URGENCY_LABELS.index(urgency.label), urgency.score)
            if self.urgency is None or key > self.urgency[0]:  # the first of equals stays
                self.urgency = key, UrgencyHighlight(label=urgency.label, score=urgency.score, message_id=message.id)
        self.peak_high_urgency = max(self.peak_high_urgency, urgency_at_least(message, "high"))
        self.risk_cues += [RiskCue(family=c.family, message_id=message.id, quote=c.quote) for c in message.cues]
        if message.complaint is not None and message.complaint.label == "yes":
            self.complaints.append(message.id)

    def _add_timing(self, turn: Turn) -> None:
        """First response and longest wait (customer turn -> next agent reply), where the
        turns carry timestamps; and whether an agent apologised or acknowledged."""
        if turn.role == Role.agent and not self.acknowledged:
            self.acknowledged = bool(self._apology.search(turn.text))
        if turn.role == Role.customer and self.waiting_since is None:
            self.waiting_since = turn
        elif turn.role == Role.agent and self.waiting_since is not None:
            waiting = self.waiting_since
            if turn.timestamp is not None and waiting.timestamp is not None:
                wait = (assume_utc(turn.timestamp) - assume_utc(waiting.timestamp)).total_seconds()
                if wait >= 0:
                    if self.first_response is None:
                        self.first_response = wait
                    if self.longest_wait is None or wait > self.longest_wait[0]:
                        self.longest_wait = (wait, waiting.id)
            self.waiting_since = None

    def _add_repeat(self, turn: Turn) -> None:
        """Customer turns that repeat the previous customer turn after a bot answered it
        (word-overlap coefficient, so "agent" repeated as "AGENT please" counts)."""
        if turn.role == Role.customer:
            previous = self.previous_customer
            if previous is not None and self.bot_in_between:
                if word_overlap(previous.text, turn.text) >= self.thresholds.repeat_similarity:
                    self.repeated.append(turn.id)
            self.previous_customer, self.bot_in_between = turn, False
        elif turn.role == Role.bot:
            self.bot_in_between = True
        elif turn.role == Role.agent:
            self.previous_customer = None  # a person answered: no longer a bot loop

    def trend(self) -> SentimentTrend:
        """Start, end, least-squares slope and sharp drops of the customer's sentiment."""
        customer = self.customer
        if len(customer) < 2:
            only = customer[0].sentiment.score if customer else None
            return SentimentTrend(label="unknown", first=only, last=only)
        first, last = customer[0].sentiment.score, customer[-1].sentiment.score
        change = round(last - first, 4)
        if change >= self.thresholds.trend_min_change:
            label = "improving"
        elif change <= -self.thresholds.trend_min_change:
            label = "worsening"
        else:
            label = "stable"
        return SentimentTrend(
            label=label,
            first=first,
            last=last,
            change=change,
            slope=round(self.sentiment.slope(), 4),
            sharp_drops=list(self.drops),
        )

    def signals(self, channel: Channel | None = None, metadata: Mapping[str, Any] | None = None) -> ConversationSignals:
        """The signals of the messages added so far (reads the state; changes nothing).
        Its lists are this accumulator's own: read them, do not change them."""
        longest = self.longest_wait
        return ConversationSignals(
            analyses=self.analyses,
            turns=self.turns,
            channel=channel,
            customer=self.customer,
            sentiment=self.sentiment.overall(),
            trend=self.trend(),
            strongest_negative_emotion=self.strongest_emotion,
            highest_urgency=self.urgency[1] if self.urgency else None,
            risk_cues=self.risk_cues,
            timing=TimingCues(
                first_response_seconds=self.first_response,
                longest_wait_seconds=longest[0] if longest else None,
                longest_wait_message_id=longest[1] if longest else None,
                agent_acknowledged=self.acknowledged,
            ),
            repeated_to_bot=self.repeated,
            complaints=self.complaints,
            metadata=dict(metadata or {}),
            lowest_sentiment=self.sentiment.lowest,
            peak_high_urgency=self.peak_high_urgency,
            advisory=self.advisory,
            agent_replied=self.agent_replied,
        )


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
    accumulator = SignalAccumulator(thresholds)
    for analysis, turn in zip(analyses, turns, strict=True):
        accumulator.add(analysis, turn)
    return accumulator.signals(channel, metadata)
