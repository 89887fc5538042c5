"""What the evaluation, policy-backtest and topic-trends pages share besides charts: their
style sheet, page frame and tables. Kept next to the charts so that neither report imports the other (training/ draws
its evaluation report with these; service/batch imports nothing from training/)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PAGE_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.92rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f3f5f7; }
td:first-child, th:first-child { text-align: left; }
tr.baseline td { color: #555; }
section { border-top: 2px solid #d0d7de; margin-top: 2rem; }
.cms { display: flex; flex-wrap: wrap; gap: 2rem; }
svg .axis { font-style: italic; fill: #555; }
.muted { color: #555; font-size: 0.9rem; }
code { background: #f3f5f7; padding: 0 0.2rem; }
"""


def table(header: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = ()) -> str:
    """An HTML table of text cells (escaped); `row_classes` gives rows a CSS class."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{row_classes[i]}"' if i < len(row_classes) and row_classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, body: Sequence[str]) -> str:
    """A whole page: the shared style sheet inline, `title` as its title and heading, then
    the `body` parts (HTML) one per line."""
    return (
        "\n".join(
            [
                "<!doctype html>",
                '<html lang="en"><head><meta charset="utf-8">',
                f"<title>{escape(title)}</title>",
                f"<style>{PAGE_STYLE}</style></head><body>",
                f"<h1>{escape(title)}</h1>",
                *body,
                "</body></html>",
            ]
        )
        + "\n"
    )
