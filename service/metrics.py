"""Prometheus metrics, served at `/metrics`.

The metric objects are module level, so any part of the service can import and update
them (the micro-batcher: `ENCODE_BATCH_SIZE`, `QUEUE_DEPTH`). Routes are labelled with
their template (`/v1/conversations/{conversation_id}`), never the raw path, so the number
of series stays bounded whatever callers send.

With several worker processes, set `PROMETHEUS_MULTIPROC_DIR` to an empty folder: each
scrape then adds up every worker's figures (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from nlp.analyzer import Analyzer
    from nlp.encoder import EncodedBatch

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

HTTP_REQUEST_SECONDS = Histogram(
    "convintel_http_request_duration_seconds",
    "Time from receiving a request to sending the whole response, by route template, method and status",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_REQUESTS_IN_FLIGHT = Gauge(
    "convintel_http_requests_in_flight", "Requests being processed now", multiprocess_mode="livesum"
)
MODEL_INFERENCE_SECONDS = Histogram(
    "convintel_model_inference_seconds",
    "Duration of one encoder call (tokenise, transformer, pooling)",
    buckets=_LATENCY_BUCKETS,
)
ENCODE_BATCH_SIZE = Histogram(
    "convintel_encode_batch_size",
    "Messages per encoder call (a micro-batch when micro-batching is on)",
    buckets=_BATCH_BUCKETS,
)
COMMIT_GROUP_SIZE = Histogram(
    "convintel_commit_group_size",
    "Messages per store transaction of the per-message path (a group commit: service/group_commit.py)",
    buckets=_BATCH_BUCKETS,
)
QUEUE_DEPTH = Gauge(
    "convintel_encode_queue_depth",
    "Messages queued for the micro-batcher and not yet taken into a batch (the backlog while the model is busy)",
    multiprocess_mode="livesum",
)
ESCALATIONS = Counter(
    "convintel_escalations_total",
    "Escalation advice given, by level; `path=analyze` counts every analysed transcript, "
    "`path=message` counts a conversation's level changing on the per-message path",
    ["level", "path"],
)
INGEST_DELIVERIES = Counter(
    "convintel_ingest_deliveries_total",
    "Helpdesk webhook deliveries answered with success, by helpdesk and outcome: `recorded` (a new message), "
    "`duplicate` (a redelivery: nothing new) or `ignored` (no message to record, e.g. an internal note)",
    ["helpdesk", "outcome"],
)
ALERT_DELIVERIES = Counter(
    "convintel_alert_deliveries_total",
    "Alert events settled, by outcome: `delivered` (a 2xx answer) or `failed` (given up after "
    "CONVINTEL_ALERT_MAX_ATTEMPTS attempts, or its webhook is no longer configured)",
    ["outcome"],
)
ALERT_ATTEMPT_ERRORS = Counter(
    "convintel_alert_attempt_errors_total",
    "Delivery attempts that failed (a transport error or a non-2xx answer), retried or not",
)
ALERTS_PENDING = Gauge(
    "convintel_alerts_pending",
    "Alert events waiting to be delivered (from the outbox, after each pass of the delivery worker)",
    multiprocess_mode="livemax",  # every process reads the same outbox
)
CONVERSATIONS_DELETED = Counter(
    "convintel_conversations_deleted_total",
    "Conversations deleted, by reason: `delete` (DELETE /v1/conversations/{id}), `erase` (a customer's "
    "erasure), `retention` (the service's retention purge)",
    ["reason"],
)
# A gauge set to 1, not an Info metric: prometheus-client drops Info metrics in
# multiprocess mode (`serve --workers N`), gauges it aggregates.
MODEL_INFO = Gauge(
    "convintel_model_info",
    "The loaded model bundle (always 1; name and version are labels)",
    ["name", "version"],
    multiprocess_mode="livemax",
)


class TimedEncoder:
    """An encoder whose `encode` calls are timed (`MODEL_INFERENCE_SECONDS`) and counted
    (`ENCODE_BATCH_SIZE`); every other attribute is the wrapped encoder's."""

    def __init__(self, encoder: Any) -> None:
        self.wrapped = encoder

    def encode(self, texts: Sequence[str], keep_tokens: Sequence[bool] | None = None) -> EncodedBatch:
        started = time.perf_counter()
        result = self.wrapped.encode(texts) if keep_tokens is None else self.wrapped.encode(texts, keep_tokens)
        MODEL_INFERENCE_SECONDS.observe(time.perf_counter() - started)
        ENCODE_BATCH_SIZE.observe(len(texts))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def instrument_analyzer(analyzer: Analyzer) -> None:
    """Time the analyzer's encoder calls and publish its model name and version (idempotent)."""
    if not isinstance(analyzer.encoder, TimedEncoder):
        analyzer.encoder = TimedEncoder(analyzer.encoder)
    MODEL_INFO.clear()
    MODEL_INFO.labels(name=analyzer.model_info.name, version=analyzer.model_info.version).set(1)


def record_escalations(levels: Iterable[str], path: str) -> None:
    """Count escalation advice given on `path` ('analyze' or 'message')."""
    for level in levels:
        ESCALATIONS.labels(level=level, path=path).inc()


def record_deletions(count: int, reason: str) -> None:
    """Count `count` conversations deleted for `reason` ('delete', 'erase' or 'retention')."""
    if count:
        CONVERSATIONS_DELETED.labels(reason=reason).inc(count)


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_endpoint(_: Request) -> Response:
    """Prometheus text exposition of every convintel metric."""
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)
