"""Metric code checked against hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    best_threshold,
    collapse_labels,
    expected_calibration_error,
    multiclass_metrics,
    multilabel_metrics,
    precise_threshold,
)


def test_multiclass_metrics_by_hand():
    # truth:     a a a b b c ; predicted: a a b b c c
    y_true = np.array([0, 0, 0, 1, 1, 2])
    probs = np.eye(3)[[0, 0, 1, 1, 2, 2]] * 0.9 + 0.1 / 3
    m = multiclass_metrics(y_true, probs, ["a", "b", "c"])
    # a: P=2/2 R=2/3 F1=0.8 ; b: P=1/2 R=1/2 F1=0.5 ; c: P=1/2 R=1/1 F1=2/3
    assert m["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert m["per_class"]["c"]["f1"] == pytest.approx(2 / 3)
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_ece_by_hand():
    # Two bins used: confidence 0.9 (3 predictions, 2 right) and 0.6 (1 prediction, right).
    confidence = np.array([0.9, 0.9, 0.9, 0.6])
    correct = np.array([1, 1, 0, 1])
    expected = (3 * abs(0.9 - 2 / 3) + 1 * abs(0.6 - 1.0)) / 4
    assert expected_calibration_error(confidence, correct) == pytest.approx(expected)
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([1, 1])) == pytest.approx(0.0)


def test_multilabel_metrics_by_hand():
    y_true = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    probs = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.8], [0.1, 0.1]])
    m = multilabel_metrics(y_true, probs, [0.5, 0.5], ["x", "y"])
    # x: predicted [1,0,1,0] -> TP1 FP1 FN1 -> F1 0.5 ; y: predicted [0,1,1,0] -> TP2 -> F1 1.0
    assert m["per_class"]["x"]["f1"] == pytest.approx(0.5)
    assert m["per_class"]["y"]["f1"] == pytest.approx(1.0)
    assert m["macro_f1"] == pytest.approx(0.75)
    assert m["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))


def test_best_threshold_and_collapse():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.35, 0.5, 0.3, 0.1])
    assert 0.3 < best_threshold(y, p) <= 0.35
    matrix = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]])
    collapsed = collapse_labels(matrix, ["a", "b", "c"], {"ab": ("a", "b"), "c": ("c",)})
    assert collapsed.tolist() == [[1, 0], [0, 1], [0, 0]]


def test_dev_score_tunes_multilabel_thresholds_before_scoring():
    import torch

    from training.head_trainer import dev_score

    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    # x: positives at logits 0.0, -0.4 (p 0.5, 0.40), negatives at -0.5, -2 (p 0.38, 0.12): a threshold
    # in (0.38, 0.40] separates them -> F1 1; y: positives p 0.73, 0.62 vs 0.5, 0.27 -> F1 1.
    logits = torch.tensor([[0.0, 0.0], [-0.4, 1.0], [-0.5, 0.5], [-2.0, -1.0]])
    assert dev_score("multilabel", ["x", "y"], logits, y) == pytest.approx(1.0)
    # at a fixed 0.5 threshold x would only get F1 2/3 (one of two positives)
    assert multilabel_metrics(y, torch.sigmoid(logits).numpy(), [0.5, 0.5], ["x", "y"])["per_class"]["x"][
        "f1"
    ] == pytest.approx(2 / 3)
    # multi-class: the macro-F1 of the argmax (as in test_multiclass_metrics_by_hand)
    truth = np.array([0, 0, 0, 1, 1, 2])
    scores = torch.eye(3)[[0, 0, 1, 1, 2, 2]] * 5
    assert dev_score("multiclass", ["a", "b", "c"], scores, truth) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_precise_threshold_is_the_lowest_reaching_the_floor_else_the_most_precise():
    y = np.array([1, 1, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.2])
    # 0.8: 2/2 precise; 0.7: 2/3; 0.6: 3/4 -> the lowest with precision >= 0.75 is 0.6.
    assert precise_threshold(y, p, 0.75, grid=np.array([0.2, 0.3, 0.6, 0.7, 0.8])) == 0.6
    assert precise_threshold(y, p, 0.9, grid=np.array([0.2, 0.3, 0.6, 0.7, 0.8])) == 0.8
    # No threshold reaches the floor: the most precise one.
    assert precise_threshold(np.array([0, 1, 0]), np.array([0.9, 0.5, 0.1]), 0.9, grid=np.array([0.1, 0.5, 0.9])) == 0.5
