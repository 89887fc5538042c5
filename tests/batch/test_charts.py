"""The one chart module every HTML report draws with (service/batch/charts.py)."""

from __future__ import annotations

import re

from service.batch.charts import FONT, PALETTE, bar_chart, confusion_matrix, diverging_bar_chart, line_chart


def charts() -> list[str]:
    return [
        line_chart(
            {"chat": [0.1, None, -0.2], "<email>": [0.3, 0.2, 0.1]},
            ["a", "b", "c"],
            y_min=-1,
            y_max=1,
            title="Sentiment & time",
        ),
        bar_chart({"anger": 3, "joy": 1}, title="Emotions"),
        diverging_bar_chart({"refunds": 0.4, "logins": -0.6}, title="Sentiment per topic"),
        confusion_matrix([[3, 1], [0, 2]], ["neg", "pos"], title="model: sentiment"),
    ]


def test_every_chart_kind_is_self_contained_svg_in_one_frame():
    for svg in charts():
        assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" ') and svg.endswith("</svg>")
        assert f'font-family="{FONT}"' in svg and 'role="img"' in svg and "<title>" in svg
        assert "<script" not in svg and "href" not in svg
    line, bars, diverging, matrix = charts()
    assert "Sentiment &amp; time" in line and "&lt;email&gt;" in line and "<email>" not in line
    assert PALETTE[0] in line and PALETTE[1] in bars
    assert diverging.count("<rect") == 2 and "+0.40" in diverging and "-0.60" in diverging
    assert re.findall(r'font-weight="bold">(\d+)</text>', matrix) == ["3", "1", "0", "2"]


def test_line_chart_tooltips_long_labels_and_spaced_x_labels():
    name = "a topic name far longer than any legend has room for"
    svg = line_chart(
        {name: [float(i % 5) for i in range(60)]},
        [f"2026-01-{i:02d}" for i in range(60)],
        y_min=0,
        y_max=4,
        y_format="{:.0f}",
        title="Volume",
        x_title="day starting",
        tooltips=True,
    )
    assert svg.count("<circle") == 60 and "<title>" + name + ", 2026-01-07: 2</title>" in svg
    assert "a topic name far longer than any …" in svg and "day starting" in svg
    x_labels = re.findall(r'text-anchor="middle" font-size="11">2026-01-(\d+)</text>', svg)
    assert 3 <= len(x_labels) <= 8  # spaced so that they do not overlap
