"""The head bench's coarse readings: Ekman and group macro-F1 read off 28-label
probabilities, every threshold cross-fitted on halves of the rows."""

from __future__ import annotations

import numpy as np
import pytest

from bench.head_variants import coarse_readings
from training.datasets import LabelledSet
from training.train import GOEMOTIONS_GROUP_SOURCES

LABELS = sorted({label for members in GOEMOTIONS_GROUP_SOURCES.values() for label in members})


def goemotions_like(rows: int, seed: int = 0) -> LabelledSet:
    """`rows` texts with one or two of the 28 labels each, spread over every label."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((rows, len(LABELS)), dtype=np.float32)
    for i in range(rows):
        labels[i, i % len(LABELS)] = 1
        if rng.random() < 0.3:
            labels[i, rng.integers(len(LABELS))] = 1
    return LabelledSet("goemotions/original:dev", [f"t{i}" for i in range(rows)], labels, LABELS, "multilabel")


def test_probabilities_that_match_the_labels_read_perfectly_every_way():
    dev = goemotions_like(560)
    readings = coarse_readings(np.where(dev.labels > 0, 0.9, 0.05), dev)
    assert set(readings) == {f"{t}:cross_fit_{r}" for t in ("ekman", "group") for r in ("any", "max", "noisy_or")}
    assert all(value == pytest.approx(1.0) for value in readings.values())


def test_probabilities_that_ignore_the_text_read_far_below_perfect():
    dev = goemotions_like(560)
    noise = np.random.default_rng(1).random(dev.labels.shape)
    readings = coarse_readings(noise, dev)
    assert max(readings.values()) < 0.7
