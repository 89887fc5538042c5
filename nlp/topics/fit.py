"""Fitting a topic model on an archive of messages: reduce, cluster, merge, reassign
outliers, name the topics, group them under parent topics, and (on a refit) keep the ids
of topics found again and replay the previous model's curation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
from nlp.topics.config import TIGHTNESS_NEIGHBOURS, TopicFitConfig
from nlp.topics.describe import describe_topics
from nlp.topics.edits import replay_curation
from nlp.topics.hierarchy import assign_parents
from nlp.topics.matching import DEFAULT_MIN_SIMILARITY, TopicMatch, match_topics
from nlp.topics.model import TopicManifest, TopicModel
from nlp.topics.reduction import reduce_embeddings
from nlp.topics.seeds import Seeds, claim, nudge, seed_names_for
from nlp.topics.smoothing import find_neighbourhoods, smooth_embeddings


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


@dataclass(frozen=True)
class Discovery:
    """Topics found by clustering, before they are named."""

    labels: np.ndarray
    """(n,) topic 0..k-1 of each document, by size (-1: unassigned)."""
    clustered: int
    """Documents HDBSCAN itself put in a topic (before the outliers are reassigned)."""
    tightness: float | None
    """Mean similarity of each document to its nearest others (None: not measured)."""
    merge_threshold: float | None
    """The similarity at which topics were merged (None: no merging on similarity)."""


def discover(embeddings: np.ndarray, config: TopicFitConfig, seconds: dict[str, float] | None = None) -> Discovery:
    """Topics for the embeddings: find neighbourhoods, smooth, reduce, HDBSCAN, merge (at
    the corpus's own threshold), refine. Every step reads the smoothed embeddings; the time
    of the neighbour search, smoothing and reduction goes in `seconds["reduce"]`."""
    if embeddings.shape[0] == 0:
        return Discovery(np.zeros(0, dtype=np.int64), 0, None, config.merge_threshold)
    started = time.perf_counter()
    neighbours = config.sized_for(embeddings.shape[0]).neighbours
    measure_tightness = config.merge_margin is not None and config.merge_threshold is not None
    neighbourhoods = find_neighbourhoods(embeddings, neighbours, TIGHTNESS_NEIGHBOURS if measure_tightness else 0)
    tightness = neighbourhoods.similarity
    smoothed = smooth_embeddings(embeddings, neighbourhoods, config.smoothing_weight)
    reduced = reduce_embeddings(smoothed, config)
    if seconds is not None:
        seconds["reduce"] = time.perf_counter() - started
    labels = relabel_dense(hdbscan_labels(reduced, config))
    clustered = int((labels >= 0).sum())
    threshold = config.merge_threshold_for(tightness)
    labels = merge_topics(smoothed, labels, threshold=threshold, target=config.target_topics)
    labels = refine_topics(smoothed, labels, config.outlier_threshold, config.refine_iterations)
    return Discovery(labels, clustered, tightness, threshold)


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
    found, fixed_names, seed_rows = _cluster(embeddings, config, seeds, seconds)
    labels = found.labels
    count = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else len(seed_rows)
    count = max(count, len(seed_rows))
    centroids = centroids_of(embeddings, labels, count)
    centroids[: len(seed_rows)] = seed_rows  # a zero-shot seed's centre is the seed itself
    clustered_share = found.clustered / len(texts) if len(texts) else 0.0
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
            "tightness": None if found.tightness is None else round(found.tightness, 4),
            "merge_threshold": None if found.merge_threshold is None else round(found.merge_threshold, 4),
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
) -> tuple[Discovery, dict[int, str], np.ndarray]:
    """The topics of every document (zero-shot seed topics first: topic i is seed i), the
    fixed names (topic index -> seed name) and the centroids of zero-shot seed topics."""
    none = np.zeros((0, embeddings.shape[1]), dtype=np.float32)
    if seeds is None:
        return discover(embeddings, config, seconds), {}, none
    if config.seed_mode == "guided":
        return discover(nudge(embeddings, seeds, config.seed_threshold), config, seconds), {}, none
    claimed = claim(embeddings, seeds, config.seed_threshold)
    rest = np.flatnonzero(claimed == UNASSIGNED)
    found = discover(embeddings[rest], config, seconds)
    labels = claimed.copy()
    labels[rest] = np.where(found.labels >= 0, found.labels + len(seeds.names), UNASSIGNED)
    everything = replace(found, labels=labels, clustered=found.clustered + int((claimed >= 0).sum()))
    return everything, dict(enumerate(seeds.names)), seeds.vectors
