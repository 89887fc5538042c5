"""Stable topic ids across refits: old and new topics are paired by centroid similarity
(Hungarian assignment, scipy's linear_sum_assignment); a pair counts as the same topic
when its centroids are at least `min_similarity` alike. Unpaired new topics get fresh
ids (never a retired one), unpaired old topics are reported as gone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

DEFAULT_MIN_SIMILARITY = 0.8


@dataclass(frozen=True)
class TopicMatch:
    """How a refit's topics relate to the previous model's."""

    ids: list[int]
    """Id for each new topic, in the new model's order."""
    kept: dict[int, float]
    """Id -> centroid similarity, for topics found again."""
    new: list[int]
    """Ids given to topics the previous model did not have."""
    gone: list[int]
    """Ids of previous topics with no counterpart now."""

    def to_dict(self) -> dict:
        return {"kept": {str(k): round(v, 4) for k, v in self.kept.items()}, "new": self.new, "gone": self.gone}


def match_topics(
    old_centroids: np.ndarray,
    old_ids: list[int],
    new_centroids: np.ndarray,
    *,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
    next_id: int | None = None,
) -> TopicMatch:
    """Pair new topics with old ones (maximum total similarity, one-to-one) and give ids."""
    count = new_centroids.shape[0]
    ids: list[int | None] = [None] * count
    kept: dict[int, float] = {}
    if old_centroids.shape[0] and count:
        similarity = new_centroids @ old_centroids.T
        rows, cols = linear_sum_assignment(similarity, maximize=True)
        for row, col in zip(rows, cols):
            if similarity[row, col] >= min_similarity:
                ids[row] = old_ids[col]
                kept[old_ids[col]] = float(similarity[row, col])
    fresh = max([*old_ids, (next_id or 0) - 1], default=-1) + 1
    new: list[int] = []
    for row in range(count):
        if ids[row] is None:
            ids[row] = fresh
            new.append(fresh)
            fresh += 1
    gone = [topic_id for topic_id in old_ids if topic_id not in kept]
    return TopicMatch(ids=[i for i in ids if i is not None], kept=kept, new=new, gone=gone)  # every row has one now
