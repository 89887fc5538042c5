"""Evaluation metrics: macro-F1 and per-class figures, confusion matrices and expected
calibration error, for multi-class and multi-label tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

ECE_BINS = 15


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence
    bins weighted by how many predictions fall in each."""
    confidence = np.asarray(confidence, dtype=np.float64).ravel()
    correct = np.asarray(correct, dtype=np.float64).ravel()
    if confidence.size == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.sum() * abs(confidence[in_bin].mean() - correct[in_bin].mean())
    return float(total / confidence.size)


def per_class_table(labels: Sequence[str], precision, recall, f1, support) -> dict[str, dict[str, float]]:
    return {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    }


def multiclass_metrics(y_true: np.ndarray, probabilities: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1, macro-recall, per-class P/R/F1, confusion matrix, ECE."""
    y_pred = probabilities.argmax(axis=1)
    indices = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=indices, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1.mean()),
        "macro_recall": float(recall.mean()),
        "per_class": per_class_table(labels, precision, recall, f1, support),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
        "ece": expected_calibration_error(probabilities.max(axis=1), y_pred == y_true),
    }


def multilabel_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, thresholds: Sequence[float], labels: Sequence[str]
) -> dict:
    """Macro- and micro-F1 over labels at the given thresholds, per-label figures, and ECE
    of every (example, label) probability against whether the label is present."""
    y_pred = (probabilities >= np.asarray(thresholds)).astype(np.int64)
    return multilabel_metrics_from_predictions(y_true, y_pred, labels, probabilities=probabilities)


def multilabel_metrics_from_predictions(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], probabilities: np.ndarray | None = None
) -> dict:
    y_true = np.asarray(y_true).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    _, _, micro_f1, _ = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    result = {
        "n": int(len(y_true)),
        "macro_f1": float(f1.mean()),
        "micro_f1": float(micro_f1),
        "per_class": per_class_table(labels, precision, recall, f1, support),
    }
    if probabilities is not None:
        result["ece"] = expected_calibration_error(probabilities, y_true)
    return result


def collapse_labels(
    matrix: np.ndarray, source_labels: Sequence[str], mapping: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """Map a 0/1 multi-label matrix onto a coarser taxonomy: a coarse label is present
    when any of its source labels is (GoEmotions' Ekman and sentiment-group mappings)."""
    index = {label: i for i, label in enumerate(source_labels)}
    return np.stack([matrix[:, [index[s] for s in sources]].max(axis=1) for sources in mapping.values()], axis=1)


THRESHOLD_GRID = np.round(np.arange(0.02, 0.96, 0.01), 2)
"""Thresholds `best_threshold` tries by default."""


def best_threshold(y_true: np.ndarray, probabilities: np.ndarray, grid: np.ndarray = THRESHOLD_GRID) -> float:
    """The threshold on `probabilities` that maximises F1 for one binary label."""
    y_true = y_true.astype(bool)
    positives = y_true.sum()
    if positives == 0:
        return 0.5
    predicted = probabilities[None, :] >= grid[:, None]  # (grid, n)
    tp = (predicted & y_true[None, :]).sum(axis=1)
    f1 = 2 * tp / np.maximum(predicted.sum(axis=1) + positives, 1)
    return float(grid[int(np.argmax(f1))])


def best_thresholds(y_true: np.ndarray, probabilities: np.ndarray) -> list[float]:
    """`best_threshold` for each label (column) of a multi-label set."""
    return [best_threshold(y_true[:, j], probabilities[:, j]) for j in range(y_true.shape[1])]


def precise_threshold(
    y_true: np.ndarray, probabilities: np.ndarray, min_precision: float, grid: np.ndarray = THRESHOLD_GRID
) -> float:
    """The lowest threshold (so the highest recall) whose precision on these rows reaches
    `min_precision`; where none does, the most precise one. For labels whose false
    positives cost more than misses (a risk cue that can escalate a conversation)."""
    y_true = y_true.astype(bool)
    predicted = probabilities[None, :] >= grid[:, None]  # (grid, n)
    counts = predicted.sum(axis=1)
    precision = (predicted & y_true[None, :]).sum(axis=1) / np.maximum(counts, 1)
    usable = (counts > 0) & (precision >= min_precision)
    if usable.any():
        return float(grid[int(np.argmax(usable))])
    if not (counts > 0).any():
        return float(grid[-1])
    return float(grid[int(np.argmax(np.where(counts > 0, precision, -1.0)))])


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation (ties averaged); None when either side is constant or
    there are fewer than three rows, where it is undefined."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def severity_figures(p_positive: np.ndarray, severity: np.ndarray) -> dict[str, float | int | None]:
    """How P(complaint) ranks X-CI's severity (0 no complaint ... 4 blame): Spearman over
    every row, which mostly restates complaint versus not, and over the complaints alone
    (severity 1-4), which asks whether a higher score also means a more severe complaint."""
    severity = np.asarray(severity)
    complaints = severity > 0
    return {
        "severity_spearman": spearman(p_positive, severity),
        "severity_spearman_complaints": spearman(p_positive[complaints], severity[complaints]),
        "severity_complaints_n": int(complaints.sum()),
    }
