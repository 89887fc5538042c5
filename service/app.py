"""The FastAPI application factory. Models load once, in the lifespan, before the server
accepts traffic; a missing or broken bundle stops start-up with a clear message."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from nlp import __version__
from nlp.analyzer import Analyzer
from nlp.policy import load_policy
from service.errors import install_error_handlers
from service.limits import RequestGuardMiddleware
from service.routes import router
from service.topic_routes import router as topic_router
from service.settings import Settings, get_settings
from service.store import ConversationStore

log = logging.getLogger("convintel")


def load_analyzer(settings: Settings) -> Analyzer:
    """The analyzer for `settings`: policy, bundle, encoder, threads, text inspector and
    topic model (when configured)."""
    policy = load_policy(settings.policy_file)  # first: a bad policy fails before models load
    inspector = None
    if settings.detect_cues or settings.redact_pii:
        from nlp.inspection import TextInspector
        from nlp.redaction import Redactor

        inspector = TextInspector(detect_cues=settings.detect_cues,
                                  redactor=Redactor() if settings.redact_pii else None)
    topics = None
    if settings.topic_model is not None:
        from nlp.topics.model import load_topic_model

        topics = load_topic_model(settings.topic_model)
    return Analyzer.load(
        settings.model_path, encoder_path=settings.encoder_path,
        batch_size=settings.encode_batch_size, num_threads=settings.torch_threads,
        policy=policy, inspector=inspector, topics=topics, topic_min_similarity=settings.topic_min_similarity,
    )


def create_app(settings: Settings | None = None, analyzer: Analyzer | None = None) -> FastAPI:
    """Build the app. `analyzer` lets tests share one loaded model between app instances."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.analyzer = analyzer or load_analyzer(settings)
        app.state.store = ConversationStore(settings.db_path)
        log.info("ready: model %s %s, store %s", app.state.analyzer.model_info.name,
                 app.state.analyzer.model_info.version, settings.db_path)
        try:
            yield
        finally:
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
    app.add_middleware(RequestGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(topic_router)
    return app
