"""Parameters of a topic fit. One dataclass, recorded in the saved model's manifest, so
a model says how it was made and a refit can reuse the same recipe."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Reduction = Literal["pca", "umap", "none"]
SeedMode = Literal["zero-shot", "guided"]


@dataclass(frozen=True)
class TopicFitConfig:
    """How `fit_topics` reduces, clusters, cleans up and names topics."""

    reduction: Reduction = "pca"
    """'pca' (scikit-learn, default), 'umap' (the `topics-umap` extra) or 'none'."""
    n_components: int = 10
    """Dimensions after reduction. HDBSCAN's density estimate degrades in high dimensions."""
    min_cluster_size: int = 10
    """Smallest group HDBSCAN keeps as a topic."""
    min_samples: int | None = 5
    """HDBSCAN's density smoothing; lower keeps more points in clusters."""
    cluster_selection: Literal["eom", "leaf"] = "leaf"
    """'leaf' gives many fine-grained topics; 'eom' fewer, broader ones."""
    outlier_threshold: float = 0.4
    """Cosine similarity to a topic centroid at or above which a document joins that topic
    (also the live-assignment floor: a message below it against every topic stays unassigned)."""
    refine_iterations: int = 20
    """Rounds of spherical k-means seeded by HDBSCAN's topics (1: plain outlier reassignment)."""
    merge_threshold: float | None = 0.9
    """Merge topics whose centroids are at least this similar (None: never merge on similarity)."""
    target_topics: int | None = None
    """Merge the closest topics until at most this many remain (None: keep what HDBSCAN finds)."""
    top_terms: int = 10
    """Keywords kept per topic."""
    examples: int = 3
    """Representative examples kept per topic (closest to the centroid)."""
    label_sample: int = 64
    """Most documents per topic parsed with spaCy for the labels (a seeded sample)."""
    label_budget: int = 10_000
    """Most documents parsed in all: with many topics each gets budget / topics (at least 3).
    spaCy's parse is the costly step of labelling, so this bounds it on large archives."""
    temperature: float = 0.05
    """Softmax temperature over centroid similarities for assignment confidence."""
    seed: int = 13
    seed_mode: SeedMode = "zero-shot"
    """With seed topics (`--seeds`): 'zero-shot' gives a seed every message at least
    `seed_threshold` alike and discovers topics in the rest; 'guided' pulls those messages
    towards their seed, clusters everything, and names the topics that match a seed."""
    seed_threshold: float = 0.5
    """Cosine similarity between a message and a seed topic's embedding (its description
    and examples) at or above which the message belongs to the seed (also the bar a
    discovered topic's centroid must reach to take a seed's name in 'guided' mode)."""
    parent_similarity: float = 0.5
    """Parent topics: average-linkage agglomeration of topic centroids, joining groups while
    their average cosine similarity is at least this (1: every topic its own parent)."""

    def __post_init__(self) -> None:
        if self.seed_mode not in ("zero-shot", "guided"):
            raise ValueError(f"seed_mode must be 'zero-shot' or 'guided', not {self.seed_mode!r}")
        if not -1.0 <= self.seed_threshold <= 1.0:
            raise ValueError("seed_threshold is a cosine similarity in [-1, 1]")
        if not -1.0 <= self.parent_similarity <= 1.0:
            raise ValueError("parent_similarity is a cosine similarity in [-1, 1]")
        if self.reduction not in ("pca", "umap", "none"):
            raise ValueError(f"reduction must be 'pca', 'umap' or 'none', not {self.reduction!r}")
        if self.n_components < 2:
            raise ValueError("n_components must be at least 2")
        if self.min_cluster_size < 2:
            raise ValueError("min_cluster_size must be at least 2")
        if not -1.0 <= self.outlier_threshold <= 1.0:
            raise ValueError("outlier_threshold is a cosine similarity in [-1, 1]")
        if self.refine_iterations < 1:
            raise ValueError("refine_iterations must be at least 1")
        if self.target_topics is not None and self.target_topics < 1:
            raise ValueError("target_topics must be at least 1")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TopicFitConfig:
        """Build from a manifest's `params`, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})
