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
from service.microbatch import MicroBatcher
from service.routes import router
from service.settings import Settings, get_settings
from service.store import ConversationStore

log = logging.getLogger("convintel")


def load_analyzer(settings: Settings) -> Analyzer:
    """The analyzer for `settings`: policy, bundle, encoder, threads and text inspector."""
    policy = load_policy(settings.policy_file)  # first: a bad policy fails before models load
    inspector = None
    if settings.detect_cues or settings.redact_pii:
        from nlp.inspection import TextInspector
        from nlp.redaction import Redactor

        inspector = TextInspector(detect_cues=settings.detect_cues,
                                  redactor=Redactor() if settings.redact_pii else None)
    return Analyzer.load(
        settings.model_path, encoder_path=settings.encoder_path,
        batch_size=settings.encode_batch_size, num_threads=settings.torch_threads,
        policy=policy, inspector=inspector,
        backend=settings.encoder_backend, onnx_threads=settings.onnx_threads, cache_dir=settings.encoder_cache_dir,
    )


def create_app(settings: Settings | None = None, analyzer: Analyzer | None = None) -> FastAPI:
    """Build the app. `analyzer` lets tests share one loaded model between app instances."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.analyzer = analyzer or load_analyzer(settings)
        app.state.store = ConversationStore(settings.db_path)
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
    app.state.batcher = None
    app.add_middleware(RequestGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(router)
    return app
