"""Neighbourhood smoothing before topic clustering (nlp/topics/smoothing.py) and the size
rule that turns it on."""

from __future__ import annotations

import numpy as np
import pytest

from nlp.topics import TopicFitConfig, smoothing
from nlp.topics.config import SMOOTHING_FROM, SMOOTHING_NEIGHBOURS, sizes_for_corpus
from nlp.topics.fit import discover
from nlp.topics.smoothing import neighbour_means, smooth_embeddings


def unit_rows(count: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_force_means(rows: np.ndarray, k: int) -> np.ndarray:
    similarities = rows @ rows.T
    np.fill_diagonal(similarities, -np.inf)
    nearest = np.argsort(-similarities, axis=1)[:, :k]
    return rows[nearest].mean(axis=1)


@pytest.mark.parametrize("block_entries", [16_000_000, 7 * 50])  # one block; blocks of 7 rows
def test_neighbour_means_are_the_exact_nearest_neighbours_in_any_block_size(monkeypatch, block_entries):
    rows = unit_rows(50)
    monkeypatch.setattr(smoothing, "BLOCK_ENTRIES", block_entries)
    np.testing.assert_allclose(neighbour_means(rows, 4), brute_force_means(rows, 4), atol=1e-6)


def test_a_document_is_never_its_own_neighbour():
    rows = unit_rows(2)
    np.testing.assert_allclose(neighbour_means(rows, 5), rows[::-1], atol=1e-6)  # each one's only neighbour


def test_smoothing_pulls_a_noisy_document_towards_its_group_and_keeps_unit_length():
    rng = np.random.default_rng(1)
    centre = unit_rows(1, seed=2)[0]
    group = centre + 0.1 * rng.standard_normal((8, 16)).astype(np.float32)
    group /= np.linalg.norm(group, axis=1, keepdims=True)
    noisy = group.copy()
    noisy[0] = 0.5 * centre + unit_rows(1, seed=3)[0]  # one message far from the rest
    noisy[0] /= np.linalg.norm(noisy[0])
    smoothed = smooth_embeddings(noisy, 3, 2.0)
    np.testing.assert_allclose(np.linalg.norm(smoothed, axis=1), 1.0, atol=1e-5)
    assert smoothed[0] @ centre > noisy[0] @ centre + 0.2


def test_no_neighbours_or_no_weight_leave_the_embeddings_as_they_are():
    rows = unit_rows(10)
    assert smooth_embeddings(rows, 0, 2.0) is rows
    assert smooth_embeddings(rows, 5, 0.0) is rows


def test_the_size_rule_smooths_from_its_threshold_and_an_explicit_setting_wins():
    assert sizes_for_corpus(SMOOTHING_FROM - 1).neighbours == 0
    assert sizes_for_corpus(SMOOTHING_FROM).neighbours == SMOOTHING_NEIGHBOURS
    assert TopicFitConfig(neighbours=0).sized_for(10_000).neighbours == 0
    assert TopicFitConfig().for_corpus(10_000).neighbours == SMOOTHING_NEIGHBOURS  # what a manifest records
    # A manifest from before smoothing existed describes a fit without it.
    assert TopicFitConfig.from_dict({"min_cluster_size": 10, "n_components": 30}).sized_for(10_000).neighbours == 0
    with pytest.raises(ValueError, match="neighbours"):
        TopicFitConfig(neighbours=-1)
    with pytest.raises(ValueError, match="smoothing_weight"):
        TopicFitConfig(smoothing_weight=-0.5)


def test_discovery_clusters_the_smoothed_embeddings(monkeypatch):
    rows = unit_rows(SMOOTHING_FROM, dim=8)
    seen: list[int] = []

    def counting(embeddings: np.ndarray, neighbours: int, weight: float) -> np.ndarray:
        seen.append(neighbours)
        return smooth_embeddings(embeddings, neighbours, weight)

    monkeypatch.setattr("nlp.topics.fit.smooth_embeddings", counting)
    discover(rows, TopicFitConfig())
    discover(rows[: SMOOTHING_FROM - 1], TopicFitConfig())
    discover(rows, TopicFitConfig(neighbours=2))
    assert seen == [SMOOTHING_NEIGHBOURS, 0, 2]
