"""`GET /v1/topics`: the topics of the configured topic model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from nlp.topics.model import TopicEntry
from service.api.errors import ApiError, ErrorResponse
from service.api.routes import AnalyzerDep

router = APIRouter()


class TopicsResponse(BaseModel):
    created: str = Field(description="When the topic model was fit")
    trained_on: dict[str, Any] = Field(description="Source, document count, unassigned share")
    topics: list[TopicEntry] = Field(description="Largest first")


@router.get(
    "/v1/topics",
    response_model=TopicsResponse,
    tags=["topics"],
    responses={
        404: {"model": ErrorResponse, "description": "No topic model is configured (CONVINTEL_TOPIC_MODEL unset)"}
    },
)
def list_topics(analyzer: AnalyzerDep) -> TopicsResponse:
    """The configured topic model's topics: id, name, keywords, size and example snippets.
    Answers 404 `no_topic_model` when the service runs without a topic model."""
    if analyzer.topics is None:
        raise ApiError(
            404,
            "no_topic_model",
            "no topic model is configured: set CONVINTEL_TOPIC_MODEL to a folder from 'convintel topics fit'",
        )
    manifest = analyzer.topics.manifest
    return TopicsResponse(created=manifest.created, trained_on=manifest.trained_on, topics=manifest.topics)
