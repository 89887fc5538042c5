"""HTTP endpoints. Model work goes through the micro-batcher (service/api/microbatch.py): one
worker thread, with concurrent requests' messages sharing encoder passes. Handlers that do
model work are `async` and await it; SQLite work runs in FastAPI's thread pool, so neither
blocks the event loop."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from nlp.analyzer import AnalyzedTurn, Analyzer
from nlp.schemas import (
    IDENTIFIER_PATTERN, ConversationSummary, IncomingMessage, Timing, Transcript, TranscriptAnalysis,
)
from service.api.schemas import (
    BatchAnalysis, BatchRequest, BundleInfo, ConversationState, HealthResponse, MessageAppendResponse,
    ModelsResponse, StoredMessageView,
)
from service.api.errors import ApiError, ErrorResponse
from service.api.limits import check_messages, check_transcript
from service.metrics import record_escalations
from service.api.microbatch import MicroBatcher
from service.settings import Settings
from service.store import AppendResult, ConversationFull, ConversationStore, StoredConversation

router = APIRouter()

ConversationId = Annotated[str, Path(max_length=128, pattern=IDENTIFIER_PATTERN,
                                     description="The helpdesk's conversation id")]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_analyzer(request: Request) -> Analyzer:
    analyzer = getattr(request.app.state, "analyzer", None)
    if analyzer is None:
        raise ApiError(503, "not_ready", "models are not loaded yet")
    return analyzer


async def get_store(request: Request) -> ConversationStore:
    return request.app.state.store


async def get_batcher(request: Request) -> MicroBatcher:
    batcher = getattr(request.app.state, "batcher", None)
    if batcher is None:
        raise ApiError(503, "not_ready", "models are not loaded yet")
    return batcher


# The dependencies are `async` only so that FastAPI calls them on the event loop: a plain
# `def` dependency costs a thread-pool round trip each, four per request.
SettingsDep = Annotated[Settings, Depends(get_settings)]
AnalyzerDep = Annotated[Analyzer, Depends(get_analyzer)]
StoreDep = Annotated[ConversationStore, Depends(get_store)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]


@router.post("/v1/analyze", response_model=TranscriptAnalysis, tags=["analysis"])
async def analyze(transcript: Transcript, analyzer: AnalyzerDep, batcher: BatcherDep,
                  settings: SettingsDep) -> TranscriptAnalysis:
    """Analyse one transcript: every message, and the conversation as a whole."""
    check_transcript(transcript.messages, settings)
    result = await batcher.run(analyzer.analyze, transcript)
    record_escalations([result.conversation.escalation.level], path="analyze")
    return result


@router.post("/v1/analyze/batch", response_model=BatchAnalysis, tags=["analysis"])
async def analyze_batch(body: BatchRequest, analyzer: AnalyzerDep, batcher: BatcherDep,
                        settings: SettingsDep) -> BatchAnalysis:
    """Analyse several transcripts; their messages share encoder batches."""
    if len(body.transcripts) > settings.max_batch_transcripts:
        raise ApiError(413, "too_large",
                       f"transcripts has {len(body.transcripts)} items; the limit is {settings.max_batch_transcripts}",
                       [{"field": "transcripts", "message": f"more than {settings.max_batch_transcripts} transcripts"}])
    for index, transcript in enumerate(body.transcripts):
        check_transcript(transcript.messages, settings, field=f"transcripts.{index}.messages")
    results = await batcher.run(analyzer.analyze_batch, body.transcripts)
    record_escalations((r.conversation.escalation.level for r in results), path="analyze")
    timing = results[0].timing if results else Timing(total_ms=0.0, encode_ms=0.0)
    return BatchAnalysis(model=analyzer.model_info, results=results, timing=timing)


@router.post("/v1/conversations/{conversation_id}/messages", response_model=MessageAppendResponse,
             tags=["conversations"])
async def append_message(conversation_id: ConversationId, message: IncomingMessage, analyzer: AnalyzerDep,
                         batcher: BatcherDep, store: StoreDep, settings: SettingsDep) -> MessageAppendResponse:
    """Add one new message to a conversation: only this message is encoded; the
    conversation view is rebuilt from the stored analyses. Re-posting a message id that
    is already stored (a webhook retry) adds nothing and returns `duplicate: true`."""
    started = time.perf_counter()
    check_messages([message], settings, field="")
    turn: AnalyzedTurn | None = None
    encode_ms = 0.0
    with batcher.arrival() as arrival:
        if not await _is_stored(store, conversation_id, message.id):
            encode_started = time.perf_counter()
            turn = (await arrival.analyze_turns([message], [message.id or "pending"]))[0]
            encode_ms = (time.perf_counter() - encode_started) * 1000
    return await run_in_threadpool(_store_and_summarize, conversation_id, message, turn, analyzer, store, settings,
                                   started, encode_ms)


async def _is_stored(store: ConversationStore, conversation_id: str, message_id: str | None) -> bool:
    """Whether a retry: answered from memory when the conversation is cached, else from SQLite
    (off the event loop). Only saves the encoder pass: the write checks again."""
    if message_id is None:
        return False
    cached = store.cached_has_message(conversation_id, message_id)
    if cached is not None:
        return cached
    return await run_in_threadpool(store.find_message, conversation_id, message_id)


def _store_and_summarize(conversation_id: str, message: IncomingMessage, turn: AnalyzedTurn | None,
                         analyzer: Analyzer, store: ConversationStore, settings: Settings, started: float,
                         encode_ms: float) -> MessageAppendResponse:
    """Commit the analysed message with the conversation's new escalation level (or find
    the stored one when `turn` is None: a retry), and return the conversation view."""
    summaries: list[ConversationSummary] = []

    def escalation_level(conversation: StoredConversation) -> str:
        summaries.append(analyzer.summarize(conversation.analyses, conversation.turns, conversation.channel))
        return summaries[-1].escalation.level

    if turn is None:
        stored = store.get(conversation_id)
        assert stored is not None
        stored_message = next(m for m in stored.messages if m.id == message.id)
        appended = AppendResult(stored, stored_message, duplicate=True, previous_level=stored.escalation_level)
    else:
        try:
            appended = store.append(conversation_id, message, turn.analysis, analyzer.model_info.version,
                                    settings.max_messages, stored_text=turn.stored_text,
                                    escalation_level=escalation_level)
        except ConversationFull as exc:
            raise ApiError(413, "too_large", f"{exc}; the limit is {settings.max_messages}") from None
    if appended.duplicate:  # nothing was written, so nothing was summarised
        escalation_level(appended.conversation)
    summary = summaries[-1]
    # One alert per change, not one per message: the helpdesk acts on `changed`.
    summary.escalation.previous_level = appended.previous_level
    summary.escalation.changed = not appended.duplicate and summary.escalation.level != (
        appended.previous_level or "none")
    if summary.escalation.changed:
        record_escalations([summary.escalation.level], path="message")
    return MessageAppendResponse(
        conversation_id=conversation_id, message=appended.message.analysis, conversation=summary,
        duplicate=appended.duplicate, model=analyzer.model_info,
        timing=Timing(total_ms=round((time.perf_counter() - started) * 1000, 3), encode_ms=round(encode_ms, 3)),
    )


@router.get("/v1/conversations/{conversation_id}", response_model=ConversationState, tags=["conversations"],
            responses={404: {"model": ErrorResponse, "description": "Unknown conversation"}})
def get_conversation(conversation_id: ConversationId, analyzer: AnalyzerDep, store: StoreDep) -> ConversationState:
    """A stored conversation: its messages with their analyses, and the current summary."""
    stored = store.get(conversation_id)
    if stored is None:
        raise ApiError(404, "not_found", f"no conversation {conversation_id!r}")
    return _conversation_state(stored, analyzer)


def _conversation_state(stored: StoredConversation, analyzer: Analyzer) -> ConversationState:
    return ConversationState(
        conversation_id=stored.id, channel=stored.channel, customer_id=stored.customer_id,
        language=stored.language, metadata=stored.metadata, created_at=stored.created_at,
        updated_at=stored.updated_at,
        messages=[StoredMessageView(id=m.id, role=m.role, text=m.text, timestamp=m.timestamp, analysis=m.analysis)
                  for m in stored.messages],
        conversation=analyzer.summarize(stored.analyses, stored.turns, stored.channel), model=analyzer.model_info,
    )


@router.get("/v1/models", response_model=ModelsResponse, tags=["models"])
async def models(analyzer: AnalyzerDep) -> ModelsResponse:
    """The loaded model bundle: name, version, labels, dev metrics, training data."""
    manifest = analyzer.bundle.manifest
    return ModelsResponse(active=BundleInfo(
        name=manifest.name, version=manifest.version, created=manifest.created, description=manifest.description,
        encoder=manifest.encoder.model_dump(),
        tasks={task: entry.model_dump() for task, entry in manifest.tasks.items()},
    ))


@router.get("/healthz", response_model=HealthResponse, tags=["health"])
async def healthz() -> HealthResponse:
    """Liveness: the process answers."""
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=HealthResponse, tags=["health"],
            responses={503: {"model": HealthResponse}})
async def readyz(request: Request):
    """Readiness: models are loaded and the store is open."""
    analyzer = getattr(request.app.state, "analyzer", None)
    if analyzer is None or getattr(request.app.state, "store", None) is None:
        return JSONResponse(status_code=503, content={"status": "loading", "model": None})
    return HealthResponse(status="ready", model=analyzer.model_info)
