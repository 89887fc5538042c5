"""Two levels of topics: parent topics group related topics by agglomerative clustering
(average linkage, scipy) over the topic centroids. The linkage has no random step, and the
topics enter it in id order, so the same topics always get the same parents whatever
order a fit found them in."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

from nlp.topics.labels import topic_name
from nlp.topics.model import ParentTopic, TopicEntry

PARENT_KEYWORDS = 10  # terms kept per parent, as many as a topic keeps by default


def parent_groups(centroids: np.ndarray, similarity: float) -> np.ndarray:
    """(k,) group of each centroid row: rows join while their groups' average cosine
    similarity is at least `similarity`. Groups are numbered by first row."""
    count = centroids.shape[0]
    if count < 2:
        return np.zeros(count, dtype=np.int64)
    tree = linkage(centroids.astype(np.float64), method="average", metric="cosine")
    raw = fcluster(tree, t=1.0 - similarity, criterion="distance")
    _, first = np.unique(raw, return_index=True)
    order = {int(raw[row]): rank for rank, row in enumerate(sorted(first))}
    return np.array([order[int(r)] for r in raw], dtype=np.int64)


def assign_parents(
    topics: list[TopicEntry], centroids: np.ndarray, similarity: float
) -> tuple[list[TopicEntry], list[ParentTopic]]:
    """The topics with their `parent` set, and the parent topics, largest first. A parent's
    id is its smallest child topic id: topic ids are stable across refits, so a parent keeps
    its id while that topic stays in it (edits and refits elsewhere do not renumber it)."""
    by_id = sorted(range(len(topics)), key=lambda k: topics[k].id)
    groups = parent_groups(centroids[by_id], similarity) if topics else np.zeros(0, dtype=np.int64)
    members: dict[int, list[int]] = defaultdict(list)
    for row, group in zip(by_id, groups):
        members[int(group)].append(row)
    ranked = sorted(
        members.values(), key=lambda rows: (-sum(topics[k].size for k in rows), min(topics[k].id for k in rows))
    )
    parent_of: dict[int, int] = {}
    parents = []
    for rows in ranked:
        parent_id = min(topics[k].id for k in rows)
        rows = sorted(rows, key=lambda k: (-topics[k].size, topics[k].id))
        keywords = shared_keywords([topics[k] for k in rows])
        name = topics[rows[0]].name if len(rows) == 1 else topic_name(keywords)
        parents.append(
            ParentTopic(
                id=parent_id,
                name=name,
                keywords=keywords,
                topics=[topics[k].id for k in rows],
                size=sum(topics[k].size for k in rows),
            )
        )
        parent_of.update({k: parent_id for k in rows})
    updated = [topic.model_copy(update={"parent": parent_of[k]}) for k, topic in enumerate(topics)]
    return updated, parents


def shared_keywords(children: list[TopicEntry]) -> list[str]:
    """Terms of the children, each scored by the sizes of the children that rank it,
    discounted by rank (a child's first keyword counts most)."""
    scores: dict[str, float] = defaultdict(float)
    for child in children:
        for rank, term in enumerate(child.keywords):
            scores[term] += child.size / (rank + 1)
    return sorted(scores, key=lambda term: (-scores[term], term))[:PARENT_KEYWORDS]
