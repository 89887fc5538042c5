"""Evaluation outputs: metrics.json, a self-contained HTML report (tables and inline-SVG
confusion matrices, no scripts or external files) and a plain-text summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Sequence

from training.evaluate import Evaluation, EvaluationResult
from training.metrics import ECE_BINS

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"
BASELINE_NAMES = {"vader": "VADER"}


@dataclass(frozen=True)
class SummaryRow:
    """One system's headline figures on one evaluation (None where not defined)."""

    system: str
    macro_f1: float | None
    macro_recall: float | None
    micro_f1: float | None
    accuracy: float | None
    ece: float | None


def summary_rows(evaluation: Evaluation) -> list[SummaryRow]:
    """The model row, then each baseline, then any derived (Ekman / group) rows."""

    def row(system: str, m: dict) -> SummaryRow:
        return SummaryRow(system, m.get("macro_f1"), m.get("macro_recall"), m.get("micro_f1"),
                          m.get("accuracy"), m.get("ece"))

    rows = [row("model", evaluation.metrics)]
    rows += [row(BASELINE_NAMES.get(name, name), m) for name, m in evaluation.baselines.items()]
    rows += [row(f"model, {name} (derived)", m) for name, m in evaluation.derived.items()]
    return rows


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


# --- text summary -------------------------------------------------------------------------


def render_summary(result: EvaluationResult) -> str:
    """A fixed-width table of every evaluation's headline figures, for the terminal."""
    header = ["data", "task", "split", "n", "system", "macro-F1", "macro-R", "micro-F1", "acc", "ECE"]
    table = [header]
    for evaluation in result.evaluations:
        for i, r in enumerate(summary_rows(evaluation)):
            first = [evaluation.source, evaluation.task, evaluation.split, str(evaluation.n)] if i == 0 else [""] * 4
            table.append(first + [r.system] + [_fmt(v).replace("—", "-") for v in
                                               (r.macro_f1, r.macro_recall, r.micro_f1, r.accuracy, r.ece)])
    widths = [max(len(line[c]) for line in table) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- SVG confusion matrix -----------------------------------------------------------------


def _blend(share: float) -> str:
    low, high = (247, 251, 255), (8, 48, 107)  # white to dark blue
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in zip(low, high))


def confusion_matrix_svg(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> str:
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
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" class="confusion" '
        'font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left + n * cell / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
        f'<text x="{left + n * cell / 2}" y="36" text-anchor="middle" class="axis">predicted</text>',
        f'<text x="14" y="{top + n * cell / 2}" text-anchor="middle" class="axis" '
        f'transform="rotate(-90 14 {top + n * cell / 2})">true</text>',
    ]
    for j, label in enumerate(labels):
        parts.append(f'<text x="{left + j * cell + cell / 2}" y="{top - 8}" text-anchor="middle">{escape(label)}</text>')
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
                f"<title>true {escape(label)}, predicted {escape(labels[j])}: {count} ({share:.0%} of the row)</title></rect>"
                f'<text x="{x + cell / 2}" y="{y + cell / 2}" text-anchor="middle" fill="{ink}" '
                f'font-weight="bold">{count}</text>'
                f'<text x="{x + cell / 2}" y="{y + cell / 2 + 15}" text-anchor="middle" fill="{ink}" '
                f'font-size="10">{share:.0%}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


# --- HTML report --------------------------------------------------------------------------

