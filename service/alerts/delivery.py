"""The delivery worker: a background thread that sends due outbox entries, one at a time
in the order they were committed, and records each outcome.

An attempt succeeds on a 2xx answer. Anything else (a transport error, a timeout, any
other status) is a failed attempt: the entry waits `Backoff.delay` and is tried again,
until `CONVINTEL_ALERT_MAX_ATTEMPTS` attempts have failed; then it is `failed` until
`POST /v1/alerts/{id}/retry`. The body and event id of every attempt are the same;
the signature is made at the time of sending."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from nlp import __version__
from service.alerts.outbox import Outbox, OutboxEntry
from service.alerts.payloads import render_body
from service.alerts.signing import EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER, signature_header
from service.alerts.webhooks import AlertConfig
from service.metrics import ALERT_ATTEMPT_ERRORS, ALERT_DELIVERIES, ALERTS_PENDING

log = logging.getLogger("convintel.alerts")

# httpx applies its timeout to each phase (connecting, writing, reading, waiting for a
# pooled connection), so one attempt lasts at most about four timeouts. A claim holds its
# entry that long; past it, another server process may send it again (at least once).
CLAIM_LEASE_TIMEOUTS = 4
ERROR_TEXT_LIMIT = 300
"""Characters of an attempt's error kept in the outbox (`last_error`)."""
NOT_CONFIGURED = "its webhook is no longer configured (CONVINTEL_ALERT_WEBHOOK_URLS)"


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: after the n-th failed attempt the nominal wait is
    `base_s · 2^(n−1)`, at most `cap_s`; the actual wait is half of it plus a random
    share of the other half ("equal jitter"), so entries that failed together spread out,
    yet none comes back sooner than half its nominal wait."""

    base_s: float
    cap_s: float

    def nominal(self, failed_attempts: int) -> float:
        doublings = failed_attempts - 1
        if doublings >= math.log2(self.cap_s / self.base_s):  # also keeps 2**n from overflowing
            return self.cap_s
        return self.base_s * 2**doublings

    def delay(self, failed_attempts: int, rng: random.Random) -> float:
        """Seconds to wait after `failed_attempts` (≥ 1) failed attempts."""
        nominal = self.nominal(failed_attempts)
        return nominal / 2 + rng.uniform(0, nominal / 2)


class DeliveryWorker:
    """Delivers the outbox's due entries to the configured targets, in a daemon thread
    started by `start` and stopped by `stop` (the FastAPI lifespan does both)."""

    def __init__(
        self,
        box: Outbox,
        config: AlertConfig,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = box
        self.config = config
        self.backoff = Backoff(config.backoff_base_s, config.backoff_cap_s)
        self.lease_s = config.timeout_s * CLAIM_LEASE_TIMEOUTS
        self._rng = rng or random.Random()
        self._clock = clock
        self._client = httpx.Client(
            timeout=config.timeout_s, follow_redirects=False, headers={"User-Agent": f"convintel/{__version__}"}
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="convintel-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the attempt in progress, if any (waiting at most one claim lease:
        an entry still in flight then is sent again after a restart)."""
        self._stopping.set()
        self.outbox.wake()
        if self._thread is not None:
            self._thread.join(self.lease_s)
        self._client.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.deliver_due()
            except Exception:  # a locked or closed database must not end deliveries for good
                if self._stopping.is_set():
                    return
                log.exception("alert delivery pass failed; trying again in %s s", self.config.poll_interval_s)
            self.outbox.wait_for_work(self.config.poll_interval_s)

    def deliver_due(self) -> int:
        """Attempt every entry due now, oldest first; returns how many were attempted."""
        attempted = 0
        while not self._stopping.is_set():
            entry = self.outbox.claim_next(self._clock(), self.lease_s)
            if entry is None:
                break
            self._attempt(entry)
            attempted += 1
        ALERTS_PENDING.set(self.outbox.pending_count())
        return attempted

    def _attempt(self, entry: OutboxEntry) -> None:
        target = self.config.target(entry.target_url)
        if target is None:
            self.outbox.mark_failed(entry.seq, NOT_CONFIGURED)
            ALERT_DELIVERIES.labels(outcome="failed").inc()
            log.error("alert %s to %s failed: %s", entry.id, entry.target_name, NOT_CONFIGURED)
            return
        body = render_body(entry.body, entry.format)
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: entry.id,
            EVENT_TYPE_HEADER: entry.type,
            SIGNATURE_HEADER: signature_header(self.config.secret, body, int(self._clock())),
        }
        error = self._post(entry.target_url, body, headers)
        if error is None:
            self.outbox.mark_delivered(entry.seq)
            ALERT_DELIVERIES.labels(outcome="delivered").inc()
            log.info("alert %s delivered to %s", entry.id, entry.target_name)
            return
        error = error.replace(entry.target_url, entry.target_name)[:ERROR_TEXT_LIMIT]  # a URL may be a secret
        ALERT_ATTEMPT_ERRORS.inc()
        attempts = entry.attempts + 1
        if attempts >= self.config.max_attempts:
            self.outbox.mark_attempt_failed(entry.seq, error, retry_at=None)
            ALERT_DELIVERIES.labels(outcome="failed").inc()
            log.error("alert %s to %s failed after %d attempts: %s", entry.id, entry.target_name, attempts, error)
            return
        delay = self.backoff.delay(attempts, self._rng)
        self.outbox.mark_attempt_failed(entry.seq, error, retry_at=self._clock() + delay)
        log.warning(
            "alert %s to %s: attempt %d failed (%s); next in %.1f s",
            entry.id,
            entry.target_name,
            attempts,
            error,
            delay,
        )

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        """Send one attempt; None on a 2xx answer, else what went wrong."""
        try:
            response = self._client.post(url, content=body, headers=headers)
        except Exception as exc:  # whatever stops one attempt (transport, timeout, a bad URL) is a failed attempt
            return f"{type(exc).__name__}: {exc}"
        if response.is_success:
            return None
        return f"HTTP {response.status_code} {response.reason_phrase}".strip()
