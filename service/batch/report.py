"""The trend report over a scored archive (`convintel report`): one streaming pass builds
the figures (JSON-ready), and `render_html` draws them into one self-contained HTML file.

Figures: KPIs (escalation rate, share of negative conversations, first response and
resolution times when timestamps exist), sentiment over time by channel, escalation rate
over time, the emotion mix of customer messages, the urgency distribution, topic volumes and
trends (when the scored rows carry topics) and the top recurring issues with snippets."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape
from pathlib import Path
from statistics import fmean
from typing import Any

from nlp.timestamps import parse_timestamp
from nlp.vocabulary import SUPPORT_EMOTIONS, URGENCY_LABELS
from service.batch.charts import bar_chart, line_chart

# Durations are summarised from a fixed-size uniform sample, so memory stays flat on any
# archive; 10,000 values put the median within about 1% (in rank) of the exact one.
DURATION_SAMPLE = 10_000
EXAMPLES_PER_ISSUE = 3
ESCALATED_LEVELS = ("escalate", "urgent")
PERIODS = ("day", "week", "month")


class Reservoir:
    """A uniform sample of a stream (Algorithm R) with its exact count and mean."""

    def __init__(self, capacity: int = DURATION_SAMPLE, seed: int = 0) -> None:
        self.capacity = capacity
        self.values: list[float] = []
        self.count = 0
        self.total = 0.0
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if len(self.values) < self.capacity:
            self.values.append(value)
        else:
            slot = self._rng.randrange(self.count)
            if slot < self.capacity:
                self.values[slot] = value

    def summary(self) -> dict[str, float | int] | None:
        if not self.count:
            return None
        ordered = sorted(self.values)

        def quantile(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return {
            "n": self.count,
            "mean": round(self.total / self.count, 1),
            "median": round(quantile(0.5), 1),
            "p90": round(quantile(0.9), 1),
        }


@dataclass
class _Day:
    conversations: int = 0
    escalated: int = 0
    negative: int = 0
    sentiment: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    topics: Counter = field(default_factory=Counter)


@dataclass
class _Issue:
    kind: str
    name: str
    conversations: int = 0
    examples: list[dict[str, str | None]] = field(default_factory=list)


def record_topics(record: dict[str, Any]) -> list[str]:
    """Topic labels of a scored conversation, if the scoring run assigned any: read from
    `conversation.topics` (or the record's `topics`, or the customer messages' topics); each
    entry may be a label or an object with `label`, `name` or `id`."""
    raw = record.get("conversation", {}).get("topics") or record.get("topics")
    if not raw:
        raw = [t for m in record.get("messages", []) if m.get("role") == "customer" for t in (m.get("topics") or [])]
    labels: list[str] = []
    for entry in raw or []:
        if isinstance(entry, dict):
            label = entry.get("label") or entry.get("name") or entry.get("topic") or entry.get("id")
        else:
            label = entry
        if label is not None and str(label) not in labels and str(label) not in {"-1", "outlier", "unassigned"}:
            labels.append(str(label))
    return labels


class ReportBuilder:
    """Accumulates the report's figures over scored records, one at a time."""

    def __init__(self) -> None:
        self.conversations = 0
        self.messages = 0
        self.escalated = 0
        self.negative = 0
        self.resolved = 0
        self.undated = 0
        self.days: dict[date, _Day] = defaultdict(_Day)
        self.emotions: Counter = Counter()
        self.urgency: Counter = Counter()
        self.channels: Counter = Counter()
        self.first_response = Reservoir(seed=1)
        self.resolution = Reservoir(seed=2)
        self.issues: dict[tuple[str, str], _Issue] = {}
        self.topic_totals: Counter = Counter()

    def add(self, record: dict[str, Any]) -> None:
        conversation = record["conversation"]
        self.conversations += 1
        self.messages += len(record.get("messages", []))
        self.channels[record["channel"]] += 1
        escalated = conversation["escalation"]["level"] in ESCALATED_LEVELS
        sentiment = conversation.get("sentiment")
        negative = bool(sentiment) and sentiment["label"] == "negative"
        self.escalated += escalated
        self.negative += negative
        for message in record.get("messages", []):
            if message.get("role") == "customer":
                self.emotions.update(e["label"] for e in message.get("emotions", []))
        urgency = conversation.get("highest_urgency")
        self.urgency[urgency["label"] if urgency else "no customer turn"] += 1
        timing = conversation.get("timing") or {}
        if timing.get("first_response_seconds") is not None:
            self.first_response.add(float(timing["first_response_seconds"]))
        started, ended = parse_timestamp(record.get("started_at")), parse_timestamp(record.get("ended_at"))
        resolution = ((conversation.get("insights") or {}).get("resolution") or {}).get("label")
        if resolution == "resolved":
            self.resolved += 1
            if started and ended:
                self.resolution.add((ended - started).total_seconds())
        topics = record_topics(record)
        self.topic_totals.update(topics)
        if started is None:
            self.undated += 1
        else:
            day = self.days[started.date()]
            day.conversations += 1
            day.escalated += escalated
            day.negative += negative
            if sentiment:
                day.sentiment[record["channel"]].append(sentiment["score"])
            day.topics.update(topics)
        self._add_issues(record, topics)

    def _add_issues(self, record: dict[str, Any], topics: list[str]) -> None:
        conversation = record["conversation"]
        cid = record.get("conversation_id")
        found: dict[tuple[str, str], list[str]] = defaultdict(list)
        for cue in conversation.get("risk_cues", []):
            found[("risk cue", cue["family"])].append(cue.get("quote") or "")
        for reason in conversation["escalation"].get("reasons", []):
            quotes = [e.get("quote") for e in reason.get("evidence", []) if e.get("quote")]
            found[("escalation rule", reason["rule"])].extend(quotes)
        for topic in topics:
            found.setdefault(("topic", topic), [])
        for key, quotes in found.items():
            issue = self.issues.setdefault(key, _Issue(*key))
            issue.conversations += 1
            if len(issue.examples) < EXAMPLES_PER_ISSUE:
                quote = next((q for q in quotes if q and all(q != e["quote"] for e in issue.examples)), None)
                if quote or not quotes:
                    issue.examples.append({"conversation_id": cid, "quote": quote})

    # --- figures ------------------------------------------------------------------------

    def figures(self, period: str = "auto", top_issues: int = 10, top_topics: int = 8) -> dict[str, Any]:
        """Every figure of the report, JSON-ready."""
        days = sorted(self.days)
        if period == "auto":
            span = (days[-1] - days[0]).days if days else 0
            period = "day" if span <= 45 else "week" if span <= 366 else "month"
        buckets: dict[str, list[_Day]] = defaultdict(list)
        for day in days:
            buckets[_period_key(day, period)].append(self.days[day])
        keys = sorted(buckets)
        channels = [c for c, _ in self.channels.most_common()]

        def share(part: int, whole: int) -> float | None:
            return round(part / whole, 4) if whole else None

        sentiment_by_channel: dict[str, list[float | None]] = {}
        for channel in channels:
            values = [[v for d in buckets[k] for v in d.sentiment.get(channel, [])] for k in keys]
            if any(values):
                sentiment_by_channel[channel] = [round(fmean(v), 4) if v else None for v in values]
        conversations_per_period = [sum(d.conversations for d in buckets[k]) for k in keys]
        escalation_rate = [
            share(sum(d.escalated for d in buckets[k]), n) for k, n in zip(keys, conversations_per_period)
        ]
        figures: dict[str, Any] = {
            "conversations": self.conversations,
            "messages": self.messages,
            "channels": dict(self.channels.most_common()),
            "period": period,
            "span": {"from": days[0].isoformat(), "to": days[-1].isoformat()} if days else None,
            "undated_conversations": self.undated,
            "kpis": {
                "escalation_rate": share(self.escalated, self.conversations),
                "negative_share": share(self.negative, self.conversations),
                "resolved_share": share(self.resolved, self.conversations),
                "first_response_seconds": self.first_response.summary(),
                "resolution_seconds": self.resolution.summary(),
            },
            "sentiment_over_time": {"periods": keys, "by_channel": sentiment_by_channel},
            "escalation_over_time": {
                "periods": keys,
                "rate": escalation_rate,
                "conversations": conversations_per_period,
            },
            "emotion_mix": {label: self.emotions[label] for label in SUPPORT_EMOTIONS if self.emotions[label]},
            "urgency_distribution": {
                label: self.urgency[label] for label in (*URGENCY_LABELS, "no customer turn") if self.urgency[label]
            },
            "topics": self._topic_figures(keys, buckets, top_topics),
            "recurring_issues": [
                {
                    "kind": i.kind,
                    "issue": i.name,
                    "conversations": i.conversations,
                    "share": share(i.conversations, self.conversations),
                    "examples": i.examples,
                }
                for i in sorted(self.issues.values(), key=lambda i: (-i.conversations, i.kind, i.name))[:top_issues]
            ],
        }
        return figures

    def _topic_figures(self, keys: list[str], buckets: dict[str, list[_Day]], top: int) -> dict[str, Any] | None:
        if not self.topic_totals:
            return None
        names = [t for t, _ in self.topic_totals.most_common(top)]
        volumes = {t: [sum(d.topics[t] for d in buckets[k]) for k in keys] for t in names}
        trends = []
        for topic, series in volumes.items():
            last, previous = (series[-1], series[-2]) if len(series) >= 2 else (series[-1] if series else 0, 0)
            growth = round((last - previous) / previous, 4) if previous else None
            trends.append(
                {
                    "topic": topic,
                    "total": self.topic_totals[topic],
                    "last_period": last,
                    "previous_period": previous,
                    "growth": growth,
                    "emerging": previous == 0 and last > 0 or (growth is not None and growth >= 0.5),
                }
            )
        return {"periods": keys, "volumes": volumes, "trends": trends}


