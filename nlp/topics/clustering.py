"""Clustering with HDBSCAN, then the clean-up HDBSCAN users ask for: merge near-duplicate
topics (or down to a target count) and hand outliers to the nearest topic when they are
close enough to it. Labels are 0..k-1; -1 means unassigned.

HDBSCAN keeps only the dense cores (on short support messages often half the documents
or fewer); the cores are pure, so they seed a few rounds of spherical k-means over every
document, which both places outliers and straightens the cores' boundaries."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from nlp.topics.config import FEW_COMPONENTS, LARGE_CORPUS, TopicFitConfig

UNASSIGNED = -1


def hdbscan_labels(reduced: np.ndarray, config: TopicFitConfig, algorithm: str | None = None) -> np.ndarray:
    """HDBSCAN cluster labels for the reduced coordinates (-1: noise). `algorithm` names how
    the spanning tree is built (default: `mst_algorithm`'s choice; bench/hdbscan_mst.py
    compares them)."""
    import hdbscan

    sizes = config.sized_for(reduced.shape[0])
    if reduced.shape[0] < sizes.min_cluster_size:
        return np.full(reduced.shape[0], UNASSIGNED, dtype=np.int64)
    clusterer = hdbscan.HDBSCAN(
        min_cluster_size=sizes.min_cluster_size,
        min_samples=sizes.min_samples,
        cluster_selection_method=config.cluster_selection,
        algorithm=algorithm or mst_algorithm(*reduced.shape),
        core_dist_n_jobs=1,  # the machine is shared; one core keeps the fit polite
    )
    return clusterer.fit_predict(reduced).astype(np.int64)


def mst_algorithm(documents: int, dimensions: int) -> str:
    """How HDBSCAN builds its minimum spanning tree, by measurement (`bench/hdbscan_mst.py`,
    table in docs/topics.md): Prim's on a k-d tree for the corpora below LARGE_CORPUS, which
    are reduced to 30 dimensions and where it is 1.3 to 2 times faster than Boruvka's
    (HDBSCAN's default); Boruvka's for the large ones, reduced to 10 dimensions, where
    Prim's is slower and grows quadratically. Prim's tree is exact, Boruvka's (as HDBSCAN
    runs it by default) approximate, so the topics differ a little (ARI 0.91 to 1.0 between
    the two)."""
    return "prims_kdtree" if documents < LARGE_CORPUS and dimensions > FEW_COMPONENTS else "boruvka_kdtree"


def topic_sums(embeddings: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """(count, dim) sum of each topic's member embeddings (one sparse product)."""
    members = np.flatnonzero(labels >= 0)
    membership = sparse.csr_matrix(
        (np.ones(members.size, dtype=np.float32), (labels[members], members)), shape=(count, embeddings.shape[0])
    )
    return np.asarray(membership @ embeddings, dtype=np.float64)


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32)


def centroids_of(embeddings: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """(count, dim) L2-normalised mean embedding of each topic's members."""
    return normalize_rows(topic_sums(embeddings, labels, count))


def relabel_dense(labels: np.ndarray) -> np.ndarray:
    """Renumber topic labels to 0..k-1 by decreasing size (ties: first seen); keeps -1."""
    kept = labels[labels >= 0]
    if kept.size == 0:
        return labels.copy()
    ids, counts = np.unique(kept, return_counts=True)
    order = ids[np.argsort(-counts, kind="stable")]
    mapping = np.full(int(labels.max()) + 1, UNASSIGNED, dtype=np.int64)
    mapping[order] = np.arange(order.size)
    out = np.full_like(labels, UNASSIGNED)
    out[labels >= 0] = mapping[labels[labels >= 0]]
    return out


def merge_topics(
    embeddings: np.ndarray, labels: np.ndarray, *, threshold: float | None, target: int | None
) -> np.ndarray:
    """Merge the two most similar topics (by centroid cosine) while they are at least
    `threshold` alike, or while there are more than `target` topics. Greedy, one merge at a
    time with the merged centroid recomputed (centroid-linkage agglomeration). Each row's
    best partner is cached, so a merge costs O(k * dim) plus the rows that pointed at the
    merged pair, not a scan of the whole k x k matrix."""
    labels = relabel_dense(labels)
    count = int(labels.max()) + 1
    if count < 2 or (threshold is None and (target is None or count <= target)):
        return labels
    sums = topic_sums(embeddings, labels, count)
    unit = normalize_rows(sums)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    best = similarity.argmax(axis=1)
    best_value = similarity[np.arange(count), best]
    alive, owner = np.ones(count, dtype=bool), np.arange(count)
    remaining = count
    while remaining > 1:
        a = int(np.argmax(best_value))
        b = int(best[a])
        over_target = target is not None and remaining > target
        if not (over_target or (threshold is not None and best_value[a] >= threshold)):
            break
        keep, drop = min(a, b), max(a, b)
        sums[keep] += sums[drop]
        owner[owner == drop] = keep
        alive[drop] = False
        remaining -= 1
        unit[keep] = normalize_rows(sums[keep : keep + 1])[0]
        row = np.where(alive, unit @ unit[keep], -np.inf)
        row[keep] = -np.inf
        similarity[keep, :] = similarity[:, keep] = row
        similarity[drop, :] = similarity[:, drop] = -np.inf
        best_value[drop] = -np.inf
        # Rows whose best partner was one of the pair must look again; others only
        # compare their cached best with the merged topic's new similarity.
        stale = np.flatnonzero(alive & ((best == keep) | (best == drop)))
        stale = np.union1d(stale, [keep])
        best[stale] = similarity[stale].argmax(axis=1)
        best_value[stale] = similarity[stale, best[stale]]
        better = alive & (row > best_value)
        best[better] = keep
        best_value[better] = row[better]
    merged = labels.copy()
    merged[labels >= 0] = owner[labels[labels >= 0]]
    return relabel_dense(merged)


def nearest_centroids(
    embeddings: np.ndarray, centroids: np.ndarray, block: int = 16384
) -> tuple[np.ndarray, np.ndarray]:
    """(index, cosine similarity) of each row's nearest centroid, in row blocks so memory
    stays at block x k however many documents there are."""
    best = np.empty(embeddings.shape[0], dtype=np.int64)
    best_similarity = np.empty(embeddings.shape[0], dtype=np.float32)
    for start in range(0, embeddings.shape[0], block):
        similarity = embeddings[start : start + block] @ centroids.T
        best[start : start + block] = similarity.argmax(axis=1)
        best_similarity[start : start + block] = similarity.max(axis=1)
    return best, best_similarity


def refine_topics(embeddings: np.ndarray, labels: np.ndarray, threshold: float, iterations: int) -> np.ndarray:
    """Spherical k-means seeded with the topics in `labels`: each round, every document
    joins its nearest centroid if their cosine similarity is at least `threshold` (else
    it is unassigned), then centroids move to their members' mean. One round is plain
    outlier reassignment. Stops early when nothing changes; topics left empty vanish."""
    count = int(labels.max()) + 1 if labels.size else 0
    if count == 0:
        return labels.copy()
    current = labels.copy()
    for _ in range(max(iterations, 1)):
        best, similarity = nearest_centroids(embeddings, centroids_of(embeddings, current, count))
        updated = np.where(similarity >= threshold, best, UNASSIGNED)
        if np.array_equal(updated, current):
            break
        current = updated
    return relabel_dense(current)
