"""HTTP endpoints. Model work goes through the micro-batcher (service/microbatch.py): one
worker thread, with concurrent requests' messages sharing encoder passes. Handlers that do
model work are `async` and await it; SQLite work runs in FastAPI's thread pool, so neither
blocks the event loop."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from nlp.analyzer import Analyzer
from nlp.schemas import IDENTIFIER_PATTERN, IncomingMessage, Timing, Transcript, TranscriptAnalysis
from service.api.errors import ApiError, ErrorResponse
from service.api.limits import check_messages, check_transcript, conversation_full
from service.api.schemas import (
    BatchAnalysis,
    BatchRequest,
    BundleInfo,
    ConversationState,
    HealthResponse,
    MessageAppendResponse,
    ModelsResponse,
    StoredMessageView,
)
from service.conversations import ConversationFull, ConversationRecorder
from service.metrics import record_escalations
from service.microbatch import MicroBatcher
from service.settings import Settings
from service.store import ConversationStore, StoredConversation

router = APIRouter()

ConversationId = Annotated[
    str, Path(max_length=128, pattern=IDENTIFIER_PATTERN, description="The helpdesk's conversation id")
]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def loaded_state(request: Request, name: str) -> Any:
    """What the lifespan puts on the app's state once the models are loaded (503 before);
    for every router's dependencies."""
    value = getattr(request.app.state, name, None)
    if value is None:
        raise ApiError(503, "not_ready", "models are not loaded yet")
    return value


async def get_analyzer(request: Request) -> Analyzer:
    return loaded_state(request, "analyzer")


async def get_store(request: Request) -> ConversationStore:
    return loaded_state(request, "store")


async def get_batcher(request: Request) -> MicroBatcher:
    return loaded_state(request, "batcher")


async def get_recorder(request: Request) -> ConversationRecorder:
    return loaded_state(request, "recorder")


# The dependencies are `async` only so that FastAPI calls them on the event loop: a plain
# `def` dependency costs a thread-pool round trip each, four per request.
SettingsDep = Annotated[Settings, Depends(get_settings)]
AnalyzerDep = Annotated[Analyzer, Depends(get_analyzer)]
StoreDep = Annotated[ConversationStore, Depends(get_store)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]
RecorderDep = Annotated[ConversationRecorder, Depends(get_recorder)]


@router.post("/v1/analyze", response_model=TranscriptAnalysis, tags=["analysis"])
async def analyze_transcript(
    transcript: Transcript, analyzer: AnalyzerDep, batcher: BatcherDep, settings: SettingsDep
) -> TranscriptAnalysis:
    """Analyse one transcript: every message, and the conversation as a whole."""
    check_transcript(transcript.messages, settings)
    result = await batcher.run(analyzer.analyze, transcript)
    record_escalations([result.conversation.escalation.level], path="analyze")
    return result


@router.post("/v1/analyze/batch", response_model=BatchAnalysis, tags=["analysis"])
async def analyze_batch(
    body: BatchRequest, analyzer: AnalyzerDep, batcher: BatcherDep, settings: SettingsDep
) -> BatchAnalysis:
    """Analyse several transcripts; their messages share encoder batches."""
    if len(body.transcripts) > settings.max_batch_transcripts:
        raise ApiError(
            413,
            "too_large",
            f"transcripts has {len(body.transcripts)} items; the limit is {settings.max_batch_transcripts}",
            [{"field": "transcripts", "message": f"more than {settings.max_batch_transcripts} transcripts"}],
        )
    for index, transcript in enumerate(body.transcripts):
        check_transcript(transcript.messages, settings, field=f"transcripts.{index}.messages")
    results = await batcher.run(analyzer.analyze_batch, body.transcripts)
    record_escalations((r.conversation.escalation.level for r in results), path="analyze")
    timing = results[0].timing if results else Timing(total_ms=0.0, encode_ms=0.0)
    return BatchAnalysis(model=analyzer.model_info, results=results, timing=timing)


@router.post(
    "/v1/conversations/{conversation_id}/messages", response_model=MessageAppendResponse, tags=["conversations"]
)
async def append_message(
    conversation_id: ConversationId, message: IncomingMessage, recorder: RecorderDep, settings: SettingsDep
) -> MessageAppendResponse:
    """Add one new message to a conversation: only this message is encoded; the
    conversation view is rebuilt from the stored analyses. Re-posting a message id that
    is already stored (a webhook retry) adds nothing and returns `duplicate: true`."""
    started = time.perf_counter()
    check_messages([message], settings, field="")
    try:
        recorded = await recorder.record(conversation_id, message)
    except ConversationFull as exc:
        raise conversation_full(exc, settings) from None
    return MessageAppendResponse(
        conversation_id=conversation_id,
        message=recorded.message.analysis,
        conversation=recorded.summary,
        duplicate=recorded.duplicate,
        model=recorder.analyzer.model_info,
        timing=Timing(
            total_ms=round((time.perf_counter() - started) * 1000, 3), encode_ms=round(recorded.encode_ms, 3)
        ),
    )


@router.get(
    "/v1/conversations/{conversation_id}",
    response_model=ConversationState,
    tags=["conversations"],
    responses={404: {"model": ErrorResponse, "description": "Unknown conversation"}},
)
def get_conversation(conversation_id: ConversationId, analyzer: AnalyzerDep, store: StoreDep) -> ConversationState:
    """A stored conversation: its messages with their analyses, and the current summary."""
    stored = store.get(conversation_id)
    if stored is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id!r}")
    return _conversation_state(stored, analyzer)


def _conversation_state(stored: StoredConversation, analyzer: Analyzer) -> ConversationState:
    return ConversationState(
        conversation_id=stored.id,
        channel=stored.channel,
        customer_id=stored.customer_id,
        language=stored.language,
        metadata=stored.metadata,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
        messages=[
            StoredMessageView(id=m.id, role=m.role, text=m.text, timestamp=m.timestamp, analysis=m.analysis)
            for m in stored.messages
        ],
        conversation=analyzer.summarize(stored.analyses, stored.turns, stored.channel, metadata=stored.metadata),
        model=analyzer.model_info,
    )


@router.get("/v1/models", response_model=ModelsResponse, tags=["models"])
async def get_models(analyzer: AnalyzerDep) -> ModelsResponse:
    """The loaded model bundle: name, version, labels, dev metrics, training data."""
    manifest = analyzer.bundle.manifest
    return ModelsResponse(
        active=BundleInfo(
            name=manifest.name,
            version=manifest.version,
            created=manifest.created,
            description=manifest.description,
            encoder=manifest.encoder.model_dump(),
            tasks={task: entry.model_dump() for task, entry in manifest.tasks.items()},
        )
    )


@router.get("/healthz", response_model=HealthResponse, tags=["health"])
async def get_health() -> HealthResponse:
    """Liveness: the process answers."""
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=HealthResponse,
    tags=["health"],
    responses={503: {"model": HealthResponse, "description": 'Models still loading: `{"status": "loading"}`'}},
)
async def get_readiness(request: Request):
    """Readiness: models are loaded and the store is open."""
    analyzer = getattr(request.app.state, "analyzer", None)
    if analyzer is None or getattr(request.app.state, "store", None) is None:
        return JSONResponse(status_code=503, content={"status": "loading", "model": None})
    return HealthResponse(status="ready", model=analyzer.model_info)
