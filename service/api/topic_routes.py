"""`/v1/topics`: the topics of the configured topic model, and their curation: rename
(`PATCH`), merge (`POST .../merge`), split (`POST .../split`) and delete (`DELETE
/v1/topics/{id}`), saved with the model and kept by `--previous` refits. The edits need
the `admin` scope when API keys are configured (the `topics` tag maps to no other)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from nlp.analyzer import Analyzer
from nlp.topics.edits import (
    MAX_SPLIT_PARTS,
    DeleteEdit,
    MergeEdit,
    RenameEdit,
    SplitEdit,
    TopicEditError,
    TopicName,
    UnknownTopicError,
)
from nlp.topics.model import ParentTopic, RetiredTopic, TopicEntry, TopicModel
from service.api.errors import ApiError, ErrorResponse
from service.api.routes import AnalyzerDep, SettingsDep
from service.settings import Settings
from service.topic_curation import NoTopicModel, NotSaved, curate

router = APIRouter()
MAX_SPLIT_TEXTS = 10_000  # one request's worth of messages to encode; an archive goes through the CLI
TopicId = Annotated[int, Path(description="Topic id (`GET /v1/topics`)")]

NO_MODEL: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No topic model is configured, or no topic with this id"}
}
EDIT_ERRORS: dict[int | str, dict[str, Any]] = {
    **NO_MODEL,
    422: {"model": ErrorResponse, "description": "The edit cannot apply (merge with itself, empty or taken name...)"},
}


class TopicsResponse(BaseModel):
    created: str = Field(description="When the topic model was fit")
    trained_on: dict[str, Any] = Field(description="Source, document count, unassigned share")
    topics: list[TopicEntry] = Field(description="Topics (seeded ones first, then largest first)")
    parents: list[ParentTopic] = Field(description="Parent topics grouping related topics, largest first")
    retired: list[RetiredTopic] = Field(description="Topics curation deleted, merged away or split")
    edits: list[dict[str, Any]] = Field(description="Curation log, oldest first")


class TopicEditResponse(TopicsResponse):
    saved: bool = Field(description="Written to the model folder (CONVINTEL_TOPIC_MODEL) as well as served")


class RenameRequest(BaseModel):
    name: TopicName = Field(description="New name: 1 to 80 characters, unique among the topics; refits keep it")


class MergeRequest(BaseModel):
    topics: list[int] = Field(min_length=1, description="Ids of the topics to merge into this one")
    name: TopicName | None = Field(None, description="Name of the merged topic (default: the first topic's)")


class SplitRequest(BaseModel):
    parts: int = Field(2, ge=2, le=MAX_SPLIT_PARTS, description="Number of topics to split it into")
    texts: list[str] = Field(
        min_length=2,
        max_length=MAX_SPLIT_TEXTS,
        description="Messages to re-cluster, e.g. an export of recent customer messages: those the topic "
        "holds are split with k-means (seeded)",
    )


def _response(model: TopicModel, cls: type[TopicsResponse] = TopicsResponse, **extra: Any) -> Any:
    manifest = model.manifest
    return cls(
        created=manifest.created,
        trained_on=manifest.trained_on,
        topics=manifest.topics,
        parents=manifest.parents,
        retired=manifest.retired,
        edits=manifest.edits,
        **extra,
    )


def _no_model() -> ApiError:
    return ApiError(
        404,
        "no_topic_model",
        "no topic model is configured: set CONVINTEL_TOPIC_MODEL to a folder from 'convintel topics fit'",
    )


def _edit(
    analyzer: Analyzer,
    settings: Settings,
    edit: RenameEdit | MergeEdit | SplitEdit | DeleteEdit,
    texts: list[str] | None = None,
) -> TopicEditResponse:
    """Apply one edit; its errors become 404 (no model, unknown topic) or 422 answers."""
    try:
        model = curate(analyzer, settings.topic_model, edit, texts or [])
    except NoTopicModel:
        raise _no_model() from None
    except UnknownTopicError as exc:
        raise ApiError(404, "unknown_topic", str(exc)) from None
    except TopicEditError as exc:
        raise ApiError(422, "invalid_topic_edit", str(exc)) from None
    except NotSaved as exc:
        raise ApiError(500, "topic_model_not_saved", str(exc)) from None
    return _response(model, TopicEditResponse, saved=settings.topic_model is not None)


@router.get("/v1/topics", response_model=TopicsResponse, tags=["topics"], responses=NO_MODEL)
def list_topics(analyzer: AnalyzerDep) -> TopicsResponse:
    """The configured topic model's topics (id, name, readable label, keywords, size,
    redacted examples, parent topic), its parent topics and its curation. Answers 404
    `no_topic_model` when the service runs without a topic model."""
    if analyzer.topics is None:
        raise _no_model()
    return _response(analyzer.topics)


@router.patch("/v1/topics/{topic_id}", response_model=TopicEditResponse, tags=["topics"], responses=EDIT_ERRORS)
def rename_topic(topic_id: TopicId, body: RenameRequest, analyzer: AnalyzerDep, settings: SettingsDep) -> Any:
    """Rename a topic. The name is pinned: a `--previous` refit keeps it for the topic it finds again."""
    return _edit(analyzer, settings, RenameEdit(topic=topic_id, name=body.name))


@router.post("/v1/topics/{topic_id}/merge", response_model=TopicEditResponse, tags=["topics"], responses=EDIT_ERRORS)
def merge_topics(topic_id: TopicId, body: MergeRequest, analyzer: AnalyzerDep, settings: SettingsDep) -> Any:
    """Merge the `topics` into this one (it keeps its id); a refit merges them again."""
    return _edit(analyzer, settings, MergeEdit(topics=[topic_id, *body.topics], name=body.name))


@router.post("/v1/topics/{topic_id}/split", response_model=TopicEditResponse, tags=["topics"], responses=EDIT_ERRORS)
def split_topic(topic_id: TopicId, body: SplitRequest, analyzer: AnalyzerDep, settings: SettingsDep) -> Any:
    """Split a topic into `parts` by re-clustering those of `texts` it holds; a refit that
    finds the topic whole again splits it again along the same parts."""
    return _edit(analyzer, settings, SplitEdit(topic=topic_id, parts=body.parts), body.texts)


@router.delete("/v1/topics/{topic_id}", response_model=TopicEditResponse, tags=["topics"], responses=EDIT_ERRORS)
def delete_topic(topic_id: TopicId, analyzer: AnalyzerDep, settings: SettingsDep) -> Any:
    """Delete a topic: messages nearest it are left unassigned, and a refit deletes it again."""
    return _edit(analyzer, settings, DeleteEdit(topic=topic_id))
