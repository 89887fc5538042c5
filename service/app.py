"""The FastAPI application factory. Models load once, in the lifespan, before the server
accepts traffic; a missing or broken bundle stops start-up with a clear message."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from nlp import __version__
from nlp.analyzer import Analyzer
from nlp.categories import load_categories
from nlp.policy import load_policy
from service.auth import ApiKeyMiddleware, document_api_keys, load_keyring
from service.errors import ERROR_RESPONSES, install_error_handlers
from service.limits import RequestGuardMiddleware, TimeBudgetMiddleware
from service.metrics import instrument_analyzer, metrics_endpoint
from service.request_context import RequestContextMiddleware
from service.microbatch import MicroBatcher
from service.routes import router
from service.topic_routes import router as topic_router
from service.settings import Settings, get_settings
from service.store import ConversationStore

if TYPE_CHECKING:
    from nlp.inspection import TextInspector

log = logging.getLogger("convintel")


def build_inspector(settings: Settings, *, screen_tokens: bool = True) -> TextInspector | None:
    """The spaCy text inspector `settings` ask for (cues, categories, redaction), or None.
    `screen_tokens=False` gives the reference path (every component on every message)."""
    categories = load_categories(settings.categories_file) if settings.match_categories else None
    if not (settings.detect_cues or settings.redact_pii or categories is not None):
        return None
    from nlp.inspection import TextInspector
    from nlp.redaction import Redactor

    return TextInspector(detect_cues=settings.detect_cues, redactor=Redactor() if settings.redact_pii else None,
                         categories=categories, screen_tokens=screen_tokens)


def load_analyzer(settings: Settings) -> Analyzer:
    """The analyzer for `settings`: policy, bundle, encoder, threads, text inspector and
    topic model (when configured)."""
    # Configuration files first: a bad one fails before the models load.
    policy = load_policy(settings.policy_file)
    inspector = build_inspector(settings)
    topics = None
    if settings.topic_model is not None:
        from nlp.topics.model import load_topic_model

        topics = load_topic_model(settings.topic_model)
    return Analyzer.load(
        settings.model_path, encoder_path=settings.encoder_path,
        batch_size=settings.encode_batch_size, num_threads=settings.torch_threads,
        policy=policy, inspector=inspector,
        backend=settings.encoder_backend, onnx_threads=settings.onnx_threads, cache_dir=settings.encoder_cache_dir,
        topics=topics, topic_min_similarity=settings.topic_min_similarity,
        heap_trim_interval_s=settings.heap_trim_interval_s,
    )


def create_app(settings: Settings | None = None, analyzer: Analyzer | None = None) -> FastAPI:
    """Build the app. `analyzer` lets tests share one loaded model between app instances."""
    settings = settings or get_settings()
    keyring = load_keyring(settings)  # before anything loads: bad keys fail fast

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.analyzer = analyzer or load_analyzer(settings)
        app.state.store = ConversationStore(settings.db_path, cache_messages=settings.state_cache_messages)
        instrument_analyzer(app.state.analyzer)
        app.state.batcher = MicroBatcher(app.state.analyzer, max_messages=settings.microbatch_max_messages,
                                         max_wait_ms=settings.microbatch_max_wait_ms)
        await app.state.batcher.start()
        log.info("ready: model %s %s, store %s", app.state.analyzer.model_info.name,
                 app.state.analyzer.model_info.version, settings.db_path)
        try:
            yield
        finally:
            await app.state.batcher.stop()
            app.state.batcher = None
            app.state.store.close()
            app.state.store = None

    app = FastAPI(
        title="convintel",
        version=__version__,
        description="Conversation intelligence for support teams: sentiment, emotions, urgency, "
                    "tags and escalation advice for customer conversations.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.analyzer = None
    app.state.store = None
    # Middleware added last runs first: request id and logs, then keys, then the time
    # budget (it covers reading the body), then the body guard.
    app.state.batcher = None
    app.add_middleware(RequestGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(TimeBudgetMiddleware, budget_s=settings.request_timeout_s)
    app.add_middleware(ApiKeyMiddleware, keyring=keyring, metrics_public=settings.metrics_public)
    app.add_middleware(RequestContextMiddleware, settings=settings)
    install_error_handlers(app)
    app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(topic_router, responses=ERROR_RESPONSES)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    if keyring.enabled:
        document_api_keys(app)
    return app
