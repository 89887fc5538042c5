"""Curation of a fitted topic model: rename, merge, split (by re-clustering one topic's
messages) and delete. Each edit returns a new model (the old one is untouched, so a
rejected edit changes nothing), recorded in the manifest's edit log.

What makes edits survive a `--previous` refit is kept on the model itself:
- a renamed topic is `pinned_name`: the refit topic that keeps its id keeps its name;
- a topic merged away, deleted or split is *retired*: its centroid stays in the weights,
  the refit matches new topics against retired ones too (`fit.py`), and `replay_curation`
  redoes the edit on the topic that matched: merged into its partner again, deleted
  again, split again along the old parts' centroids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, Field, StringConstraints

from nlp.redaction import Redactor
from nlp.topics.clustering import nearest_centroids, normalize_rows
from nlp.topics.describe import describe_topics, readable_label
from nlp.topics.hierarchy import assign_parents, shared_keywords
from nlp.topics.labels import slug
from nlp.topics.model import RetiredTopic, TopicEntry, TopicModel

MAX_NAME = 80
MAX_SPLIT_PARTS = 10
KMEANS_RESTARTS = 10  # k-means++ starts per split; the best (lowest inertia) is kept
TopicName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)]


class TopicEditError(ValueError):
    """An edit that cannot apply (unknown topic, merge with itself, empty name...);
    the model is unchanged."""


class UnknownTopicError(TopicEditError):
    """The edit names a topic id the model does not have."""


class RenameEdit(BaseModel):
    """Give a topic a name of your own; refits keep it."""

    op: Literal["rename"] = "rename"
    topic: int = Field(description="Id of the topic to rename")
    name: TopicName = Field(description="New name (1 to 80 characters, unique among the topics)")


class MergeEdit(BaseModel):
    """Merge topics into the first one listed (it keeps its id); refits merge them again."""

    op: Literal["merge"] = "merge"
    topics: list[int] = Field(min_length=2, description="Ids of the topics to merge; the first keeps its id")
    name: TopicName | None = Field(None, description="Name of the merged topic (default: the first topic's)")


class SplitEdit(BaseModel):
    """Split a topic by re-clustering its messages (k-means, seeded); refits split it again."""

    op: Literal["split"] = "split"
    topic: int = Field(description="Id of the topic to split")
    parts: int = Field(2, ge=2, le=MAX_SPLIT_PARTS, description="Number of topics to split it into")
    into: list[int] = Field(default_factory=list, description="Ids the parts got (filled in when applied)")


class DeleteEdit(BaseModel):
    """Delete a topic: its messages stay unassigned, in refits too."""

    op: Literal["delete"] = "delete"
    topic: int = Field(description="Id of the topic to delete")


TopicEdit = Annotated[RenameEdit | MergeEdit | SplitEdit | DeleteEdit, Field(discriminator="op")]


@dataclass(frozen=True)
class Members:
    """Messages of the topic to split, with their L2-normalised sentence embeddings."""

    texts: Sequence[str]
    embeddings: np.ndarray


def apply_edit(
    model: TopicModel,
    edit: RenameEdit | MergeEdit | SplitEdit | DeleteEdit,
    *,
    members: Members | None = None,
    nlp=None,
    redactor: Redactor | None = None,
) -> TopicModel:
    """A new model with `edit` applied and logged. A split needs the topic's `members`
    (the CLI reads them from an archive, the API from the request)."""
    if isinstance(edit, RenameEdit):
        edited = rename_topic(model, edit.topic, edit.name)
    elif isinstance(edit, MergeEdit):
        edited = merge_topics(model, edit.topics, edit.name)
    elif isinstance(edit, DeleteEdit):
        edited = delete_topic(model, edit.topic)
    else:
        _index(model, edit.topic)  # an unknown topic is the clearer error
        if members is None:
            raise TopicEditError("a split re-clusters the topic's messages: give the messages to split")
        edited = split_topic(model, edit.topic, members, edit.parts, nlp=nlp, redactor=redactor)
        edit = edit.model_copy(update={"into": [t.id for t in edited.topics if t.id not in _ids(model)]})
    edited.manifest.edits.append(edit.model_dump())
    return edited


def rename_topic(model: TopicModel, topic_id: int, name: str) -> TopicModel:
    """`topic_id` named `name` (pinned, so refits keep it)."""
    index = _index(model, topic_id)
    name = _valid_name(model, name, {topic_id})
    topics = list(model.topics)
    topics[index] = topics[index].model_copy(update={"name": name, "tag": slug(name), "pinned_name": True})
    return _rebuild(model, topics, model.centroids)


def merge_topics(model: TopicModel, topic_ids: Sequence[int], name: str | None = None) -> TopicModel:
    """The topics merged into the first: sizes add up, the centroid is their size-weighted
    mean, keywords and examples are pooled; the others are retired as merged."""
    if len(topic_ids) < 2:
        raise TopicEditError("a merge needs at least two topics")
    repeated = sorted({t for t in topic_ids if list(topic_ids).count(t) > 1})
    if repeated:
        raise TopicEditError(f"cannot merge topic {repeated[0]} with itself")
    indexes = [_index(model, t) for t in topic_ids]
    if name is not None:
        name = _valid_name(model, name, set(topic_ids))
    merged = [model.topics[k] for k in indexes]
    weights = np.array([max(t.size, 1) for t in merged], dtype=np.float64)
    centroid = normalize_rows((weights[:, None] * model.centroids[indexes]).sum(axis=0, keepdims=True))[0]
    largest = max(merged, key=lambda t: t.size)
    keywords = shared_keywords(merged)[: max(len(t.keywords) for t in merged)]
    examples = _interleave([t.examples for t in sorted(merged, key=lambda t: -t.size)])[: model.config.examples]
    target = merged[0]
    entry = target.model_copy(
        update={
            "size": sum(t.size for t in merged),
            "keywords": keywords,
            "examples": examples,
            "representative": largest.representative,
            "label": readable_label(keywords, largest.representative) or target.label,
            "seeded": any(t.seeded for t in merged),
        }
    )
    if name is not None:
        entry = entry.model_copy(update={"name": name, "tag": slug(name), "pinned_name": True})
    topics, centroids = list(model.topics), model.centroids.copy()
    topics[indexes[0]], centroids[indexes[0]] = entry, centroid
    retired = [RetiredTopic(id=t.id, name=t.name, reason="merged", into=[target.id]) for t in merged[1:]]
    keep = [k for k in range(len(topics)) if k not in indexes[1:]]
    return _rebuild(model, [topics[k] for k in keep], centroids[keep], retired, model.centroids[indexes[1:]])


def delete_topic(model: TopicModel, topic_id: int) -> TopicModel:
    """The model without `topic_id`; its centroid becomes a sink that leaves the messages
    nearest it unassigned (rather than handing them to the next topic)."""
    index = _index(model, topic_id)
    keep = [k for k in range(len(model.topics)) if k != index]
    gone = model.topics[index]
    retired = [RetiredTopic(id=gone.id, name=gone.name, reason="deleted")]
    return _rebuild(model, [model.topics[k] for k in keep], model.centroids[keep], retired, model.centroids[[index]])


def split_topic(
    model: TopicModel,
    topic_id: int,
    members: Members,
    parts: int,
    *,
    into: Sequence[int] | None = None,
    init: np.ndarray | None = None,
    nlp=None,
    redactor: Redactor | None = None,
) -> TopicModel:
    """`topic_id` replaced by `parts` topics: its members clustered with k-means (seeded by
    the fit's seed), or sent to the nearest of the `init` centroids (a refit redoing a
    split), then named as a fit names topics. The parts get fresh ids (or `into`)."""
    index = _index(model, topic_id)
    embeddings = np.ascontiguousarray(members.embeddings, dtype=np.float32)
    if embeddings.shape[0] != len(members.texts):
        raise TopicEditError(f"{len(members.texts)} messages but {embeddings.shape[0]} embeddings")
    distinct = len({text.strip().lower() for text in members.texts})
    if distinct < parts:
        raise TopicEditError(
            f"topic {topic_id} has {distinct} distinct message(s) to re-cluster; a split into {parts} parts needs "
            f"at least {parts}"
        )
    if init is not None:
        labels, _ = nearest_centroids(embeddings, normalize_rows(init))
    else:
        from sklearn.cluster import KMeans

        kmeans = KMeans(n_clusters=parts, random_state=model.config.seed, n_init=KMEANS_RESTARTS)
        labels = kmeans.fit_predict(embeddings).astype(np.int64)
    if np.unique(labels).size < parts:
        raise TopicEditError(f"topic {topic_id}'s messages do not separate into {parts} parts")
    next_id = model.manifest.next_topic_id
    ids = list(into) if into is not None else list(range(next_id, next_id + parts))
    entries, centroids = describe_topics(
        members.texts, embeddings, labels, ids, model.config, nlp=nlp, redactor=redactor
    )
    taken = {t.name for k, t in enumerate(model.topics) if k != index}
    entries = [e if e.name not in taken else e.model_copy(update={"name": f"{e.name} #{e.id}"}) for e in entries]
    entries = [e.model_copy(update={"tag": slug(e.name)}) for e in entries]
    gone = model.topics[index]
    topics = [*model.topics[:index], *entries, *model.topics[index + 1 :]]
    all_centroids = np.concatenate([model.centroids[:index], centroids, model.centroids[index + 1 :]])
    retired = [RetiredTopic(id=gone.id, name=gone.name, reason="split", into=ids)]
    edited = _rebuild(model, topics, all_centroids, retired, model.centroids[[index]])
    edited.manifest.next_topic_id = max(edited.manifest.next_topic_id, max(ids) + 1)
    return edited


def replay_curation(
    previous: TopicModel,
    fitted: TopicModel,
    texts: Sequence[str],
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    nlp=None,
    redactor: Redactor | None = None,
) -> tuple[TopicModel, list[str]]:
    """Carry `previous`'s curation into a refit whose topics were matched against the
    previous live and retired topics (so a topic found again has its old id). Returns the
    curated model and one line per edit redone."""
    model = _rebuild(
        fitted, list(fitted.topics), fitted.centroids, previous.manifest.retired, previous.retired_centroids
    )
    model.manifest.edits = list(previous.manifest.edits)
    notes: list[str] = []
    for old in previous.topics:
        index = model.index_of(old.id)
        if old.pinned_name and index is not None and model.topics[index].name != old.name:
            name = old.name if all(t.name != old.name for t in model.topics) else f"{old.name} #{old.id}"
            model = rename_topic(model, old.id, name)
            notes.append(f"topic {old.id} keeps its name {name!r}")
    for gone in previous.manifest.retired:
        index = model.index_of(gone.id)
        if gone.reason == "split":  # also when only some parts were found
            model, note = _resplit(model, gone, previous, texts, embeddings, labels, fitted, nlp, redactor)
            notes += [note] if note else []
        elif index is None:
            continue
        elif gone.reason == "deleted":
            model = delete_topic(model, gone.id)
            notes.append(f"topic {gone.id} ({gone.name}) found again and deleted again")
        elif gone.reason == "merged":
            partner = gone.into[0]
            if model.index_of(partner) is not None:
                model = merge_topics(model, [partner, gone.id])
                notes.append(f"topic {gone.id} found again and merged into {partner} again")
            else:
                model = _reidentify(model, gone.id, partner, previous)
                notes.append(f"topic {gone.id} found again as {partner}, which it was merged into")
    # Tombstones of topics the refit found again were set aside while they were live; keep them.
    known = {t.id for t in model.topics} | {r.id for r in model.manifest.retired}
    lost = [k for k, r in enumerate(previous.manifest.retired) if r.id not in known]
    if lost:
        assert previous.retired_centroids is not None  # set by TopicModel
        retired = [previous.manifest.retired[k] for k in lost]
        model = _rebuild(model, list(model.topics), model.centroids, retired, previous.retired_centroids[lost])
    return model, notes


def _resplit(
    model: TopicModel,
    gone: RetiredTopic,
    previous: TopicModel,
    texts: Sequence[str],
    embeddings: np.ndarray,
    labels: np.ndarray,
    fitted: TopicModel,
    nlp,
    redactor: Redactor | None,
) -> tuple[TopicModel, str]:
    """Redo a split the refit did not reproduce on its own: the refit topics that matched
    the split topic or some of its parts are pooled and split again along the old parts'
    centroids (each message to the nearest), so the parts keep their ids and names."""
    parts = [(p, k) for p, k in ((p, previous.index_of(p)) for p in gone.into) if k is not None]
    found = [i for i in [gone.id, *(p for p, _ in parts)] if model.index_of(i) is not None]
    if len(parts) < 2 or not found or (gone.id not in found and len(found) == len(parts)):
        return model, ""  # parts retired since, the topic is gone, or the split is already there
    indexes = [k for k in (fitted.index_of(i) for i in found) if k is not None]
    rows = np.flatnonzero(np.isin(labels, indexes))
    members = Members([texts[int(i)] for i in rows], embeddings[rows])
    init = previous.centroids[[k for _, k in parts]]
    try:
        pooled = merge_topics(model, found) if len(found) > 1 else model
        model = split_topic(
            pooled, found[0], members, len(parts), into=[p for p, _ in parts], init=init, nlp=nlp, redactor=redactor
        )
    except TopicEditError as exc:
        return model, f"topic {gone.id} was split, but the refit's messages cannot be split again: {exc}"
    for part, index in parts:
        if previous.topics[index].pinned_name:
            model = rename_topic(model, part, previous.topics[index].name)
    return model, f"topic {gone.id} split again into {[p for p, _ in parts]}"


def _reidentify(model: TopicModel, old_id: int, new_id: int, previous: TopicModel) -> TopicModel:
    """Topic `old_id` takes the id (and a pinned name) of the topic it was merged into."""
    index = _index(model, old_id)
    topics = list(model.topics)
    update: dict = {"id": new_id}
    partner = previous.index_of(new_id)
    if partner is not None and previous.topics[partner].pinned_name:
        name = previous.topics[partner].name
        update.update(name=name, tag=slug(name), pinned_name=True)
    topics[index] = topics[index].model_copy(update=update)
    return _rebuild(model, topics, model.centroids)


def _rebuild(
    model: TopicModel,
    topics: list[TopicEntry],
    centroids: np.ndarray,
    retired: Sequence[RetiredTopic] = (),
    retired_centroids: np.ndarray | None = None,
) -> TopicModel:
    """A new model with these topics and centroids, `retired` added to (or replacing
    entries of the same id in) the retired list, and parents recomputed."""
    assert model.retired_centroids is not None  # set by TopicModel
    live = {t.id for t in topics}  # an id a split (re)created is live, not retired
    new_ids = {r.id for r in retired}
    keep = [k for k, r in enumerate(model.manifest.retired) if r.id not in new_ids and r.id not in live]
    fresh = [k for k, r in enumerate(retired) if r.id not in live]
    all_retired = [model.manifest.retired[k] for k in keep] + [retired[k] for k in fresh]
    stacked = [model.retired_centroids[keep]]
    if retired_centroids is not None and fresh:
        stacked.append(np.asarray(retired_centroids, dtype=np.float32)[fresh])
    topics, parents = assign_parents(topics, centroids, model.config.parent_similarity)
    manifest = model.manifest.model_copy(
        update={"topics": topics, "parents": parents, "retired": all_retired, "edits": list(model.manifest.edits)},
        deep=True,
    )
    return TopicModel(manifest=manifest, centroids=centroids, retired_centroids=np.concatenate(stacked))


def _index(model: TopicModel, topic_id: int) -> int:
    index = model.index_of(topic_id)
    if index is None:
        known = ", ".join(str(t.id) for t in model.topics[:20])
        raise UnknownTopicError(
            f"no topic with id {topic_id} (topics: {known}{'...' if len(model.topics) > 20 else ''})"
        )
    return index


def _ids(model: TopicModel) -> set[int]:
    return {t.id for t in model.topics}


def _valid_name(model: TopicModel, name: str, editing: set[int]) -> str:
    """`name` stripped, or TopicEditError when it is empty, too long or another topic's."""
    name = name.strip()
    if not name:
        raise TopicEditError("a topic name must not be empty")
    if len(name) > MAX_NAME:
        raise TopicEditError(f"a topic name has at most {MAX_NAME} characters")
    clash = next((t.id for t in model.topics if t.name == name and t.id not in editing), None)
    if clash is not None:
        raise TopicEditError(f"topic {clash} is already named {name!r}: topic names must be unique")
    return name


def _interleave(groups: Sequence[Sequence[str]]) -> list[str]:
    """First of each group, then the second of each..., skipping repeats."""
    out: list[str] = []
    for row in range(max((len(g) for g in groups), default=0)):
        out.extend(g[row] for g in groups if row < len(g) and g[row] not in out)
    return out
