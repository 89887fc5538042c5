"""A fitted topic model: topic centroids in the shared encoder's embedding space plus a
manifest (names, keywords, sizes, examples, fit parameters, what it was trained on).

Saved as a folder, never with pickle:
- `topics.safetensors`: `centroids` (k, dim) float32 and `topic_ids` (k,) int64, plus
  `retired_centroids` (r, dim) and `retired_ids` (r,) for topics curation retired;
- `manifest.json`: everything else, human-readable, with the curation (edit log, retired
  topics) that a `--previous` refit replays.

Live assignment is one matrix product: a message's sentence embedding (from the one
encoder pass the heads use) against the k centroids."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from nlp.errors import TopicModelError
from nlp.topics.config import TopicFitConfig

FORMAT = "convintel-topics"
FORMAT_VERSION = 2  # 2: curation, seeds, parent topics, labels (v1 models still load)
MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "topics.safetensors"


class TopicEntry(BaseModel):
    """One topic as the manifest (and `GET /v1/topics`) describes it."""

    id: int = Field(description="Stable id: a refit keeps the id of a topic it finds again")
    name: str = Field(description="Short human-readable name from the top terms")
    tag: str = Field(description="Tag-safe name, used as `topic:<tag>` in conversation tags")
    keywords: list[str] = Field(description="Terms that set the topic apart (c-TF-IDF), best first")
    size: int = Field(description="Documents in the topic when the model was fit")
    examples: list[str] = Field(description="Representative snippets (redacted), closest to the centroid first")
    representative: str = Field("", description="The most representative message, redacted")
    label: str = Field("", description="Readable label: the top keywords and the most representative message")
    parent: int | None = Field(None, description="Id of the parent topic (`parents`) this topic belongs to")
    seeded: bool = Field(False, description="Named by a seed topic (`--seeds`) rather than discovered")
    pinned_name: bool = Field(
        False, description="Named by a person (an edit) or a seed: a `--previous` refit keeps the name"
    )


class ParentTopic(BaseModel):
    """A group of related topics (agglomerative clustering over topic centroids)."""

    id: int = Field(description="Its smallest child topic id (so it stays while that topic is in the group)")
    name: str = Field(description="From the children's keywords, weighted by their size")
    keywords: list[str] = Field(description="Terms shared by the children, best first")
    topics: list[int] = Field(description="Ids of the child topics, largest first")
    size: int = Field(description="Documents in the children when they were fit")


class RetiredTopic(BaseModel):
    """A topic curation removed; its centroid stays in the weights so a refit recognises it."""

    id: int
    name: str
    reason: Literal["deleted", "merged", "split"]
    into: list[int] = Field(default_factory=list, description="Merged: the topic it joined; split: its parts")


class TopicManifest(BaseModel):
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    created: str
    encoder: dict[str, Any] = Field(description="The encoder whose embedding space the centroids live in")
    params: dict[str, Any] = Field(description="TopicFitConfig used for the fit")
    trained_on: dict[str, Any] = Field(description="Source, document count, unassigned share")
    topics: list[TopicEntry]
    refit: dict[str, Any] | None = Field(None, description="Matching against the previous model, when refit")
    next_topic_id: int = Field(0, description="First id a later refit may give a new topic (ids are never reused)")
    parents: list[ParentTopic] = Field(default_factory=list, description="Parent topics, largest first")
    edits: list[dict[str, Any]] = Field(
        default_factory=list, description="Curation log: every edit applied, in order (see nlp/topics/edits.py)"
    )
    retired: list[RetiredTopic] = Field(default_factory=list, description="Topics deleted, merged away or split")


@dataclass(frozen=True)
class Assignment:
    """Nearest-topic assignment for n embeddings (row order kept)."""

    topic: np.ndarray
    """(n,) index into the model's topics, -1 where no centroid is similar enough."""
    similarity: np.ndarray
    """(n,) cosine similarity to the nearest centroid."""
    confidence: np.ndarray
    """(n,) softmax probability of the nearest topic over all topics (0 when unassigned)."""


