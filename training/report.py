"""Evaluation outputs: metrics.json, a self-contained HTML report (tables and inline-SVG
confusion matrices, no scripts or external files) and a plain-text summary. The charts and
the page style are the ones every report uses (`service/batch/charts.py`, `pages.py`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path

from service.batch.charts import confusion_matrix
from service.batch.pages import page, table
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
        return SummaryRow(
            system, m.get("macro_f1"), m.get("macro_recall"), m.get("micro_f1"), m.get("accuracy"), m.get("ece")
        )

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
    grid = [header]
    for evaluation in result.evaluations:
        for i, r in enumerate(summary_rows(evaluation)):
            first = [evaluation.source, evaluation.task, evaluation.split, str(evaluation.n)] if i == 0 else [""] * 4
            grid.append(
                first
                + [r.system]
                + [_fmt(v).replace("—", "-") for v in (r.macro_f1, r.macro_recall, r.micro_f1, r.accuracy, r.ece)]
            )
    widths = [max(len(line[c]) for line in grid) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in grid]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --- HTML report --------------------------------------------------------------------------


def _summary_table(evaluation: Evaluation) -> str:
    rows = summary_rows(evaluation)
    if evaluation.kind == "multiclass":
        header = ["system", "macro-F1", "macro-recall", "accuracy", "ECE"]
        cells = [[r.system, _fmt(r.macro_f1), _fmt(r.macro_recall), _fmt(r.accuracy), _fmt(r.ece)] for r in rows]
    else:
        header = ["system", "macro-F1", "micro-F1", "ECE"]
        cells = [[r.system, _fmt(r.macro_f1), _fmt(r.micro_f1), _fmt(r.ece)] for r in rows]
    return table(header, cells, ["" if r.system == "model" else "baseline" for r in rows])


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
    return table(header, rows)


def _derived_per_label_tables(evaluation: Evaluation) -> list[str]:
    """Per-label figures of each derived taxonomy (Ekman, groups, the customer-service
    emotions the API reports), read off the model's labels through their mappings."""
    parts = []
    for name, metrics in evaluation.derived.items():
        per_label = metrics.get("per_class", {})
        rows = [
            [label, str(f["support"]), _fmt(f["precision"]), _fmt(f["recall"]), _fmt(f["f1"])]
            for label, f in per_label.items()
        ]
        parts += [f"<h3>Per label, {escape(name)} (derived)</h3>", table(["label", "support", "P", "R", "F1"], rows)]
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
        systems = [("model", evaluation.metrics)] + [
            (BASELINE_NAMES.get(k, k), m) for k, m in evaluation.baselines.items()
        ]
        parts.append("<h3>Confusion matrices</h3>" if len(systems) > 1 else "<h3>Confusion matrix</h3>")
        parts.append(
            '<div class="cms">'
            + "".join(
                confusion_matrix(m["confusion_matrix"], evaluation.labels, title=f"{name}: {evaluation.task}")
                for name, m in systems
            )
            + "</div>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def render_report(result: EvaluationResult) -> str:
    """The whole evaluation as one self-contained HTML page."""
    title = f"convintel evaluation: {result.model_name} {result.model_version}"
    overview = table(
        ["data", "task", "split", "n", "system", "macro-F1", "macro-recall", "accuracy", "ECE"],
        [
            [
                e.source if i == 0 else "",
                e.task if i == 0 else "",
                e.split if i == 0 else "",
                str(e.n) if i == 0 else "",
                r.system,
                _fmt(r.macro_f1),
                _fmt(r.macro_recall),
                _fmt(r.accuracy),
                _fmt(r.ece),
            ]
            for e in result.evaluations
            for i, r in enumerate(summary_rows(e))
        ],
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
        skipped = (
            f"<details><summary>{len(result.skipped_rows)} invalid rows skipped</summary><ul>{items}</ul></details>"
        )
    return page(
        title,
        [
            f'<p class="muted">bundle <code>{escape(result.model_path)}</code>, evaluated {escape(result.created)}</p>',
            "<h2>Summary</h2>",
            overview,
            skipped,
            "<ul>" + "".join(f"<li>{escape(note)}</li>" for note in notes) + "</ul>",
            *(_section(e) for e in result.evaluations),
        ],
    )


def write_outputs(result: EvaluationResult, out_dir: Path) -> tuple[Path, Path]:
    """Write metrics.json and report.html into `out_dir`; returns both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path, report_path = out_dir / METRICS_FILE, out_dir / REPORT_FILE
    metrics_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    report_path.write_text(render_report(result), encoding="utf-8")
    return metrics_path, report_path
