"""The FastAPI application factory. Models load once, in the lifespan, before the server
accepts traffic; a missing or broken bundle stops start-up with a clear message."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from anyio.to_thread import run_sync as run_in_threadpool
from fastapi import FastAPI
from fastapi.routing import APIRoute

from nlp import __version__
from nlp.analyzer import Analyzer
from service.alerts.delivery import DeliveryWorker
from service.alerts.outbox import Outbox
from service.alerts.publisher import AlertPublisher
from service.alerts.webhooks import load_alert_config
from service.api.alert_routes import router as alert_router
from service.api.auth import ApiKeyMiddleware, document_api_keys, load_keyring
from service.api.docs_routes import router as docs_router
from service.api.errors import ERROR_RESPONSES, install_error_handlers
from service.api.ingest_routes import router as ingest_router
from service.api.ingest_routes import signed_paths
from service.api.lifecycle_routes import router as lifecycle_router
from service.api.limits import RequestGuardMiddleware, TimeBudgetMiddleware
from service.api.openapi_examples import install_examples
from service.api.request_context import RequestContextMiddleware
from service.api.routes import router
from service.api.topic_routes import router as topic_router
from service.api.ui_routes import router as ui_router
from service.conversations import ConversationRecorder
from service.metrics import instrument_analyzer, metrics_endpoint
from service.microbatch import MicroBatcher
from service.retention import RetentionPurger
from service.runtime import load_analyzer
from service.settings import Settings, get_settings
from service.store import ConversationStore
from service.store.migrate import open_database

log = logging.getLogger("convintel")


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operationId: its handler's name (`analyze_transcript`,
    `get_conversation`), what a generated client names the method."""
    return route.name


def create_app(settings: Settings | None = None, analyzer: Analyzer | None = None) -> FastAPI:
    """Build the app. `analyzer` lets tests share one loaded model between app instances."""
    settings = settings or get_settings()
    keyring = load_keyring(settings)  # before anything loads: bad keys fail fast
    signed = signed_paths(settings)  # helpdesk webhooks that check a signature instead of a key
    alert_config = load_alert_config(settings)  # and bad webhook settings

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.analyzer = analyzer or load_analyzer(settings)
        database = open_database(settings.store_url(), settings.database_pool())  # migrated to the newest schema
        app.state.store = ConversationStore(database, cache_messages=settings.state_cache_messages)
        instrument_analyzer(app.state.analyzer)
        app.state.batcher = MicroBatcher(
            app.state.analyzer,
            max_messages=settings.microbatch_max_messages,
            max_wait_ms=settings.microbatch_max_wait_ms,
        )
        await app.state.batcher.start()
        app.state.outbox = Outbox(database)  # always: GET /v1/alerts lists what earlier runs queued
        publisher = AlertPublisher(alert_config.targets, app.state.outbox) if alert_config.enabled else None
        app.state.recorder = ConversationRecorder(
            app.state.analyzer,
            app.state.store,
            app.state.batcher,
            max_messages=settings.max_messages,
            commit_group_max_messages=settings.commit_group_max_messages,
            alerts=publisher,
        )
        # Without webhooks nothing is delivered: pending events wait for them to be configured.
        worker = DeliveryWorker(app.state.outbox, alert_config) if alert_config.enabled else None
        if worker is not None:
            worker.start()
        purger = None
        if settings.retention_days:  # unset or 0: conversations are kept forever
            purger = RetentionPurger(
                app.state.store, days=settings.retention_days, interval_s=settings.retention_interval_s
            )
            await purger.start()
        log.info(
            "ready: model %s %s, store %s",
            app.state.analyzer.model_info.name,
            app.state.analyzer.model_info.version,
            database.describe(),
        )
        try:
            yield
        finally:
            if purger is not None:
                await purger.stop()  # before the store closes under it
            app.state.recorder = None
            if worker is not None:
                await run_in_threadpool(worker.stop)  # waits for an attempt in flight
            app.state.outbox.close()
            app.state.outbox = None
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
        generate_unique_id_function=operation_id,
        # FastAPI's pages load their scripts from a CDN; docs_routes serves both from a package.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.analyzer = None
    app.state.store = None
    # Middleware added last runs first: request id and logs, then keys, then the time
    # budget (it covers reading the body), then the body guard.
    app.state.batcher = None
    app.state.recorder = None
    app.state.outbox = None
    app.state.alert_config = alert_config
    app.add_middleware(RequestGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(TimeBudgetMiddleware, budget_s=settings.request_timeout_s)
    app.add_middleware(ApiKeyMiddleware, keyring=keyring, metrics_public=settings.metrics_public, signed_paths=signed)
    app.add_middleware(RequestContextMiddleware, settings=settings)
    install_error_handlers(app)
    app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(topic_router, responses=ERROR_RESPONSES)
    app.include_router(ingest_router, responses=ERROR_RESPONSES)
    app.include_router(alert_router, responses=ERROR_RESPONSES)
    app.include_router(lifecycle_router, responses=ERROR_RESPONSES)
    app.include_router(ui_router)  # the /ui page: open static files (service/ui/static)
    app.include_router(docs_router)  # /docs and /redoc, their files from the fastapi-offline package
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    install_examples(app)  # before document_api_keys, which builds on it
    if keyring.enabled:
        document_api_keys(app, signed)
    return app
