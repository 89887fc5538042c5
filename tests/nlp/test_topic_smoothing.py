"""Neighbourhoods before topic clustering (nlp/topics/smoothing.py): smoothing and the size
rule that turns it on, and the corpus tightness that sets the merge threshold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from nlp.topics import TopicFitConfig, fit, smoothing
from nlp.topics.config import SMOOTHING_FROM, SMOOTHING_NEIGHBOURS, TIGHTNESS_NEIGHBOURS, sizes_for_corpus
from nlp.topics.fit import discover
from nlp.topics.smoothing import Neighbourhoods, find_neighbourhoods, smooth_embeddings


def unit_rows(count: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def brute_force_nearest(rows: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Each row's nearest other rows' mean, and the mean similarity to them."""
    similarities = rows @ rows.T
    np.fill_diagonal(similarities, -np.inf)
    nearest = np.argsort(-similarities, axis=1)[:, :k]
    return rows[nearest].mean(axis=1), float(np.take_along_axis(similarities, nearest, axis=1).mean())


@pytest.mark.parametrize("block_entries", [16_000_000, 7 * 50])  # one block; blocks of 7 rows
def test_neighbourhoods_are_the_exact_nearest_neighbours_in_any_block_size(monkeypatch, block_entries):
    rows = unit_rows(50)
    monkeypatch.setattr(smoothing, "BLOCK_ENTRIES", block_entries)
    found = find_neighbourhoods(rows, 4, similarity_of=6)
    np.testing.assert_allclose(found.means, brute_force_nearest(rows, 4)[0], atol=1e-6)
    assert found.similarity == pytest.approx(brute_force_nearest(rows, 6)[1], abs=1e-5)
    assert find_neighbourhoods(rows, 0).similarity is None and find_neighbourhoods(rows, 0, 3).means is None


def test_a_document_is_never_its_own_neighbour():
    rows = unit_rows(2)
    found = find_neighbourhoods(rows, 5, similarity_of=5)
    np.testing.assert_allclose(found.means, rows[::-1], atol=1e-6)  # each one's only neighbour
    assert found.similarity == pytest.approx(float(rows[0] @ rows[1]), abs=1e-6)


def test_smoothing_pulls_a_noisy_document_towards_its_group_and_keeps_unit_length():
    rng = np.random.default_rng(1)
    centre = unit_rows(1, seed=2)[0]
    group = centre + 0.1 * rng.standard_normal((8, 16)).astype(np.float32)
    group /= np.linalg.norm(group, axis=1, keepdims=True)
    noisy = group.copy()
    noisy[0] = 0.5 * centre + unit_rows(1, seed=3)[0]  # one message far from the rest
    noisy[0] /= np.linalg.norm(noisy[0])
    smoothed = smooth_embeddings(noisy, find_neighbourhoods(noisy, 3), 2.0)
    np.testing.assert_allclose(np.linalg.norm(smoothed, axis=1), 1.0, atol=1e-5)
    assert smoothed[0] @ centre > noisy[0] @ centre + 0.2


def test_no_neighbours_or_no_weight_leave_the_embeddings_as_they_are():
    rows = unit_rows(10)
    assert smooth_embeddings(rows, find_neighbourhoods(rows, 0, 5), 2.0) is rows
    assert smooth_embeddings(rows, find_neighbourhoods(rows, 5), 0.0) is rows


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

    def counting(embeddings: np.ndarray, neighbourhoods: Neighbourhoods, weight: float) -> np.ndarray:
        smoothed = smooth_embeddings(embeddings, neighbourhoods, weight)
        seen.append(0 if smoothed is embeddings else 1)
        return smoothed

    monkeypatch.setattr("nlp.topics.fit.smooth_embeddings", counting)
    discover(rows, TopicFitConfig())
    discover(rows[: SMOOTHING_FROM - 1], TopicFitConfig())
    discover(rows, TopicFitConfig(neighbours=2))
    discover(rows, TopicFitConfig(neighbours=0))
    assert seen == [1, 0, 1, 0]


def loose_groups(seed: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """Four groups of 150 around random centres in 48 dimensions; `spread` sets how far
    the members lie from their centre (1.5: their nearest neighbours at about 0.54)."""
    rng = np.random.default_rng(seed)
    centres = unit_rows(4, dim=48, seed=seed)
    rows = np.concatenate([c + spread * rng.standard_normal((150, 48)) / np.sqrt(48) for c in centres])
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32), np.repeat(np.arange(4), 150)


def test_the_merge_threshold_follows_the_corpus_tightness_under_its_cap():
    config = TopicFitConfig(merge_threshold=0.85, merge_margin=0.2)
    assert config.merge_threshold_for(0.5) == pytest.approx(0.7)
    assert config.merge_threshold_for(0.8) == 0.85  # a tight corpus: the cap
    assert config.merge_threshold_for(None) == 0.85
    assert TopicFitConfig(merge_margin=None).merge_threshold_for(0.5) == 0.85
    assert TopicFitConfig(merge_threshold=None).merge_threshold_for(0.5) is None
    # Resolved params from before the margin existed describe a fit without it.
    assert TopicFitConfig.from_dict({"min_cluster_size": 10, "neighbours": 5}).merge_margin is None
    with pytest.raises(ValueError, match="merge_margin"):
        TopicFitConfig(merge_margin=-0.1)


def test_discovery_merges_at_the_corpus_own_threshold(monkeypatch):
    rows, _ = loose_groups(0, 1.5)
    thresholds: list[float | None] = []
    real_merge = fit.merge_topics

    def recording(embeddings, labels, *, threshold, target):
        thresholds.append(threshold)
        return real_merge(embeddings, labels, threshold=threshold, target=target)

    monkeypatch.setattr(fit, "merge_topics", recording)
    found = discover(rows, TopicFitConfig())
    tightness = brute_force_nearest(rows, TIGHTNESS_NEIGHBOURS)[1]
    assert found.tightness == pytest.approx(tightness, abs=1e-5) and 0.45 < tightness < 0.6
    assert thresholds == [found.merge_threshold] and found.merge_threshold == pytest.approx(tightness + 0.22, abs=1e-5)
    tight, _ = loose_groups(0, 0.5)
    assert discover(tight, TopicFitConfig()).merge_threshold == 0.85


@pytest.mark.parametrize("seed", [0, 1])
def test_a_loose_corpus_keeps_its_groups_instead_of_splitting_into_dozens(seed):
    rows, truth = loose_groups(seed, 1.5)
    adaptive = discover(rows, TopicFitConfig()).labels
    fixed = discover(rows, TopicFitConfig(merge_margin=None)).labels
    assert adjusted_rand_score(truth, adaptive) > 0.85 and adaptive.max() + 1 <= 6
    assert adjusted_rand_score(truth, fixed) < 0.6 and fixed.max() + 1 > 15
