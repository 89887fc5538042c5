"""Topic trends over scored messages: volume per period (day or ISO week) and channel,
average customer sentiment per topic, and emerging topics (the last period against the
one before). Pure computation; reading files and rendering live in training/."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

Period = Literal["day", "week"]


@dataclass(frozen=True)
class TopicMention:
    """One customer message with its topic (id -1: unassigned) and sentiment score."""

    when: datetime
    channel: str
    topic_id: int
    topic: str
    sentiment: float | None


@dataclass
class TopicTrend:
    """One topic over the whole range."""

    id: int
    name: str
    messages: int
    share: float
    avg_sentiment: float | None
    volume: list[int]
    """Messages per period, aligned with `TopicTrends.periods`."""
    channels: dict[str, list[int]]
    """Messages per period on each channel (busiest channel first)."""
    current: int
    previous: int
    growth: float | None
    """(current - previous) / previous; None when the previous period had none."""
    emerging: bool


@dataclass
class TopicTrends:
    period: Period
    periods: list[date]
    messages: int
    unassigned: int
    channels: list[str]
    topics: list[TopicTrend] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    @property
    def emerging(self) -> list[TopicTrend]:
        return [t for t in self.topics if t.emerging]


def period_start(when: datetime, period: Period) -> date:
    """The day, or the Monday of the ISO week, that `when` falls in."""
    day = when.date()
    return day - timedelta(days=day.weekday()) if period == "week" else day


def compute_trends(
    mentions: Iterable[TopicMention], *, period: Period, min_volume: int, growth_threshold: float
) -> TopicTrends:
    """Aggregate mentions. A topic is emerging when the last period holds at least
    `min_volume` of its messages and it grew by at least `growth_threshold` (0.5 = +50%)
    over the period before, or had none then."""
    mentions = list(mentions)
    step = timedelta(days=7 if period == "week" else 1)
    starts = [period_start(m.when, period) for m in mentions]
    periods: list[date] = []
    if starts:
        cursor, last = min(starts), max(starts)
        while cursor <= last:  # every period in the range, empty ones included, so growth compares neighbours
            periods.append(cursor)
            cursor += step
    index = {p: i for i, p in enumerate(periods)}
    assigned = [(m, s) for m, s in zip(mentions, starts) if m.topic_id >= 0]
    names: dict[int, str] = {}
    volume: dict[int, list[int]] = defaultdict(lambda: [0] * len(periods))
    channels: dict[int, dict[str, list[int]]] = defaultdict(dict)
    sentiments: dict[int, list[float]] = defaultdict(list)
    for mention, start in assigned:
        names[mention.topic_id] = mention.topic
        volume[mention.topic_id][index[start]] += 1
        channels[mention.topic_id].setdefault(mention.channel, [0] * len(periods))[index[start]] += 1
        if mention.sentiment is not None and math.isfinite(mention.sentiment):
            sentiments[mention.topic_id].append(mention.sentiment)
    topics = []
    for topic_id, counts in volume.items():
        current = counts[-1]
        previous = counts[-2] if len(counts) > 1 else 0
        growth = (current - previous) / previous if previous else None
        emerging = len(counts) > 1 and current >= min_volume and (growth is None or growth >= growth_threshold)
        scores = sentiments[topic_id]
        topics.append(
            TopicTrend(
                id=topic_id,
                name=names[topic_id],
                messages=sum(counts),
                share=round(sum(counts) / len(assigned), 4),
                avg_sentiment=round(sum(scores) / len(scores), 4) if scores else None,
                volume=counts,
                channels=dict(sorted(channels[topic_id].items(), key=lambda item: -sum(item[1]))),
                current=current,
                previous=previous,
                growth=round(growth, 4) if growth is not None else None,
                emerging=emerging,
            )
        )
    topics.sort(key=lambda t: (-t.messages, t.id))
    return TopicTrends(
        period=period,
        periods=periods,
        messages=len(mentions),
        unassigned=len(mentions) - len(assigned),
        channels=sorted({m.channel for m, _ in assigned}),
        topics=topics,
        params={"min_volume": min_volume, "growth_threshold": growth_threshold},
    )