_STYLE = """
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


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{row_classes[i]}"' if i < len(row_classes) and row_classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _summary_table(evaluation: Evaluation) -> str:
    rows = summary_rows(evaluation)
    if evaluation.kind == "multiclass":
        header = ["system", "macro-F1", "macro-recall", "accuracy", "ECE"]
        cells = [[r.system, _fmt(r.macro_f1), _fmt(r.macro_recall), _fmt(r.accuracy), _fmt(r.ece)] for r in rows]
    else:
        header = ["system", "macro-F1", "micro-F1", "ECE"]
        cells = [[r.system, _fmt(r.macro_f1), _fmt(r.micro_f1), _fmt(r.ece)] for r in rows]
    return _table(header, cells, ["" if r.system == "model" else "baseline" for r in rows])


def _per_class_table(evaluation: Evaluation) -> str:
    systems = [("model", evaluation.metrics)] + [(BASELINE_NAMES.get(k, k), m) for k, m in evaluation.baselines.items()]
    header = ["label", "support"] + [f"{name} {figure}" for name, _ in systems for figure in ("P", "R", "F1")]
    rows = []
    for label in evaluation.labels:
        support = evaluation.metrics["per_class"][label]["support"]
        row = [label, str(support)]
        for _, metrics in systems:
            figures = metrics["per_class"][label]
            row += [_fmt(figures["precision"]), _fmt(figures["recall"]), _fmt(figures["f1"])]
        rows.append(row)
    return _table(header, rows)


def _derived_per_label_tables(evaluation: Evaluation) -> list[str]:
    """Per-label figures of each derived taxonomy (Ekman, groups, the customer-service
    emotions the API reports), read off the model's labels through their mappings."""
    parts = []
    for name, metrics in evaluation.derived.items():
        per_label = metrics.get("per_class", {})
        rows = [[label, str(f["support"]), _fmt(f["precision"]), _fmt(f["recall"]), _fmt(f["f1"])]
                for label, f in per_label.items()]
        parts += [f"<h3>Per label, {escape(name)} (derived)</h3>", _table(["label", "support", "P", "R", "F1"], rows)]
    return parts


def _section(evaluation: Evaluation) -> str:
    title = f"{evaluation.source}: {evaluation.task}"
    parts = [
        "<section>",
        f"<h2>{escape(title)}</h2>",
        f'<p class="muted">set <code>{escape(evaluation.set_name)}</code>, split {escape(evaluation.split)}, '
        f"{evaluation.n} examples, {escape(evaluation.kind)}</p>",
        _summary_table(evaluation),
        "<h3>Per class</h3>" if evaluation.kind == "multiclass" else "<h3>Per label</h3>",
        _per_class_table(evaluation),
        *_derived_per_label_tables(evaluation),
    ]
    if evaluation.kind == "multiclass":
        systems = [("model", evaluation.metrics)] + [(BASELINE_NAMES.get(k, k), m) for k, m in evaluation.baselines.items()]
        parts.append("<h3>Confusion matrices</h3>" if len(systems) > 1 else "<h3>Confusion matrix</h3>")
        parts.append('<div class="cms">' + "".join(
            confusion_matrix_svg(m["confusion_matrix"], evaluation.labels, f"{name}: {evaluation.task}")
            for name, m in systems) + "</div>")
    parts.append("</section>")
    return "\n".join(parts)


def render_report(result: EvaluationResult) -> str:
    """The whole evaluation as one self-contained HTML page."""
    title = f"convintel evaluation: {result.model_name} {result.model_version}"
    overview = _table(
        ["data", "task", "split", "n", "system", "macro-F1", "macro-recall", "accuracy", "ECE"],
        [[e.source if i == 0 else "", e.task if i == 0 else "", e.split if i == 0 else "", str(e.n) if i == 0 else "",
          r.system, _fmt(r.macro_f1), _fmt(r.macro_recall), _fmt(r.accuracy), _fmt(r.ece)]
         for e in result.evaluations for i, r in enumerate(summary_rows(e))],
        ["" if r.system == "model" else "baseline" for e in result.evaluations for r in summary_rows(e)],
    )
    notes = list(result.notes) + [
        f"Macro-F1 and macro-recall average the classes equally. ECE is the expected calibration error "
        f"over {ECE_BINS} equal-width confidence bins (multi-label: every example-label probability).",
        "Confusion-matrix cells are shaded by their share of the true-label row.",
    ]
    skipped = ""
    if result.skipped_rows:
        items = "".join(f"<li><code>{escape(p)}</code></li>" for p in result.skipped_rows)
        skipped = (f"<details><summary>{len(result.skipped_rows)} invalid rows skipped</summary>"
                   f"<ul>{items}</ul></details>")
    return "\n".join([
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="muted">bundle <code>{escape(result.model_path)}</code>, evaluated {escape(result.created)}</p>',
        "<h2>Summary</h2>",
        overview,
        skipped,
        "<ul>" + "".join(f"<li>{escape(note)}</li>" for note in notes) + "</ul>",
        *(_section(e) for e in result.evaluations),
        "</body></html>",
    ]) + "\n"


def write_outputs(result: EvaluationResult, out_dir: Path) -> tuple[Path, Path]:
    """Write metrics.json and report.html into `out_dir`; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path, report_path = out_dir / METRICS_FILE, out_dir / REPORT_FILE
    metrics_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    report_path.write_text(render_report(result), encoding="utf-8")
    return metrics_path, report_path