def _period_key(day: date, period: str) -> str:
    if period == "day":
        return day.isoformat()
    if period == "week":
        return (day - timedelta(days=day.weekday())).isoformat()  # the week's Monday
    return day.strftime("%Y-%m")


def build_figures(records: Iterable[dict[str, Any]], period: str = "auto", top_issues: int = 10) -> dict[str, Any]:
    """The report's figures from scored records, in one pass."""
    builder = ReportBuilder()
    for record in records:
        builder.add(record)
    return builder.figures(period=period, top_issues=top_issues)


# --- HTML -------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:960px;color:#222}
h1{margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
.kpis{display:flex;flex-wrap:wrap;gap:.8rem}
.kpi{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem;min-width:9rem}
.kpi b{display:block;font-size:1.5rem}.muted{color:#777}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #eee;padding:.3rem .5rem;text-align:left;vertical-align:top}q{color:#444}
"""


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _duration(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "—"
    minutes = summary["median"] / 60
    return f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def render_html(figures: dict[str, Any], title: str) -> str:
    """One self-contained page: inline CSS and SVG, no scripts, no external files."""
    kpis = figures["kpis"]
    cards = [
        ("conversations", f"{figures['conversations']:,}"),
        ("messages", f"{figures['messages']:,}"),
        ("escalation rate", _pct(kpis["escalation_rate"])),
        ("negative conversations", _pct(kpis["negative_share"])),
        ("resolved", _pct(kpis["resolved_share"])),
        ("first response (median)", _duration(kpis["first_response_seconds"])),
        ("resolution time (median)", _duration(kpis["resolution_seconds"])),
    ]
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
    ]
    span = figures["span"]
    parts.append(
        f"<p class='muted'>{figures['conversations']:,} conversations"
        + (f" from {span['from']} to {span['to']}, by {figures['period']}" if span else "")
        + (
            f"; {figures['undated_conversations']:,} without timestamps are left out of the time series"
            if figures["undated_conversations"]
            else ""
        )
        + ".</p>"
    )
    parts.append(
        "<div class='kpis'>"
        + "".join(f"<div class='kpi'><span class='muted'>{escape(k)}</span><b>{v}</b></div>" for k, v in cards)
        + "</div>"
    )
    sentiment = figures["sentiment_over_time"]
    parts.append("<h2>Customer sentiment over time, by channel</h2>")
    parts.append(
        line_chart(
            sentiment["by_channel"],
            sentiment["periods"],
            y_min=-1,
            y_max=1,
            y_format="{:+.1f}",
            title="Mean customer sentiment (-1 to 1)",
        )
        if sentiment["by_channel"]
        else "<p class='muted'>No timestamps: no time series.</p>"
    )
    escalation = figures["escalation_over_time"]
    parts.append("<h2>Escalation rate over time</h2>")
    parts.append(
        line_chart(
            {"escalate or urgent": escalation["rate"]},
            escalation["periods"],
            y_min=0,
            y_max=1,
            y_format="{:.0%}",
            title="Share of conversations escalated",
        )
        if escalation["periods"]
        else "<p class='muted'>No timestamps: no time series.</p>"
    )
    parts.append("<h2>Emotion mix (customer messages)</h2>")
    parts.append(bar_chart(figures["emotion_mix"], title="Customer messages showing each emotion"))
    parts.append("<h2>Urgency (highest customer urgency per conversation)</h2>")
    parts.append(bar_chart(figures["urgency_distribution"], title="Conversations by highest urgency"))
    parts.append("<h2>Topics</h2>")
    topics = figures["topics"]
    if topics is None:
        parts.append(
            "<p class='muted'>The scored rows carry no topics (score with a topic model configured to see "
            "topic volumes and trends).</p>"
        )
    else:
        parts.append(
            line_chart(
                {k: [float(v) for v in vs] for k, vs in topics["volumes"].items()},
                topics["periods"],
                y_min=0,
                y_max=max([max(v, default=0) for v in topics["volumes"].values()] + [1]),
                y_format="{:.0f}",
                title="Conversations per topic",
            )
        )
        rows = "".join(
            f"<tr><td>{escape(t['topic'])}</td><td>{t['total']:,}</td><td>{t['last_period']:,}</td>"
            f"<td>{t['previous_period']:,}</td><td>{_pct(t['growth'])}</td>"
            f"<td>{'emerging' if t['emerging'] else ''}</td></tr>"
            for t in topics["trends"]
        )
        parts.append(
            "<table><tr><th>topic</th><th>total</th><th>last period</th><th>previous</th><th>growth</th>"
            f"<th></th></tr>{rows}</table>"
        )
    parts.append("<h2>Top recurring issues</h2>")
    if figures["recurring_issues"]:
        rows = []
        for issue in figures["recurring_issues"]:
            examples = "<br>".join(
                f"<q>{escape(e['quote'])}</q> <span class='muted'>({escape(e['conversation_id'] or '')})</span>"
                if e["quote"]
                else f"<span class='muted'>{escape(e['conversation_id'] or '')}</span>"
                for e in issue["examples"]
            )
            rows.append(
                f"<tr><td>{escape(issue['kind'])}</td><td>{escape(issue['issue'])}</td>"
                f"<td>{issue['conversations']:,} ({_pct(issue['share'])})</td><td>{examples}</td></tr>"
            )
        parts.append(
            "<table><tr><th>kind</th><th>issue</th><th>conversations</th><th>examples (redacted)</th></tr>"
            + "".join(rows)
            + "</table>"
        )
    else:
        parts.append("<p class='muted'>No risk cues, escalation rules or topics in these conversations.</p>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(figures: dict[str, Any], output: Path, title: str) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_html(figures, title), encoding="utf-8")
