"""Inline SVG charts for the trend report: plain strings, no scripts, no external files,
so the report is one self-contained HTML file that opens offline."""

from __future__ import annotations

from html import escape
from typing import Mapping, Sequence

# A colour-blind-friendly palette (Okabe-Ito), cycled over series.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_WIDTH, _HEIGHT = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 150, 16, 40


def line_chart(series: Mapping[str, Sequence[float | None]], x_labels: Sequence[str], *,
               y_min: float, y_max: float, y_format: str = "{:.1f}", title: str) -> str:
    """One line per series over shared x labels; None leaves a gap. Legend on the right."""
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    n = max(len(x_labels), 1)
    span = (y_max - y_min) or 1.0

    def x(i: int) -> float:
        return _LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return _TOP + plot_h * (1 - (v - y_min) / span)

    parts = [_open(title)]
    for k in range(5):  # horizontal grid with labels
        value = y_min + span * k / 4
        parts.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11">'
                     f'{escape(y_format.format(value))}</text>')
    step = max(1, n // 8)
    for i in range(0, n, step):
        parts.append(f'<text x="{x(i):.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle" font-size="11">'
                     f'{escape(x_labels[i])}</text>')
    for s, (name, values) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for i, value in enumerate(values):
            if value is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(value):.1f}")
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
            elif len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
        ly = _TOP + 14 + 18 * s
        parts.append(f'<rect x="{_LEFT + plot_w + 14}" y="{ly - 9}" width="12" height="4" fill="{colour}"/>'
                     f'<text x="{_LEFT + plot_w + 32}" y="{ly - 3}" font-size="12">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(values: Mapping[str, float], *, title: str, value_format: str = "{:.0f}") -> str:
    """Horizontal bars, one per label, in the given order."""
    row, label_w, bar_w = 24, 150, 440
    height = _TOP + row * max(len(values), 1) + 8
    top = max(values.values(), default=0) or 1
    parts = [_open(title, height=height)]
    for i, (label, value) in enumerate(values.items()):
        y = _TOP + i * row
        width = bar_w * value / top
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">{escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{width:.1f}" height="{row - 8}" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"/>'
                     f'<text x="{label_w + width + 6:.1f}" y="{y + 15}" font-size="12">'
                     f'{escape(value_format.format(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str, height: int = _HEIGHT) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{_WIDTH}" height="{height}" '
            f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif"><title>{escape(title)}</title>')
