"""Curating the service's loaded topic model through the API: one edit at a time (a lock,
so two edits never build on the same old model), saved to the model folder
(`CONVINTEL_TOPIC_MODEL`) before the service switches to it, so an edit either lands in
both or in neither."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from nlp.analyzer import Analyzer
from nlp.topics.edits import DeleteEdit, Members, MergeEdit, RenameEdit, SplitEdit, TopicEditError, apply_edit
from nlp.topics.model import TopicModel

_EDIT_LOCK = threading.Lock()


class NoTopicModel(LookupError):
    """The service runs without a topic model."""


class NotSaved(RuntimeError):
    """The edited model could not be written to the model folder; the service kept the old one."""


def curate(
    analyzer: Analyzer,
    folder: Path | None,
    edit: RenameEdit | MergeEdit | SplitEdit | DeleteEdit,
    texts: Sequence[str] = (),
) -> TopicModel:
    """Apply `edit` to the analyzer's topic model, save it in `folder` (when the model was
    loaded from one) and serve it. A split re-clusters those of `texts` the topic holds."""
    with _EDIT_LOCK:
        model = analyzer.topics
        if model is None:
            raise NoTopicModel("no topic model is configured")
        members = split_members(analyzer, model, edit.topic, texts) if isinstance(edit, SplitEdit) else None
        edited = apply_edit(model, edit, members=members)
        if folder is not None:
            try:
                edited.save(folder)
            except OSError as exc:
                raise NotSaved(f"cannot write the edited topic model to {folder}: {exc.strerror}") from exc
        analyzer.topics = edited
        return edited


def split_members(analyzer: Analyzer, model: TopicModel, topic_id: int, texts: Sequence[str]) -> Members | None:
    """The `texts` the model assigns to `topic_id`, embedded by the analyzer's encoder."""
    index = model.index_of(topic_id)
    if index is None:
        return None  # apply_edit names the unknown topic
    if not texts:
        raise TopicEditError("a split re-clusters the topic's messages: send them in 'texts'")
    embeddings = analyzer.encoder.encode(list(texts)).embeddings
    rows = [row for row, topic in enumerate(model.assign(embeddings).topic) if topic == index]
    return Members([texts[row] for row in rows], embeddings[rows])
