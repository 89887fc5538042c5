"""Fitting a topic model on an archive of messages: reduce, cluster, merge, reassign
outliers, name the topics, group them under parent topics, and (on a refit) keep the ids
of topics found again and replay the previous model's curation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from nlp.redaction import Redactor
from nlp.topics.clustering import (
    UNASSIGNED,
    centroids_of,
    hdbscan_labels,
    merge_topics,
    refine_topics,
    relabel_dense,
)
from nlp.topics.config import TopicFitConfig
from nlp.topics.describe import describe_topics
from nlp.topics.edits import replay_curation
from nlp.topics.hierarchy import assign_parents
from nlp.topics.matching import DEFAULT_MIN_SIMILARITY, TopicMatch, match_topics
from nlp.topics.model import TopicManifest, TopicModel
from nlp.topics.reduction import reduce_embeddings
from nlp.topics.seeds import Seeds, claim, nudge, seed_names_for
from nlp.topics.smoothing import smooth_embeddings


@dataclass(frozen=True)
class FitResult:
    """The model, each document's topic index (-1: unassigned) and how the fit went."""

    model: TopicModel
    labels: np.ndarray
    """(n,) index into model.topics, or -1."""
    clustered_share: float
    """Share of documents HDBSCAN itself (or a zero-shot seed) put in a topic (before outlier reassignment)."""
    unassigned_share: float
    """Share left unassigned after reassignment."""
    match: TopicMatch | None
    seconds: dict[str, float]
    curation: list[str] = field(default_factory=list)
    """What the refit redid of the previous model's curation (one line per edit)."""


def discover(
    embeddings: np.ndarray, config: TopicFitConfig, seconds: dict[str, float] | None = None
) -> tuple[np.ndarray, int]:
    """Topic labels 0..k-1 (-1: unassigned) for the embeddings, by size, and how many
    documents HDBSCAN itself clustered: smooth, reduce, HDBSCAN, merge, refine. Every step
    reads the smoothed embeddings; the time of smoothing and reduction goes in
    `seconds["reduce"]`."""
    if embeddings.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), 0
    started = time.perf_counter()
    neighbours = config.sized_for(embeddings.shape[0]).neighbours
    smoothed = smooth_embeddings(embeddings, neighbours, config.smoothing_weight)
    reduced = reduce_embeddings(smoothed, config)
    if seconds is not None:
        seconds["reduce"] = time.perf_counter() - started
    labels = relabel_dense(hdbscan_labels(reduced, config))
    clustered = int((labels >= 0).sum())
    labels = merge_topics(smoothed, labels, threshold=config.merge_threshold, target=config.target_topics)
    return refine_topics(smoothed, labels, config.outlier_threshold, config.refine_iterations), clustered


