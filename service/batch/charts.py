"""Inline SVG charts for every HTML report: the archive trend report (`convintel report`),
the topic trends page (`convintel topics trends`) and the evaluation report
(`convintel evaluate`, which imports this module from training/). Plain strings, no
scripts, no external files, so each report is one self-contained HTML file that opens
offline. Charts share one palette, font and frame, whichever report draws them.

Chart kinds: `line_chart` (series over periods), `bar_chart` (counts per label),
`diverging_bar_chart` (a signed score per label, around zero) and `confusion_matrix`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

# A colour-blind-friendly palette (Okabe-Ito), cycled over series.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
POSITIVE, NEGATIVE = "#009E73", "#D55E00"
FONT = "system-ui, sans-serif"
LABEL_CHARS = 34
"""Longer labels are cut with an ellipsis (the full label is in the tooltip)."""
_WIDTH, _HEIGHT = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 150, 16, 40


def short_label(label: str, limit: int = LABEL_CHARS) -> str:
    """`label`, cut to `limit` characters with an ellipsis."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def line_chart(
    series: Mapping[str, Sequence[float | None]],
    x_labels: Sequence[str],
    *,
    y_min: float,
    y_max: float,
    y_format: str = "{:.1f}",
    title: str,
    x_title: str | None = None,
    tooltips: bool = False,
) -> str:
    """One line per series over shared x labels; None leaves a gap. Legend on the right
    (as wide as the longest label needs). `x_title` names the x axis; `tooltips` marks
    every point with a circle whose tooltip gives the series, x label and value."""
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    legend_w = max(_RIGHT, 6 * max((len(short_label(name)) for name in series), default=0) + 40)
    n = max(len(x_labels), 1)
    span = (y_max - y_min) or 1.0

    def x(i: int) -> float:
        return _LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return _TOP + plot_h * (1 - (v - y_min) / span)

    parts = [_svg_open(title, _LEFT + plot_w + legend_w, _HEIGHT)]
    for k in range(5):  # horizontal grid with labels
        value = y_min + span * k / 4
        parts.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11">'
            f"{escape(y_format.format(value))}</text>"
        )
    # Every step-th x label, so that labels (about 6.5 px a character at 11 px) do not overlap.
    label_w = 6.5 * max((len(label) for label in x_labels), default=0) + 8
    step = max(1, math.ceil(label_w * (n - 1) / plot_w)) if n > 1 else 1
    for i in range(0, n, step):
        parts.append(
            f'<text x="{x(i):.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle" font-size="11">'
            f"{escape(x_labels[i])}</text>"
        )
    if x_title:
        parts.append(
            f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_HEIGHT - 6}" text-anchor="middle" class="axis" '
            f'font-size="11">{escape(x_title)}</text>'
        )
    for s, (name, values) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        end = f"><title>{escape(name)}</title></polyline>" if tooltips else "/>"
        runs: list[list[str]] = [[]]
        for i, value in enumerate(values):
            if value is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(value):.1f}")
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"{end}')
            elif len(run) == 1 and not tooltips:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
        if tooltips:
            parts += [
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"><title>{escape(name)}, '
                f"{escape(x_labels[i])}: {escape(y_format.format(v))}</title></circle>"
                for i, v in enumerate(values)
                if v is not None
            ]
        ly = _TOP + 14 + 18 * s
        label = short_label(name)
        full = f"<title>{escape(name)}</title>" if label != name else ""
        parts.append(
            f'<rect x="{_LEFT + plot_w + 14}" y="{ly - 9}" width="12" height="4" fill="{colour}"/>'
            f'<text x="{_LEFT + plot_w + 32}" y="{ly - 3}" font-size="12">{escape(label)}{full}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(values: Mapping[str, float], *, title: str, value_format: str = "{:.0f}") -> str:
    """Horizontal bars, one per label, in the given order."""
    row, label_w, bar_w = 24, 150, 440
    height = _TOP + row * max(len(values), 1) + 8
    top = max(values.values(), default=0) or 1
    parts = [_svg_open(title, _WIDTH, height)]
    for i, (label, value) in enumerate(values.items()):
        y = _TOP + i * row
        width = bar_w * value / top
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row - 8}" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 15}" font-size="12">'
            f"{escape(value_format.format(value))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def diverging_bar_chart(
    values: Mapping[str, float],
    *,
    title: str,
    limit: float = 1.0,
    low_label: str = "",
    high_label: str = "",
    value_format: str = "{:+.2f}",
    tooltips: Mapping[str, str] | None = None,
) -> str:
    """Horizontal bars from a zero line, one per label in the given order: positive values
    to the right (green), negative to the left (orange), on [-limit, limit]. `low_label`
    and `high_label` name the two ends; `tooltips` adds a tooltip per label."""
    row, label_w, right = 18, 240, 60
    half = (_WIDTH - label_w - right) / 2
    zero = label_w + half
    height = _TOP + row * len(values) + 24
    parts = [
        _svg_open(title, _WIDTH, height),
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{_TOP}" y2="{height - 20}" stroke="#555"/>',
        f'<text x="{label_w}" y="{height - 4}">{escape(low_label)}</text>',
        f'<text x="{zero + half:.1f}" y="{height - 4}" text-anchor="end">{escape(high_label)}</text>',
    ]
    for i, (label, value) in enumerate(values.items()):
        y = _TOP + i * row
        length = min(abs(value), limit) / limit * half
        x = zero if value >= 0 else zero - length
        tip = (tooltips or {}).get(label) or f"{label}: {value_format.format(value)}"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{escape(short_label(label))}</text>'
            f'<rect x="{x:.1f}" y="{y + 2}" width="{length:.1f}" height="{row - 5}" '
            f'fill="{POSITIVE if value >= 0 else NEGATIVE}"><title>{escape(tip)}</title></rect>'
            f'<text x="{(x + length + 4) if value >= 0 else (x - 4):.1f}" y="{y + 12}" '
            f'text-anchor="{"start" if value >= 0 else "end"}">{escape(value_format.format(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], *, title: str) -> str:
    """A heat-map of a confusion matrix: rows are true labels, columns predictions; each
    cell shows its count and its share of the row, and is shaded by that share (so a
    small class reads as clearly as a large one)."""
    n = len(labels)
    cell = 64
    label_width = max(7 * max(len(label) for label in labels), 40)
    left = 28 + label_width
    top = 62
    width = left + n * cell + 12
    height = top + n * cell + 12
    parts = [
        _svg_open(title, width, height, css_class="confusion", font_size=12),
        f'<text x="{left + n * cell / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
        f'<text x="{left + n * cell / 2}" y="36" text-anchor="middle" class="axis">predicted</text>',
        f'<text x="14" y="{top + n * cell / 2}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 14 {top + n * cell / 2})">true</text>',
    ]
    for j, label in enumerate(labels):
        parts.append(
            f'<text x="{left + j * cell + cell / 2}" y="{top - 8}" text-anchor="middle">{escape(label)}</text>'
        )
    for i, (label, row) in enumerate(zip(labels, matrix)):
        y = top + i * cell
        parts.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4}" text-anchor="end">{escape(label)}</text>')
        total = sum(row)
        for j, count in enumerate(row):
            share = count / total if total else 0.0
            x = left + j * cell
            ink = "#ffffff" if share > 0.5 else "#1a1a1a"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{_blend(share)}" stroke="#ffffff">'
                f"<title>true {escape(label)}, predicted {escape(labels[j])}: {count} ({share:.0%} of the row)"
                f"</title></rect>"
                f'<text x="{x + cell / 2}" y="{y + cell / 2}" text-anchor="middle" fill="{ink}" '
                f'font-weight="bold">{count}</text>'
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 15}" text-anchor="middle" fill="{ink}" '
                f'font-size="10">{share:.0%}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _blend(share: float) -> str:
    low, high = (247, 251, 255), (8, 48, 107)  # white to dark blue
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in zip(low, high))


def _svg_open(title: str, width: float, height: float, *, css_class: str = "chart", font_size: int = 11) -> str:
    # aria-label names the chart for screen readers; the <title> child is its tooltip.
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" role="img" aria-label="{escape(title)}" '
        f'width="{width:g}" height="{height:g}" viewBox="0 0 {width:g} {height:g}" font-family="{FONT}" '
        f'font-size="{font_size}"><title>{escape(title)}</title>'
    )
