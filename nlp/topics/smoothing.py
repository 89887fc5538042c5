"""Neighbourhoods before clustering: each document's nearest documents, used twice.

1. **Smoothing**: each document's embedding is pulled towards the mean embedding of its
   nearest neighbours. Short messages are noisy points: one word more or less moves a
   sentence embedding a long way. Averaging in the few documents most like it (what
   UMAP's neighbour graph does for BERTopic, at a fraction of the cost) makes the dense
   groups denser and the boundaries between them cleaner, so HDBSCAN, the merging and the
   k-means refinement see the groups the corpus really has. Only the clustering reads the
   smoothed embeddings: topic centroids, examples and live assignment use each
   document's own embedding.
2. **How tight the corpus is**: the mean similarity of documents to their nearest
   neighbours. Support queries about one product (BANKING77: 0.74 to 0.86) sit much
   closer to their neighbours than tweets to many brands (X-CI: 0.44 to 0.49); the merge
   threshold follows it (`TopicFitConfig.merge_threshold_for`).

One exact search serves both. How much each helps, and why the neighbours come from the
full embeddings and not from the reduced coordinates: docs/topics.md
(`bench/topic_sweep.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BLOCK_ENTRIES = 16_000_000
"""Similarities held at once (64 MB of float32): rows per block = this / documents."""


@dataclass(frozen=True)
class Neighbourhoods:
    """What one nearest-neighbour search over a corpus found."""

    means: np.ndarray | None
    """(n, dim) mean of each row's `neighbours` nearest other rows (None: not asked for,
    or fewer than two rows)."""
    similarity: float | None
    """Mean cosine similarity of each row to its `similarity_of` nearest other rows
    (None: not asked for, or fewer than two rows)."""


def find_neighbourhoods(embeddings: np.ndarray, neighbours: int, similarity_of: int = 0) -> Neighbourhoods:
    """Each row's nearest other rows by cosine similarity (the rows are L2-normalised):
    the mean of its `neighbours` nearest, and the corpus's mean similarity to each row's
    `similarity_of` nearest. Exact, in blocks of rows so memory stays flat at any corpus
    size. torch's top-k rather than numpy's argpartition: 0.6 s against 2.5 s for 10,000
    documents on this project's 2-core machine (one-off comparison, 2026-12-04)."""
    count = embeddings.shape[0]
    k_means, k_similarity = min(neighbours, count - 1), min(similarity_of, count - 1)
    k = max(k_means, k_similarity)
    if k < 1:
        return Neighbourhoods(None, None)  # no other rows, or nothing asked for
    matrix = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
    means = torch.empty_like(matrix) if k_means > 0 else None
    similarity_sum = 0.0
    rows = max(1, BLOCK_ENTRIES // count)
    with torch.inference_mode():
        for start in range(0, count, rows):
            similarities = matrix[start : start + rows] @ matrix.T
            block = torch.arange(similarities.shape[0])
            similarities[block, block + start] = -torch.inf  # a document is not its own neighbour
            nearest = similarities.topk(k, dim=1)  # sorted, nearest first
            if means is not None:
                means[start : start + rows] = matrix[nearest.indices[:, :k_means]].mean(dim=1)
            if k_similarity > 0:
                similarity_sum += float(nearest.values[:, :k_similarity].sum())
    return Neighbourhoods(
        means=means.numpy() if means is not None else None,
        similarity=similarity_sum / (count * k_similarity) if k_similarity > 0 else None,
    )


def smooth_embeddings(embeddings: np.ndarray, neighbourhoods: Neighbourhoods, weight: float) -> np.ndarray:
    """Each row plus `weight` times the mean of its nearest rows, L2-normalised again; the
    rows unchanged when there are no neighbour means or `weight` is 0. Consumes the
    neighbourhoods' means: the result is computed in their array."""
    means = neighbourhoods.means
    if means is None or weight <= 0 or embeddings.shape[0] < 2:
        return embeddings
    # In place on the one new array (the means are not needed again): at 100,000
    # messages each extra copy is 150 MB.
    smoothed = means
    smoothed *= weight
    smoothed += embeddings
    smoothed /= np.maximum(np.linalg.norm(smoothed, axis=1, keepdims=True), 1e-12)
    return smoothed
