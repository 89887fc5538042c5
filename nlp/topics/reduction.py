"""Dimension reduction before clustering: PCA by default (scikit-learn), UMAP when the
`topics-umap` extra is installed. Only used while fitting: live assignment compares
full sentence embeddings with the topic centroids."""

from __future__ import annotations

import numpy as np

from nlp.topics.config import TopicFitConfig


class ReductionUnavailable(RuntimeError):
    """The requested reduction needs an optional package that is not installed."""


def reduce_embeddings(embeddings: np.ndarray, config: TopicFitConfig) -> np.ndarray:
    """(n, n_components) L2-normalised coordinates to cluster (Euclidean distance on unit
    vectors orders pairs as cosine similarity does)."""
    n, dim = embeddings.shape
    components = min(config.sized_for(n).n_components, dim, max(n - 1, 1))
    if config.reduction == "none" or components >= dim:
        reduced = embeddings
    elif config.reduction == "pca":
        from sklearn.decomposition import PCA

        reduced = PCA(n_components=components, random_state=config.seed).fit_transform(embeddings)
    else:
        reduced = _umap(embeddings, components, config.seed)
    reduced = np.asarray(reduced, dtype=np.float32)
    norms = np.linalg.norm(reduced, axis=1, keepdims=True)
    return reduced / np.maximum(norms, 1e-12)


def _umap(embeddings: np.ndarray, components: int, seed: int) -> np.ndarray:
    try:
        import umap  # lazy: an optional extra, and slow to import (numba)
    except ImportError as exc:
        raise ReductionUnavailable(
            "reduction 'umap' needs the optional extra: pip install 'convintel[topics-umap]'"
        ) from exc
    reducer = umap.UMAP(n_neighbors=15, n_components=components, min_dist=0.0, metric="cosine", random_state=seed)
    return reducer.fit_transform(embeddings)
