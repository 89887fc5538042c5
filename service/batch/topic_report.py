"""The trends page: one self-contained HTML file (inline SVG charts from
`service/batch/charts.py`, no scripts, no external files), so it opens anywhere, offline."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from nlp.topics.trends import TopicTrend, TopicTrends
from service.batch.charts import PALETTE, diverging_bar_chart, line_chart
from service.batch.pages import PAGE_STYLE, table

CHART_TOPICS = len(PALETTE)  # more lines than colours stop being readable
SENTIMENT_TOPICS = 25


def volume_chart(trends: TopicTrends, topics: Sequence[TopicTrend]) -> str:
    """Line chart: messages per period for each topic (emerging ones flagged ▲ in the legend)."""
    series: dict[str, list[float | None]] = {
        f"{name}{' ▲' if t.emerging else ''}": [float(v) for v in t.volume]
        for name, t in zip(_unique_names(topics), topics)
    }
    peak = max([max(t.volume) for t in topics] + [1])
    return line_chart(
        series,
        [p.isoformat() for p in trends.periods],
        y_min=0,
        y_max=peak,
        y_format="{:.0f}",
        title=f"Topic volume per {trends.period}",
        x_title=f"{trends.period} starting",
        tooltips=True,
    )


def sentiment_chart(topics: Sequence[TopicTrend]) -> str:
    """Bars around zero: average customer sentiment per topic, on [-1, 1]."""
    rows = [t for t in topics if t.avg_sentiment is not None]
    names = _unique_names(rows)
    return diverging_bar_chart(
        {name: t.avg_sentiment or 0.0 for name, t in zip(names, rows)},
        title="Average sentiment per topic",
        low_label="-1 (negative)",
        high_label="+1 (positive)",
        tooltips={name: f"{t.name}: {t.avg_sentiment:+.3f} over {t.messages} messages" for name, t in zip(names, rows)},
    )


def _unique_names(topics: Sequence[TopicTrend]) -> list[str]:
    # Charts key their series and bars by label; two topics may share a name.
    seen: set[str] = set()
    names = []
    for t in topics:
        names.append(t.name if t.name not in seen else f"{t.name} (#{t.id})")
        seen.add(t.name)
    return names


def render_trends_html(trends: TopicTrends, *, skipped: int = 0, problems: Sequence[str] = ()) -> str:
    """The whole page: summary, emerging topics, volume chart, sentiment chart, tables."""
    span = f"{trends.periods[0].isoformat()} to {trends.periods[-1].isoformat()}" if trends.periods else "no data"
    charted = list(trends.topics[:CHART_TOPICS])
    charted += [t for t in trends.emerging if t not in charted][: max(0, CHART_TOPICS - len(charted))]
    parent_rows = [
        [p.name, str(p.id), str(p.messages), f"{p.share:.1%}", ", ".join(_topic_names(trends, p.topics))]
        for p in trends.parents
    ]
    emerging_rows = [[t.name, str(t.id), str(t.previous), str(t.current), _growth(t)] for t in trends.emerging]
    topic_rows = [
        [
            t.name,
            str(t.id),
            t.parent_name or "—",
            str(t.messages),
            f"{t.share:.1%}",
            _signed(t.avg_sentiment),
            str(t.previous),
            str(t.current),
            _growth(t),
            "yes" if t.emerging else "",
            *(str(sum(t.channels.get(c, []))) for c in trends.channels),
        ]
        for t in trends.topics
    ]
    assigned = trends.messages - trends.unassigned
    body = [
        "<h1>Topic trends</h1>",
        f"<p>{trends.messages} customer messages, {span}, per {trends.period}; "
        f"{assigned} with a topic, {trends.unassigned} unassigned"
        + (f", {skipped} skipped" if skipped else "")
        + ".</p>",
        f'<p class="muted">Emerging: at least {trends.params.get("min_volume")} messages in the last '
        f"{trends.period} and growth of at least {trends.params.get('growth_threshold', 0):.0%} over the "
        f"{trends.period} before (or none then).</p>",
        "<section><h2>Emerging topics</h2>",
        table(["topic", "id", "previous", "current", "growth"], emerging_rows)
        if emerging_rows
        else "<p>None this period.</p>",
        "</section>",
        f"<section><h2>Volume per {trends.period}</h2>",
        volume_chart(trends, charted) if trends.periods and charted else "<p>No topics.</p>",
        "</section><section><h2>Average customer sentiment per topic</h2>",
        sentiment_chart(trends.topics[:SENTIMENT_TOPICS]),
        "</section><section><h2>Parent topics</h2>",
        table(["parent topic", "id", "messages", "share", "topics"], parent_rows)
        if parent_rows
        else "<p>The scored messages carry no parent topics (scored with an older topic model).</p>",
        "</section><section><h2>All topics</h2>",
        table(
            [
                "topic",
                "id",
                "parent",
                "messages",
                "share",
                "avg sentiment",
                "previous",
                "current",
                "growth",
                "emerging",
                *trends.channels,
            ],
            topic_rows,
        ),
        "</section>",
    ]
    if problems:
        body.append(
            "<section><h2>Skipped input</h2><ul>"
            + "".join(f"<li>{escape(p)}</li>" for p in problems)
            + "</ul></section>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Topic trends</title>'
        f"<style>{PAGE_STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _topic_names(trends: TopicTrends, ids: Sequence[int]) -> list[str]:
    names = {t.id: t.name for t in trends.topics}
    return [names.get(i, str(i)) for i in ids]


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.3f}"


def _growth(topic: TopicTrend) -> str:
    if topic.growth is None:
        return "new" if topic.current else "—"
    return f"{topic.growth:+.0%}"
