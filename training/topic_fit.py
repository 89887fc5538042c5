"""`convintel topics fit`: an archive file -> customer texts -> shared-encoder embeddings
(cached by text, like training features) -> a saved topic model.

The archive (JSONL, JSON, CSV or Parquet; read by `nlp.archive`) holds messages (`text`,
optional `role`, `timestamp`, `channel`, `conversation_id`) or transcripts (the
`/v1/analyze` body: `messages` plus conversation fields). Topics are fit on customer
messages: rows without a role count as customer messages (an export of customer queries
usually has no role column)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nlp.archive import RowReader, SkipLog
from nlp.encoder import ENCODER_NAME, Encoder, packaged_model_version
from nlp.topics.config import TopicFitConfig
from nlp.topics.edits import Members
from nlp.topics.fit import FitResult, fit_topics
from nlp.topics.matching import DEFAULT_MIN_SIMILARITY
from nlp.topics.model import TopicModel
from nlp.topics.seeds import SeedFile, embed_seeds
from training.features import FeatureCache

TEXT_ROLES = {"customer"}


@dataclass
class CustomerTexts(SkipLog):
    """Customer message texts from an archive, and what was skipped (with why)."""

    texts: list[str] = field(default_factory=list)


def customer_texts(path: Path, *, text_field: str = "text") -> CustomerTexts:
    """Customer message texts of an archive (message rows and transcripts' messages); bad
    rows are skipped and counted, never fatal."""
    result = CustomerTexts()
    reader = RowReader(path)
    for row in reader:
        where = reader.where(row.number)
        if row.fields is None:
            result.skip(f"{where}: {row.error}")
            continue
        messages = row.fields.get("messages")
        if isinstance(messages, list):
            for index, message in enumerate(messages):
                _add_message(result, message, f"{where} messages.{index}", text_field)
        else:
            _add_message(result, row.fields, where, text_field)
    return result


def _add_message(result: CustomerTexts, message: Any, where: str, text_field: str) -> None:
    if not isinstance(message, dict):
        result.skip(f"{where}: not an object")
        return
    role = message.get("role")
    if role not in (None, "") and str(role).lower() not in TEXT_ROLES:
        return  # agent, bot and system turns are not what customers contact us about
    text = message.get(text_field)
    if not isinstance(text, str) or not text.strip():
        result.skip(f"{where}: no '{text_field}'")
        return
    result.texts.append(text)


@dataclass(frozen=True)
class FileFit:
    result: FitResult
    documents: int
    skipped: int
    problems: list[str]


def encoder_info(encoder: Encoder) -> dict:
    """What a topic model records about the embedding space of its centroids."""
    return {
        "name": ENCODER_NAME,
        "package_version": packaged_model_version(),
        "dim": encoder.dim,
        "max_seq_length": encoder.max_seq_length,
    }


def embed_texts(encoder: Encoder, texts: list[str], cache_dir: Path | None) -> np.ndarray:
    """(n, dim) sentence embeddings, encoding only texts the cache does not hold."""
    features = FeatureCache(cache_dir, encoder).features(texts, label="messages")
    return np.ascontiguousarray(features[:, : encoder.dim])


def fit_topic_file(
    source: Path,
    output: Path,
    encoder: Encoder,
    config: TopicFitConfig,
    *,
    text_field: str = "text",
    previous: TopicModel | None = None,
    match_similarity: float = DEFAULT_MIN_SIMILARITY,
    cache_dir: Path | None = None,
    seeds: SeedFile | None = None,
) -> FileFit:
    """Fit a topic model on the customer messages of `source` (with the `seeds` topics,
    if given) and save it in `output`."""
    corpus = customer_texts(source, text_field=text_field)
    smallest = config.sized_for(len(corpus.texts)).min_cluster_size
    if len(corpus.texts) < smallest:
        raise ValueError(
            f"{source}: {len(corpus.texts)} customer messages; a fit needs at least min_cluster_size ({smallest})"
        )
    embeddings = embed_texts(encoder, corpus.texts, cache_dir)
    result = fit_topics(
        corpus.texts,
        embeddings,
        config,
        previous=previous,
        match_similarity=match_similarity,
        encoder_info=encoder_info(encoder),
        source=source.name,
        seeds=embed_seeds(seeds, lambda texts: encoder.encode(texts).embeddings) if seeds else None,
    )
    result.model.save(output)
    return FileFit(result=result, documents=len(corpus.texts), skipped=corpus.skipped, problems=corpus.problems)


def topic_members(
    model: TopicModel,
    topic_id: int,
    source: Path,
    encoder: Encoder,
    *,
    text_field: str = "text",
    cache_dir: Path | None = None,
) -> Members:
    """The customer messages of `source` that `model` assigns to `topic_id` (what a split
    re-clusters), with their embeddings."""
    corpus = customer_texts(source, text_field=text_field)
    embeddings = embed_texts(encoder, corpus.texts, cache_dir)
    index = model.index_of(topic_id)
    rows = np.flatnonzero(model.assign(embeddings).topic == index) if index is not None else np.zeros(0, dtype=int)
    return Members([corpus.texts[int(i)] for i in rows], embeddings[rows])