def fit_topics(
    texts: Sequence[str],
    embeddings: np.ndarray,
    config: TopicFitConfig | None = None,
    *,
    nlp=None,
    previous: TopicModel | None = None,
    match_similarity: float = DEFAULT_MIN_SIMILARITY,
    encoder_info: dict[str, Any] | None = None,
    source: str | None = None,
    seeds: Seeds | None = None,
    redactor: Redactor | None = None,
) -> FitResult:
    """Fit topics on `texts` with their L2-normalised sentence `embeddings` (n, dim).

    `nlp` is a spaCy pipeline with tagger and lemmatizer (default: the shared one
    for terms); `redactor` redacts the examples (default: the standard redaction). With
    `seeds`, the seed topics are found as `config.seed_mode` says. With `previous`, topics
    matching a previous topic keep its id, and its curation (names, merges, splits,
    deletions) is redone."""
    # Unset size-dependent settings follow the corpus size; the manifest records them.
    config = (config or TopicFitConfig()).for_corpus(len(texts))
    if len(texts) != embeddings.shape[0]:
        raise ValueError(f"{len(texts)} texts but {embeddings.shape[0]} embeddings")
    if previous is not None and previous.dim != embeddings.shape[1]:
        raise ValueError(f"previous topic model has {previous.dim} dimensions; embeddings {embeddings.shape[1]}")
    if seeds is not None and seeds.vectors.shape[1] != embeddings.shape[1]:
        raise ValueError(f"seed embeddings have {seeds.vectors.shape[1]} dimensions; embeddings {embeddings.shape[1]}")
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    labels, clustered, fixed_names, seed_rows = _cluster(embeddings, config, seeds, seconds)
    count = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else len(seed_rows)
    count = max(count, len(seed_rows))
    centroids = centroids_of(embeddings, labels, count)
    centroids[: len(seed_rows)] = seed_rows  # a zero-shot seed's centre is the seed itself
    clustered_share = clustered / len(texts) if len(texts) else 0.0
    if seeds is not None and config.seed_mode == "guided":
        fixed_names = seed_names_for(centroids, seeds, config.seed_threshold)
    seconds["cluster"] = time.perf_counter() - started - seconds.get("reduce", 0.0)

    match = None
    ids = list(range(count))
    if previous is not None:
        assert previous.retired_centroids is not None  # set by TopicModel
        # Retired topics are matched too, so curation can recognise what it removed.
        match = match_topics(
            np.concatenate([previous.centroids, previous.retired_centroids]),
            [t.id for t in previous.topics] + [t.id for t in previous.manifest.retired],
            centroids,
            min_similarity=match_similarity,
            next_id=previous.manifest.next_topic_id,
        )
        ids = match.ids

    started = time.perf_counter()
    topics, centroids = describe_topics(
        texts, embeddings, labels, ids, config, nlp=nlp, redactor=redactor, fixed_names=fixed_names, centroids=centroids
    )
    topics, parents = assign_parents(topics, centroids, config.parent_similarity)
    seconds["label"] = time.perf_counter() - started

    unassigned_share = float((labels == UNASSIGNED).mean()) if labels.size else 0.0
    manifest = TopicManifest(
        created=datetime.now(UTC).replace(microsecond=0).isoformat(),
        encoder=encoder_info or {"dim": int(embeddings.shape[1])},
        params=config.to_dict(),
        trained_on={
            "source": source,
            "documents": len(texts),
            "clustered_share": round(clustered_share, 4),
            "unassigned_share": round(unassigned_share, 4),
            "seed_topics": len(seeds.names) if seeds is not None else 0,
        },
        topics=topics,
        parents=parents,
        refit=match.to_dict() if match else None,
        next_topic_id=max([*ids, (previous.manifest.next_topic_id - 1) if previous else -1], default=-1) + 1,
    )
    model = TopicModel(manifest=manifest, centroids=centroids)
    curation: list[str] = []
    if previous is not None and (previous.manifest.retired or any(t.pinned_name for t in previous.topics)):
        started = time.perf_counter()
        model, curation = replay_curation(previous, model, texts, embeddings, labels, nlp=nlp, redactor=redactor)
        labels = model.assign(embeddings).topic  # merges, splits and deletions move documents
        unassigned_share = float((labels == UNASSIGNED).mean()) if labels.size else 0.0
        model.manifest.trained_on["unassigned_share"] = round(unassigned_share, 4)
        if model.manifest.refit is not None:
            live = {t.id for t in model.topics}  # a part split again is not gone
            model.manifest.refit["gone"] = [i for i in model.manifest.refit["gone"] if i not in live]
            model.manifest.refit["curation"] = curation
        seconds["curation"] = time.perf_counter() - started
    return FitResult(
        model=model,
        labels=labels,
        clustered_share=clustered_share,
        unassigned_share=unassigned_share,
        match=match,
        seconds={k: round(v, 3) for k, v in seconds.items()},
        curation=curation,
    )


def _cluster(
    embeddings: np.ndarray, config: TopicFitConfig, seeds: Seeds | None, seconds: dict[str, float]
) -> tuple[np.ndarray, int, dict[int, str], np.ndarray]:
    """Labels, documents clustered, fixed names (topic index -> seed name) and the
    centroids of zero-shot seed topics (which come first: topic i is seed i)."""
    none = np.zeros((0, embeddings.shape[1]), dtype=np.float32)
    if seeds is None:
        labels, clustered = discover(embeddings, config, seconds)
        return labels, clustered, {}, none
    if config.seed_mode == "guided":
        labels, clustered = discover(nudge(embeddings, seeds, config.seed_threshold), config, seconds)
        return labels, clustered, {}, none
    claimed = claim(embeddings, seeds, config.seed_threshold)
    rest = np.flatnonzero(claimed == UNASSIGNED)
    found, clustered = discover(embeddings[rest], config, seconds)
    labels = claimed.copy()
    labels[rest] = np.where(found >= 0, found + len(seeds.names), UNASSIGNED)
    return labels, clustered + int((claimed >= 0).sum()), dict(enumerate(seeds.names)), seeds.vectors
