"""The alert outbox: one row per event and webhook target, in the conversation store's
database (the `alert_outbox` table, service/store/tables.py).

Rows are added by `add` on the connection of the conversation transaction that changed
the level (`publisher.py`), so an event exists exactly when its message and level were
committed: a crash can lose neither one without the other. Everything else (the delivery
worker, the API) goes through an `Outbox`, which shares the store's connection pool.

One row per target, not one event row with per-target delivery rows: each target's
delivery has its own status, attempts and retry, and an event id names exactly one
delivery (`GET /v1/alerts`, `POST /v1/alerts/{id}/retry`). Receivers de-duplicate per
receiver, so distinct ids for the same change at two receivers cost them nothing.

A `pending` row is due when `next_attempt_at` (unix seconds) has passed. A worker claims
it by pushing `next_attempt_at` past the attempt's lease in a write transaction (SQLite:
IMMEDIATE; PostgreSQL: the row locked, rows other workers hold skipped), so another server
process on the same database skips it; a worker that dies mid-attempt leaves it to be
claimed again once the lease runs out (at-least-once delivery). Per conversation and
target, rows are claimed in the order they were committed: a later event waits while an
earlier one is still pending."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, exists, func, insert, select, update
from sqlalchemy.orm import aliased

from service.alerts.events import EscalationChangedEvent
from service.alerts.webhooks import AlertFormat, WebhookTarget
from service.store.database import Database
from service.store.tables import alert_outbox

AlertStatus = Literal["pending", "delivered", "failed"]
ALERT_STATUSES: tuple[AlertStatus, ...] = get_args(AlertStatus)

_COLUMNS = tuple(alert_outbox.c)  # in OutboxEntry's field order
_c = alert_outbox.c


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class OutboxEntry:
    """One event for one target."""

    seq: int
    id: str
    type: str
    conversation_id: str
    target_url: str
    target_name: str
    format: AlertFormat
    body: str
    """The event JSON, as committed: every attempt sends it (or its Slack rendering) unchanged."""
    status: AlertStatus
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    last_attempt_at: str | None
    created_at: str
    delivered_at: str | None

    @classmethod
    def from_row(cls, row: Any) -> OutboxEntry:
        entry = cls(*row)
        entry.format = AlertFormat(entry.format)
        return entry


class AlertNotFound(LookupError):
    """No event has this id."""


class AlertNotRetryable(Exception):
    """Only a failed event can be retried; `status` is what it is."""

    def __init__(self, status: str) -> None:
        super().__init__(f"the event is {status}, not failed")
        self.status = status


def add(connection: Connection, event: EscalationChangedEvent, target: WebhookTarget) -> None:
    """Queue `event` for `target` on `connection`, inside the caller's transaction (the
    conversation transaction that committed the change): it is due at once."""
    connection.execute(
        insert(alert_outbox).values(
            id=event.id,
            type=event.type,
            conversation_id=event.conversation_id,
            target_url=target.url,
            target_name=target.name,
            format=target.format.value,
            body=event.model_dump_json(),
            status="pending",
            next_attempt_at=time.time(),
            created_at=event.created_at,
        )
    )


class Outbox:
    """The outbox table of `database`: claims and outcomes for the delivery worker, listing
    and retry for the API. Thread-safe; closing it leaves the database to its owner."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._work = threading.Event()

    def close(self) -> None:
        """Nothing to release: the connections are the database's (closed with the store)."""

    # --- waking the worker --------------------------------------------------------------

    def wake(self) -> None:
        """Tell this process's delivery worker that an event may be due now (it otherwise
        looks every `CONVINTEL_ALERT_POLL_INTERVAL_S`)."""
        self._work.set()

    def wait_for_work(self, timeout_s: float) -> None:
        """Return on `wake`, or after `timeout_s`."""
        self._work.wait(timeout_s)
        self._work.clear()

    # --- the delivery worker ------------------------------------------------------------

    def claim_next(self, now: float, lease_s: float) -> OutboxEntry | None:
        """The oldest due pending entry whose conversation has no older pending entry for
        the same target, held for `lease_s` seconds; None when nothing is due."""
        earlier = aliased(alert_outbox)
        older_pending = exists().where(
            earlier.c.target_url == _c.target_url,
            earlier.c.conversation_id == _c.conversation_id,
            earlier.c.status == "pending",
            earlier.c.seq < _c.seq,
        )
        query = (
            select(*_COLUMNS)
            .where(_c.status == "pending", _c.next_attempt_at <= now, ~older_pending)
            .order_by(_c.seq)
            .limit(1)
            .with_for_update(skip_locked=True, of=alert_outbox)
        )
        with self.database.write() as db:
            row = db.execute(query).first()
            if row is not None:
                db.execute(update(alert_outbox).where(_c.seq == row.seq).values(next_attempt_at=now + lease_s))
        return None if row is None else OutboxEntry.from_row(row)

    def mark_delivered(self, seq: int) -> None:
        now = _now_iso()
        self._update_pending(
            seq,
            status="delivered",
            attempts=_c.attempts + 1,
            next_attempt_at=None,
            last_error=None,
            last_attempt_at=now,
            delivered_at=now,
        )

    def mark_attempt_failed(self, seq: int, error: str, retry_at: float | None) -> None:
        """Count a failed attempt: pending again from `retry_at`, or failed when None."""
        self._update_pending(
            seq,
            status="failed" if retry_at is None else "pending",
            attempts=_c.attempts + 1,
            next_attempt_at=retry_at,
            last_error=error,
            last_attempt_at=_now_iso(),
        )

    def mark_failed(self, seq: int, error: str) -> None:
        """Fail an entry without an attempt (its target is no longer configured)."""
        self._update_pending(seq, status="failed", next_attempt_at=None, last_error=error)

    def _update_pending(self, seq: int, **values: Any) -> None:
        """Record an outcome for entry `seq`, if it is still pending."""
        with self.database.write() as db:
            db.execute(update(alert_outbox).where(_c.seq == seq, _c.status == "pending").values(**values))

    def pending_count(self) -> int:
        with self.database.read() as db:
            return db.execute(select(func.count()).where(_c.status == "pending")).scalar_one()

    # --- the API ------------------------------------------------------------------------

    def entries(self, status: AlertStatus | None, limit: int) -> list[OutboxEntry]:
        """Up to `limit` entries, newest first, of one status or all."""
        query = select(*_COLUMNS).order_by(_c.seq.desc()).limit(limit)
        if status:
            query = query.where(_c.status == status)
        with self.database.read() as db:
            rows = db.execute(query).all()
        return [OutboxEntry.from_row(row) for row in rows]

    def get(self, event_id: str) -> OutboxEntry | None:
        with self.database.read() as db:
            row = db.execute(select(*_COLUMNS).where(_c.id == event_id)).first()
        return None if row is None else OutboxEntry.from_row(row)

    def retry(self, event_id: str) -> OutboxEntry:
        """Make a failed entry pending again, due now, with a fresh count of attempts (its
        id, body and last error unchanged). Raises AlertNotFound or AlertNotRetryable."""
        with self.database.write() as db:
            updated = db.execute(
                update(alert_outbox)
                .where(_c.id == event_id, _c.status == "failed")
                .values(status="pending", attempts=0, next_attempt_at=time.time())
            ).rowcount
        entry = self.get(event_id)
        if entry is None:
            raise AlertNotFound(event_id)
        if not updated:
            raise AlertNotRetryable(entry.status)
        self.wake()
        return entry
