"""Parameters of a topic fit. One dataclass, recorded in the saved model's manifest, so
a model says how it was made and a refit can reuse the same recipe."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

Reduction = Literal["pca", "umap", "none"]
SeedMode = Literal["zero-shot", "guided"]

# The size rule of `sizes_for_corpus` (how it was derived: its docstring).
CLUSTER_PER_ROOT = 0.1
"""Smallest topic = this x sqrt(documents)."""
MIN_CLUSTER_FLOOR = 3
FEW_COMPONENTS = 10
MANY_COMPONENTS = 30
MANY_COMPONENTS_FROM = 1_000
LARGE_CORPUS = 20_000
SMOOTHING_NEIGHBOURS = 5
SMOOTHING_FROM = 500
"""Smaller corpora are not smoothed: see `sizes_for_corpus`."""
TIGHTNESS_NEIGHBOURS = 5
"""A corpus's tightness: mean similarity of its documents to this many nearest others."""


@dataclass(frozen=True)
class TopicFitConfig:
    """How `fit_topics` reduces, clusters, cleans up and names topics."""

    reduction: Reduction = "pca"
    """'pca' (scikit-learn, default), 'umap' (the `topics-umap` extra) or 'none'."""
    n_components: int | None = None
    """Dimensions after reduction (None: from the corpus size, see `sized_for`). HDBSCAN's
    density estimate degrades in high dimensions."""
    min_cluster_size: int | None = None
    """Smallest group HDBSCAN keeps as a topic (None: from the corpus size)."""
    min_samples: int | None = None
    """HDBSCAN's density smoothing; lower keeps more points in clusters (None: from the
    corpus size)."""
    cluster_selection: Literal["eom", "leaf"] = "leaf"
    """'leaf' gives many fine-grained topics; 'eom' fewer, broader ones."""
    neighbours: int | None = None
    """Before clustering, each document's embedding is pulled towards the mean of this many
    nearest documents (0: no smoothing; None: from the corpus size). It denoises short
    messages: NMI rose on every bench corpus (nlp/topics/smoothing.py, docs/topics.md)."""
    smoothing_weight: float = 2.0
    """How strongly: embedding + weight x the neighbours' mean, normalised again."""
    outlier_threshold: float = 0.3
    """Cosine similarity to a topic centroid at or above which a document joins that topic
    (also the live-assignment floor: a message below it against every topic stays unassigned).
    0.4 left 28% of X-CI's tweets unassigned; 0.3 leaves 3% and no BANKING77 corpus loses by it."""
    refine_iterations: int = 20
    """Rounds of spherical k-means seeded by HDBSCAN's topics (1: plain outlier reassignment)."""
    merge_threshold: float | None = 0.85
    """Merge topics whose centroids are at least this similar (None: never merge on similarity).
    0.85 rather than 0.9 joins the near-duplicates that small minimum topic sizes split off
    (BANKING77 at 3,000 queries: NMI 0.797 -> 0.803; the sweep tried 0.8 to 0.9)."""
    merge_margin: float | None = 0.22
    """Loose corpora merge more: the merge threshold drops to the corpus's tightness (mean
    similarity of each document to its 5 nearest others) plus this margin, when that is
    below `merge_threshold` (None: `merge_threshold` alone). In a corpus whose documents
    are far even from their nearest neighbours, topics closer than that are not told
    apart reliably. Tight corpora are untouched (BANKING77, 0.74 to 0.86: capped at
    0.85); X-CI's tweets to brands (0.44 to 0.49) merge at about 0.66 to 0.71. Chosen on
    X-CI's train part: docs/topics.md (`merge_threshold_for`)."""
    target_topics: int | None = None
    """Merge the closest topics until at most this many remain (None: keep what HDBSCAN finds)."""
    top_terms: int = 10
    """Keywords kept per topic."""
    examples: int = 3
    """Representative examples kept per topic (closest to the centroid)."""
    label_sample: int = 64
    """Most documents per topic tagged with spaCy for the labels (a seeded sample)."""
    label_budget: int = 10_000
    """Most documents tagged in all: with many topics each gets budget / topics (at least 3).
    spaCy's tagging is the costly step of labelling, so this bounds it on large archives."""
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
        if self.n_components is not None and self.n_components < 2:
            raise ValueError("n_components must be at least 2")
        if self.min_cluster_size is not None and self.min_cluster_size < 2:
            raise ValueError("min_cluster_size must be at least 2")
        if self.min_samples is not None and self.min_samples < 1:
            raise ValueError("min_samples must be at least 1")
        if self.neighbours is not None and self.neighbours < 0:
            raise ValueError("neighbours must be 0 (no smoothing) or more")
        if self.smoothing_weight < 0:
            raise ValueError("smoothing_weight must not be negative")
        if not -1.0 <= self.outlier_threshold <= 1.0:
            raise ValueError("outlier_threshold is a cosine similarity in [-1, 1]")
        if self.refine_iterations < 1:
            raise ValueError("refine_iterations must be at least 1")
        if self.merge_margin is not None and self.merge_margin < 0:
            raise ValueError("merge_margin must not be negative")
        if self.target_topics is not None and self.target_topics < 1:
            raise ValueError("target_topics must be at least 1")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")

    def sized_for(self, documents: int) -> ClusterSizes:
        """The size-dependent settings for a corpus of `documents`: those set explicitly
        win, the others (None) follow `sizes_for_corpus`."""
        auto = sizes_for_corpus(documents)
        smallest = auto.min_cluster_size if self.min_cluster_size is None else self.min_cluster_size
        return ClusterSizes(
            n_components=auto.n_components if self.n_components is None else self.n_components,
            min_cluster_size=smallest,
            min_samples=min_samples_for(smallest) if self.min_samples is None else self.min_samples,
            neighbours=auto.neighbours if self.neighbours is None else self.neighbours,
        )

    def merge_threshold_for(self, tightness: float | None) -> float | None:
        """The similarity at which topics merge in a corpus of this tightness (mean cosine
        similarity of its documents to their nearest others; None: unknown): the lower of
        `merge_threshold` and tightness + `merge_margin`. None: no merging on similarity."""
        if self.merge_threshold is None or self.merge_margin is None or tightness is None:
            return self.merge_threshold
        return min(self.merge_threshold, tightness + self.merge_margin)

    def for_corpus(self, documents: int) -> TopicFitConfig:
        """This config with every size-dependent setting filled in for `documents` (what
        a fit records in its manifest, so a refit can repeat it exactly)."""
        return replace(self, **asdict(self.sized_for(documents)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TopicFitConfig:
        """Build from a manifest's `params`, ignoring keys this version does not know."""
        known = {f.name for f in fields(cls)}
        chosen = {key: value for key, value in values.items() if key in known}
        if "min_cluster_size" in chosen:  # resolved params from an older version: a fit without what it lacked
            chosen.setdefault("neighbours", 0)
            chosen.setdefault("merge_margin", None)
        return cls(**chosen)


@dataclass(frozen=True)
class ClusterSizes:
    """The settings that follow the corpus size."""

    n_components: int
    min_cluster_size: int
    min_samples: int
    neighbours: int


def sizes_for_corpus(documents: int) -> ClusterSizes:
    """Default reduction and HDBSCAN sizes for a corpus of `documents` messages.

    How it was chosen (bench/topic_sweep.py, clustering only, against BERTopic's defaults
    on the same embeddings): on BANKING77 train at 10,003 queries, on seeded subsamples of
    1,000 and 3,000 (3 seeds each) and on X-CI's train part (1,933 tweets, 11 domains).
    A fixed smallest topic fits one size only: 10 suits 10,000 queries but at 1,000 it
    finds 20 topics for 77 intents (NMI 0.66 against BERTopic's 0.74), while 3 suits
    1,000 and over-splits 10,000 (700 topics, ARI 0.22). The smallest topic that worked at
    each size grows like the square root of the corpus (3, 5, 10 at 1k, 3k, 10k), with
    min_samples at half of it. 30 PCA dimensions beat 5, 10 and 20 on the small corpora
    and on X-CI (50 gained nothing). Below 1,000 messages the later components are mostly
    noise (the 120-message planted fixture loses a topic at 30, not at 10); from
    `LARGE_CORPUS` documents on, 10 keep HDBSCAN's tree search affordable (its cost climbs
    steeply with dimensions), and at 10,003 queries 10 score as well (NMI 0.785 vs 0.793).

    Smoothing over 5 neighbours (weight 2) raised NMI on every corpus of the bench, from
    654 to 10,003 messages (the sweep tried 3, 4, 5, 10, 15 and 20 neighbours, weights 1 to
    3). Below `SMOOTHING_FROM` messages a topic has few members, and on the 120-message
    planted fixture 5 neighbours split one of its four topics in two: small corpora are
    left as they are."""
    root = math.sqrt(max(documents, 1))
    min_cluster_size = max(MIN_CLUSTER_FLOOR, round(CLUSTER_PER_ROOT * root))
    return ClusterSizes(
        n_components=MANY_COMPONENTS if MANY_COMPONENTS_FROM <= documents < LARGE_CORPUS else FEW_COMPONENTS,
        min_cluster_size=min_cluster_size,
        min_samples=min_samples_for(min_cluster_size),
        neighbours=SMOOTHING_NEIGHBOURS if documents >= SMOOTHING_FROM else 0,
    )


def min_samples_for(min_cluster_size: int) -> int:
    """HDBSCAN's min_samples by default: half the smallest topic (the sweep's best on every
    corpus; min_samples equal to it, HDBSCAN's own default, leaves more noise)."""
    return max(1, min_cluster_size // 2)
