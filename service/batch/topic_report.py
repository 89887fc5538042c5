"""The trends page: one self-contained HTML file (inline SVG charts, no scripts, no
external files), so it opens anywhere, offline."""

from __future__ import annotations

from html import escape
from typing import Sequence

from nlp.topics.trends import TopicTrend, TopicTrends
from training.report import _STYLE, _table

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
CHART_TOPICS = len(PALETTE)  # more lines than colours stop being readable
SENTIMENT_TOPICS = 25


def volume_chart_svg(trends: TopicTrends, topics: Sequence[TopicTrend]) -> str:
    """Line chart: messages per period for each topic, with a legend."""
    width, height, left, right, top, bottom = 860, 320, 48, 230, 20, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([max(t.volume) for t in topics] + [1])
    n = len(trends.periods)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / peak

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="topic volume per {trends.period}" '
             'font-family="system-ui, sans-serif" font-size="11">']
    for k in range(5):  # horizontal grid with counts
        value = peak * k / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.0f}</text>')
    label_every = max(1, n // 10)
    for i, start in enumerate(trends.periods):
        if i % label_every == 0 or i == n - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle">{start.isoformat()}</text>')
    for colour, topic in zip(PALETTE, topics):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(topic.volume))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
                     f"<title>{escape(topic.name)}</title></polyline>")
        parts += [f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                  f"<title>{escape(topic.name)}, {trends.periods[i].isoformat()}: {v}</title></circle>"
                  for i, v in enumerate(topic.volume)]
    for row, (colour, topic) in enumerate(zip(PALETTE, topics)):
        ly = top + 8 + row * 18
        flag = " ▲" if topic.emerging else ""
        parts.append(f'<rect x="{width - right + 14}" y="{ly - 8}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{width - right + 32}" y="{ly + 2}">{escape(_short(topic.name))}{flag}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" class="axis">'
                 f"{trends.period} starting</text></svg>")
    return "".join(parts)


def sentiment_chart_svg(topics: Sequence[TopicTrend]) -> str:
    """Horizontal bars: average customer sentiment per topic, on [-1, 1] around zero."""
    rows = [t for t in topics if t.avg_sentiment is not None]
    bar, label_w, half = 18, 240, 260
    width, height = label_w + 2 * half + 60, 30 + bar * len(rows)
    zero = label_w + half
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="average sentiment per topic" '
             'font-family="system-ui, sans-serif" font-size="11">',
             f'<line x1="{zero}" x2="{zero}" y1="0" y2="{height - 20}" stroke="#555"/>',
             f'<text x="{label_w}" y="{height - 4}">-1 (negative)</text>',
             f'<text x="{zero + half}" y="{height - 4}" text-anchor="end">+1 (positive)</text>']
    for row, topic in enumerate(rows):
        value = topic.avg_sentiment or 0.0
        y = 4 + row * bar
        length = abs(value) * half
        x = zero if value >= 0 else zero - length
        colour = "#2ca02c" if value >= 0 else "#d62728"
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{escape(_short(topic.name))}</text>'
                     f'<rect x="{x:.1f}" y="{y + 2}" width="{length:.1f}" height="{bar - 5}" fill="{colour}">'
                     f"<title>{escape(topic.name)}: {value:+.3f} over {topic.messages} messages</title></rect>"
                     f'<text x="{(x + length + 4) if value >= 0 else (x - 4):.1f}" y="{y + 12}" '
                     f'text-anchor="{"start" if value >= 0 else "end"}">{value:+.2f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_trends_html(trends: TopicTrends, *, skipped: int = 0, problems: Sequence[str] = ()) -> str:
    """The whole page: summary, emerging topics, volume chart, sentiment chart, tables."""
    span = (f"{trends.periods[0].isoformat()} to {trends.periods[-1].isoformat()}" if trends.periods else "no data")
    charted = list(trends.topics[:CHART_TOPICS])
    charted += [t for t in trends.emerging if t not in charted][: max(0, CHART_TOPICS - len(charted))]
    emerging_rows = [[t.name, str(t.id), str(t.previous), str(t.current), _growth(t)] for t in trends.emerging]
    topic_rows = [[t.name, str(t.id), str(t.messages), f"{t.share:.1%}", _signed(t.avg_sentiment),
                   str(t.previous), str(t.current), _growth(t), "yes" if t.emerging else "",
                   *(str(sum(t.channels.get(c, []))) for c in trends.channels)]
                  for t in trends.topics]
    assigned = trends.messages - trends.unassigned
    body = [
        "<h1>Topic trends</h1>",
        f'<p>{trends.messages} customer messages, {span}, per {trends.period}; '
        f"{assigned} with a topic, {trends.unassigned} unassigned"
        + (f", {skipped} skipped" if skipped else "") + ".</p>",
        f'<p class="muted">Emerging: at least {trends.params.get("min_volume")} messages in the last '
        f'{trends.period} and growth of at least {trends.params.get("growth_threshold", 0):.0%} over the '
        f"{trends.period} before (or none then).</p>",
        "<section><h2>Emerging topics</h2>",
        _table(["topic", "id", "previous", "current", "growth"], emerging_rows) if emerging_rows
        else "<p>None this period.</p>",
        "</section>",
        f"<section><h2>Volume per {trends.period}</h2>",
        volume_chart_svg(trends, charted) if trends.periods and charted else "<p>No topics.</p>",
        "</section><section><h2>Average customer sentiment per topic</h2>",
        sentiment_chart_svg(trends.topics[:SENTIMENT_TOPICS]),
        "</section><section><h2>All topics</h2>",
        _table(["topic", "id", "messages", "share", "avg sentiment", "previous", "current", "growth", "emerging",
                *trends.channels], topic_rows),
        "</section>",
    ]
    if problems:
        body.append("<section><h2>Skipped input</h2><ul>" + "".join(f"<li>{escape(p)}</li>" for p in problems)
                    + "</ul></section>")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Topic trends</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>\n")


def _short(name: str, limit: int = 34) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.3f}"


def _growth(topic: TopicTrend) -> str:
    if topic.growth is None:
        return "new" if topic.current else "—"
    return f"{topic.growth:+.0%}"
