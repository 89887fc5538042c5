"""Fitting a topic model on an archive of messages: reduce, cluster, merge, reassign
outliers, name the topics, and (on a refit) keep the ids of topics found again."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from nlp.topics.clustering import (
    UNASSIGNED,
    centroids_of,
    hdbscan_labels,
    merge_topics,
    refine_topics,
    relabel_dense,
)
from nlp.topics.config import TopicFitConfig
from nlp.topics.labels import (
    class_tfidf,
    document_terms,
    representative_examples,
    slug,
    top_terms,
    unique_names,
)
from nlp.topics.matching import DEFAULT_MIN_SIMILARITY, TopicMatch, match_topics
from nlp.topics.model import TopicEntry, TopicManifest, TopicModel
from nlp.topics.reduction import reduce_embeddings


@dataclass(frozen=True)
class FitResult:
    """The model, each document's topic index (-1: unassigned) and how the fit went."""

    model: TopicModel
    labels: np.ndarray
    """(n,) index into model.topics, or -1."""
    clustered_share: float
    """Share of documents HDBSCAN itself put in a topic (before outlier reassignment)."""
    unassigned_share: float
    """Share left unassigned after reassignment."""
    match: TopicMatch | None
    seconds: dict[str, float]


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
) -> FitResult:
    """Fit topics on `texts` with their L2-normalised sentence `embeddings` (n, dim).

    `nlp` is a spaCy pipeline with tagger, lemmatizer and parser (default: the shared one
    for terms). With `previous`, topics matching a previous topic keep its id."""
    # Unset size-dependent settings follow the corpus size; the manifest records them.
    config = (config or TopicFitConfig()).for_corpus(len(texts))
    if len(texts) != embeddings.shape[0]:
        raise ValueError(f"{len(texts)} texts but {embeddings.shape[0]} embeddings")
    if previous is not None and previous.dim != embeddings.shape[1]:
        raise ValueError(f"previous topic model has {previous.dim} dimensions; embeddings {embeddings.shape[1]}")
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    reduced = reduce_embeddings(embeddings, config)
    seconds["reduce"] = time.perf_counter() - started

    started = time.perf_counter()
    labels = relabel_dense(hdbscan_labels(reduced, config))
    del reduced
    clustered_share = float((labels >= 0).mean()) if labels.size else 0.0
    labels = merge_topics(embeddings, labels, threshold=config.merge_threshold, target=config.target_topics)
    labels = refine_topics(embeddings, labels, config.outlier_threshold, config.refine_iterations)
    count = int(labels.max()) + 1 if labels.size else 0
    centroids = centroids_of(embeddings, labels, count)
    seconds["cluster"] = time.perf_counter() - started

    started = time.perf_counter()
    entries_terms = _label_topics(texts, labels, count, config, nlp)
    seconds["label"] = time.perf_counter() - started

    match = None
    if previous is not None:
        match = match_topics(
            previous.centroids,
            [t.id for t in previous.topics],
            centroids,
            min_similarity=match_similarity,
            next_id=previous.manifest.next_topic_id,
        )
        ids = match.ids
    else:
        ids = list(range(count))
    sizes = np.bincount(labels[labels >= 0], minlength=count)
    names = unique_names([terms.name for terms in entries_terms], ids)
    topics = [
        TopicEntry(
            id=ids[k],
            name=names[k],
            tag=slug(names[k]),
            keywords=entries_terms[k].keywords,
            size=int(sizes[k]),
            examples=representative_examples(
                texts, embeddings, np.flatnonzero(labels == k), centroids[k], config.examples
            ),
        )
        for k in range(count)
    ]
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
        },
        topics=topics,
        refit=match.to_dict() if match else None,
        next_topic_id=max([*ids, (previous.manifest.next_topic_id - 1) if previous else -1], default=-1) + 1,
    )
    return FitResult(
        model=TopicModel(manifest=manifest, centroids=centroids),
        labels=labels,
        clustered_share=clustered_share,
        unassigned_share=unassigned_share,
        match=match,
        seconds={k: round(v, 3) for k, v in seconds.items()},
    )


def _label_topics(texts: Sequence[str], labels: np.ndarray, count: int, config: TopicFitConfig, nlp):
    """c-TF-IDF terms per topic, over a seeded sample of each topic's documents (see
    `label_sample` and `label_budget`)."""
    if count == 0:
        return []
    if nlp is None:
        from nlp.spacy_pipeline import load_term_pipeline

        nlp = load_term_pipeline()
    rng = np.random.default_rng(config.seed)
    per_topic = max(min(config.label_sample, config.label_budget // count), 3)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(count + 1))
    chosen = []
    for k in range(count):
        members = order[bounds[k] : bounds[k + 1]]
        if members.size > per_topic:
            members = np.sort(rng.choice(members, per_topic, replace=False))
        chosen.append(members)
    rows = np.concatenate(chosen)
    terms = document_terms([texts[i] for i in rows], nlp)
    weights, vocabulary = class_tfidf(terms, labels[rows], count)
    return top_terms(weights, vocabulary, config.top_terms)