@dataclass
class TopicModel:
    """Centroids and their manifest."""

    manifest: TopicManifest
    centroids: np.ndarray
    retired_centroids: np.ndarray | None = None
    """(r, dim), aligned with `manifest.retired`; None: no retired topics."""
    config: TopicFitConfig = field(init=False)

    def __post_init__(self) -> None:
        self.centroids = np.ascontiguousarray(self.centroids, dtype=np.float32)
        retired = len(self.manifest.retired)
        if self.retired_centroids is None:
            self.retired_centroids = np.zeros((0, self.centroids.shape[1] if self.centroids.ndim == 2 else 0))
        self.retired_centroids = np.ascontiguousarray(self.retired_centroids, dtype=np.float32)
        if self.retired_centroids.shape[0] != retired:
            raise TopicModelError(f"{self.retired_centroids.shape[0]} retired centroids for {retired} retired topics")
        if self.centroids.ndim != 2 or self.centroids.shape[0] != len(self.manifest.topics):
            raise TopicModelError(
                f"{self.centroids.shape[0] if self.centroids.ndim == 2 else '?'} centroids for "
                f"{len(self.manifest.topics)} topics"
            )
        self.config = TopicFitConfig.from_dict(self.manifest.params)

    @property
    def topics(self) -> list[TopicEntry]:
        return self.manifest.topics

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    def index_of(self, topic_id: int) -> int | None:
        """Position of topic `topic_id` in `topics` (None: no such topic)."""
        return next((k for k, t in enumerate(self.topics) if t.id == topic_id), None)

    def sinks(self) -> np.ndarray:
        """Centroids of deleted topics: a message nearest one of them stays unassigned."""
        deleted = [k for k, r in enumerate(self.manifest.retired) if r.reason == "deleted"]
        assert self.retired_centroids is not None  # set in __post_init__
        return self.retired_centroids[deleted]

    def assign(self, embeddings: np.ndarray, threshold: float | None = None) -> Assignment:
        """Nearest topic for L2-normalised `embeddings`; below `threshold` (default: the
        fit's outlier threshold) a row stays unassigned."""
        threshold = self.config.outlier_threshold if threshold is None else threshold
        n = embeddings.shape[0]
        if n == 0 or not self.topics:
            return Assignment(np.full(n, -1), np.zeros(n, np.float32), np.zeros(n, np.float32))
        if embeddings.shape[1] != self.dim:
            raise TopicModelError(f"embeddings have {embeddings.shape[1]} dimensions; the topic model {self.dim}")
        embeddings = embeddings.astype(np.float32, copy=False)
        similarity = embeddings @ self.centroids.T
        best = similarity.argmax(axis=1)
        best_similarity = similarity[np.arange(n), best]
        logits = (similarity - best_similarity[:, None]) / self.config.temperature
        confidence = 1.0 / np.exp(logits).sum(axis=1)  # softmax probability of the argmax
        assigned = best_similarity >= threshold
        seeded = np.flatnonzero([t.seeded for t in self.topics])
        if seeded.size and self.config.seed_mode == "zero-shot":
            # Zero-shot seeds claim the messages close enough to them before discovered topics do.
            seed_best = seeded[similarity[:, seeded].argmax(axis=1)]
            claimed = similarity[np.arange(n), seed_best] >= self.config.seed_threshold
            best = np.where(claimed, seed_best, best)
            best_similarity = similarity[np.arange(n), best]
            assigned |= claimed
        sinks = self.sinks()
        if sinks.shape[0]:
            assigned &= (embeddings @ sinks.T).max(axis=1) <= best_similarity  # a deleted topic's messages
        return Assignment(
            topic=np.where(assigned, best, -1),
            similarity=best_similarity,
            confidence=np.where(assigned, confidence, 0.0).astype(np.float32),
        )

    def save(self, folder: str | Path) -> Path:
        """Write `topics.safetensors` and `manifest.json` into `folder` (created). Each file
        is written beside its final name and then renamed over it, so an edit saved into the
        folder a service loaded never leaves a half-written file."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        ids = np.array([t.id for t in self.topics], dtype=np.int64)
        retired_ids = np.array([t.id for t in self.manifest.retired], dtype=np.int64)
        assert self.retired_centroids is not None  # set in __post_init__
        weights, manifest = folder / f".{WEIGHTS_FILE}.tmp", folder / f".{MANIFEST_FILE}.tmp"
        save_file(
            {
                "centroids": self.centroids,
                "topic_ids": ids,
                "retired_centroids": self.retired_centroids,
                "retired_ids": retired_ids,
            },
            str(weights),
            metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)},
        )
        manifest.write_text(self.manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
        weights.replace(folder / WEIGHTS_FILE)
        manifest.replace(folder / MANIFEST_FILE)
        return folder


def load_topic_model(folder: str | Path) -> TopicModel:
    """Load a saved topic model; any problem is one TopicModelError naming the file."""
    folder = Path(folder)
    manifest_path, weights_path = folder / MANIFEST_FILE, folder / WEIGHTS_FILE
    if not folder.is_dir():
        raise TopicModelError(f"topic model folder {folder} does not exist")
    try:
        manifest = TopicManifest.model_validate_json(manifest_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TopicModelError(f"cannot read {manifest_path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise TopicModelError(f"{manifest_path} is not UTF-8 text") from exc
    except ValidationError as exc:
        raise TopicModelError(
            f"{manifest_path} is not a topic manifest: {exc.errors()[0]['msg']} "
            f"at {'.'.join(map(str, exc.errors()[0]['loc']))}"
        ) from exc
    if manifest.format != FORMAT or manifest.format_version > FORMAT_VERSION:
        raise TopicModelError(
            f"{manifest_path}: format {manifest.format!r} v{manifest.format_version} "
            f"is not {FORMAT!r} v{FORMAT_VERSION} or older"
        )
    try:
        tensors = load_file(str(weights_path))
    except (OSError, SafetensorError, ValueError) as exc:
        raise TopicModelError(f"cannot read {weights_path}: {exc}") from exc
    if "centroids" not in tensors or "topic_ids" not in tensors:
        raise TopicModelError(f"{weights_path} lacks 'centroids' or 'topic_ids'")
    if tensors["topic_ids"].tolist() != [t.id for t in manifest.topics]:
        raise TopicModelError(f"{weights_path}: topic ids do not match {manifest_path}")
    retired_ids = tensors.get("retired_ids", np.zeros(0, dtype=np.int64)).tolist()
    if retired_ids != [t.id for t in manifest.retired]:
        raise TopicModelError(f"{weights_path}: retired topic ids do not match {manifest_path}")
    try:
        return TopicModel(
            manifest=manifest, centroids=tensors["centroids"], retired_centroids=tensors.get("retired_centroids")
        )
    except (TopicModelError, ValueError) as exc:
        raise TopicModelError(f"{folder}: {exc}") from exc


def describe(manifest: TopicManifest) -> str:
    """One line per topic for the CLI (id, size, parent, name and label), then the parents."""
    lines = [
        f"{len(manifest.topics)} topics in {len(manifest.parents)} parent topics, "
        f"unassigned share {manifest.trained_on.get('unassigned_share', 0):.1%}"
    ]
    for topic in manifest.topics:
        parent = "-" if topic.parent is None else f"P{topic.parent}"
        seeded = " (seeded)" if topic.seeded else ""
        lines.append(f"  {topic.id:>4}  {topic.size:>6}  {parent:>4}  {topic.name}{seeded}  {topic.label}")
    for parent_topic in manifest.parents:
        lines.append(f"  P{parent_topic.id}: {parent_topic.name}  topics {parent_topic.topics}")
    return "\n".join(lines)
