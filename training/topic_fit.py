"""`convintel topics fit`: an archive file -> customer texts -> shared-encoder embeddings
(cached by text, like training features) -> a saved topic model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlp.encoder import ENCODER_NAME, Encoder, packaged_model_version
from nlp.topics.config import TopicFitConfig
from nlp.topics.fit import FitResult, fit_topics
from nlp.topics.matching import DEFAULT_MIN_SIMILARITY
from nlp.topics.model import TopicModel
from training.features import FeatureCache
from training.topic_corpus import CorpusError, customer_texts


@dataclass(frozen=True)
class FileFit:
    result: FitResult
    documents: int
    skipped: int
    problems: list[str]


def encoder_info(encoder: Encoder) -> dict:
    """What a topic model records about the embedding space of its centroids."""
    return {"name": ENCODER_NAME, "package_version": packaged_model_version(), "dim": encoder.dim,
            "max_seq_length": encoder.max_seq_length}


def embed_texts(encoder: Encoder, texts: list[str], cache_dir: Path | None) -> np.ndarray:
    """(n, dim) sentence embeddings, encoding only texts the cache does not hold."""
    features = FeatureCache(cache_dir, encoder).features(texts, label="messages")
    return np.ascontiguousarray(features[:, : encoder.dim])


def fit_topic_file(source: Path, output: Path, encoder: Encoder, config: TopicFitConfig, *,
                   text_field: str = "text", previous: TopicModel | None = None,
                   match_similarity: float = DEFAULT_MIN_SIMILARITY, cache_dir: Path | None = None) -> FileFit:
    """Fit a topic model on the customer messages of `source` and save it in `output`."""
    corpus = customer_texts(source, text_field=text_field)
    if len(corpus.texts) < config.min_cluster_size:
        raise CorpusError(f"{source}: {len(corpus.texts)} customer messages; a fit needs at least "
                          f"min_cluster_size ({config.min_cluster_size})")
    embeddings = embed_texts(encoder, corpus.texts, cache_dir)
    result = fit_topics(corpus.texts, embeddings, config, previous=previous, match_similarity=match_similarity,
                        encoder_info=encoder_info(encoder), source=source.name)
    result.model.save(output)
    return FileFit(result=result, documents=len(corpus.texts), skipped=corpus.skipped, problems=corpus.problems)
