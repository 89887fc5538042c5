"""The alert outbox: one SQLite row per event and webhook target, in the conversation
store's file.

Rows are added by `add` on the connection of the conversation transaction that changed
the level (`publisher.py`), so an event exists exactly when its message and level were
committed: a crash can lose neither one without the other. Everything else (the delivery
worker, the API) goes through an `Outbox`, which holds its own connection to the file.

One row per target, not one event row with per-target delivery rows: each target's
delivery has its own status, attempts and retry, and an event id names exactly one
delivery (`GET /v1/alerts`, `POST /v1/alerts/{id}/retry`). Receivers de-duplicate per
receiver, so distinct ids for the same change at two receivers cost them nothing.

A `pending` row is due when `next_attempt_at` (unix seconds) has passed. A worker claims
it by pushing `next_attempt_at` past the attempt's lease in an IMMEDIATE transaction, so
another server process on the same file skips it; a worker that dies mid-attempt leaves
it to be claimed again once the lease runs out (at-least-once delivery). Per conversation
and target, rows are claimed in the order they were committed: a later event waits while
an earlier one is still pending."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from service.alerts.events import EscalationChangedEvent
from service.alerts.webhooks import AlertFormat, WebhookTarget

AlertStatus = Literal["pending", "delivered", "failed"]
ALERT_STATUSES: tuple[AlertStatus, ...] = get_args(AlertStatus)
SQLITE_BUSY_TIMEOUT_S = 30.0  # as the conversation store: writers queue rather than fail

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    target_url TEXT NOT NULL,
    target_name TEXT NOT NULL,
    format TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    last_error TEXT,
    last_attempt_at TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS alert_outbox_order ON alert_outbox (target_url, conversation_id, status, seq);
"""

_COLUMNS = (
    "seq, id, type, conversation_id, target_url, target_name, format, body, status, attempts,"
    " next_attempt_at, last_error, last_attempt_at, created_at, delivered_at"
)


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
    def from_row(cls, row: tuple) -> OutboxEntry:
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


def add(connection: sqlite3.Connection, event: EscalationChangedEvent, target: WebhookTarget) -> None:
    """Queue `event` for `target` on `connection`, inside the caller's transaction (the
    conversation transaction that committed the change): it is due at once."""
    connection.execute(
        "INSERT INTO alert_outbox (id, type, conversation_id, target_url, target_name, format, body, status,"
        " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
        (
            event.id,
            event.type,
            event.conversation_id,
            target.url,
            target.name,
            target.format.value,
            event.model_dump_json(),
            time.time(),
            event.created_at,
        ),
    )


class Outbox:
    """The outbox table of the store file at `path`: claims and outcomes for the delivery
    worker, listing and retry for the API. Thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_S
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._work = threading.Event()

    def close(self) -> None:
        with self._lock:
            self._db.close()

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
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    f"SELECT {_COLUMNS} FROM alert_outbox AS o WHERE status = 'pending' AND next_attempt_at <= ?"
                    " AND NOT EXISTS (SELECT 1 FROM alert_outbox AS e WHERE e.target_url = o.target_url"
                    " AND e.conversation_id = o.conversation_id AND e.status = 'pending' AND e.seq < o.seq)"
                    " ORDER BY seq LIMIT 1",
                    (now,),
                ).fetchone()
                if row is not None:
                    self._db.execute(
                        "UPDATE alert_outbox SET next_attempt_at = ? WHERE seq = ?", (now + lease_s, row[0])
                    )
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return None if row is None else OutboxEntry.from_row(row)

    def mark_delivered(self, seq: int) -> None:
        now = _now_iso()
        with self._lock:
            self._db.execute(
                "UPDATE alert_outbox SET status = 'delivered', attempts = attempts + 1, next_attempt_at = NULL,"
                " last_error = NULL, last_attempt_at = ?, delivered_at = ? WHERE seq = ? AND status = 'pending'",
                (now, now, seq),
            )

    def mark_attempt_failed(self, seq: int, error: str, retry_at: float | None) -> None:
        """Count a failed attempt: pending again from `retry_at`, or failed when None."""
        status = "failed" if retry_at is None else "pending"
        with self._lock:
            self._db.execute(
                "UPDATE alert_outbox SET status = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
                " last_attempt_at = ? WHERE seq = ? AND status = 'pending'",
                (status, retry_at, error, _now_iso(), seq),
            )

    def mark_failed(self, seq: int, error: str) -> None:
        """Fail an entry without an attempt (its target is no longer configured)."""
        with self._lock:
            self._db.execute(
                "UPDATE alert_outbox SET status = 'failed', next_attempt_at = NULL, last_error = ?"
                " WHERE seq = ? AND status = 'pending'",
                (error, seq),
            )

    def pending_count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM alert_outbox WHERE status = 'pending'").fetchone()[0]

    # --- the API ------------------------------------------------------------------------

    def entries(self, status: AlertStatus | None, limit: int) -> list[OutboxEntry]:
        """Up to `limit` entries, newest first, of one status or all."""
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM alert_outbox {where} ORDER BY seq DESC LIMIT ?", (*params, limit)
            ).fetchall()
        return [OutboxEntry.from_row(row) for row in rows]

    def get(self, event_id: str) -> OutboxEntry | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM alert_outbox WHERE id = ?", (event_id,)).fetchone()
        return None if row is None else OutboxEntry.from_row(row)

    def retry(self, event_id: str) -> OutboxEntry:
        """Make a failed entry pending again, due now, with a fresh count of attempts (its
        id, body and last error unchanged). Raises AlertNotFound or AlertNotRetryable."""
        with self._lock:
            updated = self._db.execute(
                "UPDATE alert_outbox SET status = 'pending', attempts = 0, next_attempt_at = ?"
                " WHERE id = ? AND status = 'failed'",
                (time.time(), event_id),
            ).rowcount
        entry = self.get(event_id)
        if entry is None:
            raise AlertNotFound(event_id)
        if not updated:
            raise AlertNotRetryable(entry.status)
        self.wake()
        return entry
