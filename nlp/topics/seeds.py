"""Seed topics: topics you expect, named in a YAML file, each with a description and/or
example messages. A seed's embedding is the normalised mean of the sentence embeddings
of its description and examples, in the shared encoder's space.

Two modes (as BERTopic's zero-shot and guided topic modelling):
- zero-shot: every message at least `seed_threshold` alike to a seed belongs to the most
  similar seed (which keeps its name and its embedding as centroid); topics are
  discovered among the other messages;
- guided: those messages are pulled half-way towards their seed before clustering, so the
  clustering tends to find the seeds; a discovered topic whose centroid is at least
  `seed_threshold` alike to a seed (one-to-one, Hungarian) takes the seed's name.

```yaml
topics:
  - name: Card activation
    description: activating a new bank card
    examples: ["How do I activate my card?", "my new card does not work yet"]
```"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from nlp.topics.clustering import UNASSIGNED, normalize_rows
from nlp.topics.edits import TopicName
from nlp.topics.matching import match_topics
from nlp.yaml_config import ConfigFileError, StrictModel, check_unique, read_validated

Encode = Callable[[list[str]], np.ndarray]


class SeedFileError(ConfigFileError):
    """The seed topics file is missing, not YAML, or does not validate."""


class SeedTopic(StrictModel):
    """One expected topic."""

    name: TopicName = Field(description="The topic's name, kept by every fit")
    description: str | None = Field(None, min_length=1, description="What the topic is about, in a sentence")
    examples: list[str] = Field(default_factory=list, description="Messages that belong to the topic")

    @model_validator(mode="after")
    def _has_text(self) -> SeedTopic:
        if not self.description and not any(e.strip() for e in self.examples):
            raise ValueError(f"seed topic {self.name!r} needs a description or examples")
        return self


class SeedFile(StrictModel):
    topics: list[SeedTopic] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> SeedFile:
        check_unique([t.name for t in self.topics], "seed topic")
        return self


@dataclass(frozen=True)
class Seeds:
    """Seed topic names and their (s, dim) L2-normalised embeddings."""

    names: list[str]
    vectors: np.ndarray


def load_seed_file(path: Path) -> SeedFile:
    """The validated seed file; any problem is one SeedFileError naming the file and key."""
    return read_validated(path, SeedFile, "seed topics", SeedFileError)


def embed_seeds(seed_file: SeedFile, encode: Encode) -> Seeds:
    """Each seed's embedding: the mean of its description's and examples' embeddings."""
    texts: list[str] = []
    owners: list[int] = []
    for index, topic in enumerate(seed_file.topics):
        for text in [topic.description or "", *topic.examples]:
            if text.strip():
                texts.append(text)
                owners.append(index)
    embeddings = normalize_rows(np.asarray(encode(texts), dtype=np.float32))
    sums = np.zeros((len(seed_file.topics), embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, np.array(owners), embeddings)
    return Seeds(names=[t.name for t in seed_file.topics], vectors=normalize_rows(sums))


def claim(embeddings: np.ndarray, seeds: Seeds, threshold: float) -> np.ndarray:
    """(n,) index of the most similar seed for messages at least `threshold` alike, else -1."""
    similarity = embeddings @ seeds.vectors.T
    best = similarity.argmax(axis=1)
    return np.where(similarity[np.arange(len(best)), best] >= threshold, best, UNASSIGNED).astype(np.int64)


def nudge(embeddings: np.ndarray, seeds: Seeds, threshold: float) -> np.ndarray:
    """Guided mode: embeddings of claimed messages moved half-way towards their seed."""
    claimed = claim(embeddings, seeds, threshold)
    moved = embeddings.copy()
    rows = np.flatnonzero(claimed >= 0)
    moved[rows] = normalize_rows(embeddings[rows] + seeds.vectors[claimed[rows]])
    return moved


def seed_names_for(centroids: np.ndarray, seeds: Seeds, threshold: float) -> dict[int, str]:
    """Guided mode: topic index -> seed name, for topics paired one-to-one with a seed at
    least `threshold` alike."""
    match = match_topics(seeds.vectors, list(range(len(seeds.names))), centroids, min_similarity=threshold)
    return {k: seeds.names[i] for k, i in enumerate(match.ids) if i < len(seeds.names)}
