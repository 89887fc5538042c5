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
    parent: int | None = None
    """Parent topic id, when the analysis carries one."""
    parent_name: str = ""


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
    parent: int | None = None
    parent_name: str = ""


@dataclass
class ParentTrend:
    """One parent topic over the whole range: its child topics' messages added up."""

    id: int
    name: str
    messages: int
    share: float
    volume: list[int]
    topics: list[int]
    """Child topic ids, busiest first."""


@dataclass
class TopicTrends:
    period: Period
    periods: list[date]
    messages: int
    unassigned: int
    channels: list[str]
    topics: list[TopicTrend] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    parents: list[ParentTrend] = field(default_factory=list)

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
    parents: dict[int, tuple[int | None, str]] = {}
    volume: dict[int, list[int]] = defaultdict(lambda: [0] * len(periods))
    channels: dict[int, dict[str, list[int]]] = defaultdict(dict)
    sentiments: dict[int, list[float]] = defaultdict(list)
    for mention, start in assigned:
        names[mention.topic_id] = mention.topic
        parents[mention.topic_id] = (mention.parent, mention.parent_name)
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
                parent=parents[topic_id][0],
                parent_name=parents[topic_id][1],
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
        parents=parent_trends(topics, len(assigned)),
    )


def parent_trends(topics: list[TopicTrend], assigned: int) -> list[ParentTrend]:
    """Topics added up by parent topic (topics without a parent are left out), busiest first."""
    grouped: dict[int, list[TopicTrend]] = defaultdict(list)
    for topic in topics:
        if topic.parent is not None:
            grouped[topic.parent].append(topic)
    parents = [
        ParentTrend(
            id=parent_id,
            name=children[0].parent_name,
            messages=sum(t.messages for t in children),
            share=round(sum(t.messages for t in children) / assigned, 4) if assigned else 0.0,
            volume=[sum(column) for column in zip(*(t.volume for t in children))],
            topics=[t.id for t in children],
        )
        for parent_id, children in grouped.items()
    ]
    return sorted(parents, key=lambda p: (-p.messages, p.id))
