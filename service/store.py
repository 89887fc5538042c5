"""Conversation state for the per-message webhook, in SQLite.

Each accepted message is committed (WAL journal, synchronous=FULL) before the reply goes
out, so a crash or restart loses nothing that was acknowledged. Writes take an IMMEDIATE
transaction, so several server processes can share one file safely."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nlp.analyzer import unused_id
from nlp.schemas import IncomingMessage, MessageAnalysis, Role
from nlp.signals import Turn

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    customer_id TEXT,
    language TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    escalation_level TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    seq INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    timestamp TEXT,
    analysis TEXT NOT NULL,
    model_version TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, message_id)
);
"""


class ConversationFull(Exception):
    """The conversation already holds the maximum number of messages."""


@dataclass
class StoredMessage:
    id: str
    role: str
    text: str
    timestamp: str | None
    analysis: MessageAnalysis


@dataclass
class StoredConversation:
    id: str
    channel: str
    customer_id: str | None
    language: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    escalation_level: str | None = None
    messages: list[StoredMessage] = field(default_factory=list)

    @property
    def analyses(self) -> list[MessageAnalysis]:
        return [m.analysis for m in self.messages]

    @property
    def turns(self) -> list[Turn]:
        return [Turn(id=m.id, role=Role(m.role), text=m.text,
                     timestamp=datetime.fromisoformat(m.timestamp) if m.timestamp else None) for m in self.messages]


@dataclass
class AppendResult:
    conversation: StoredConversation
    message: StoredMessage
    duplicate: bool


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class ConversationStore:
    """SQLite-backed conversations; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # One connection guarded by a lock: SQLite serialises writers anyway, and this
        # keeps reads consistent with the thread's own writes.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(conversations)")}
        if "escalation_level" not in columns:  # files written before the column existed
            self._db.execute("ALTER TABLE conversations ADD COLUMN escalation_level TEXT")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def find_message(self, conversation_id: str, message_id: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM messages WHERE conversation_id = ? AND message_id = ?", (conversation_id, message_id)
            ).fetchone()
        return row is not None

    def get(self, conversation_id: str) -> StoredConversation | None:
        """The conversation with all its messages in arrival order, or None."""
        with self._lock:
            return self._read(conversation_id)

    def record_escalation(self, conversation_id: str, level: str) -> str | None:
        """Set the conversation's escalation level; return the one it had before."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT escalation_level FROM conversations WHERE id = ?",
                                       (conversation_id,)).fetchone()
                self._db.execute("UPDATE conversations SET escalation_level = ? WHERE id = ?", (level, conversation_id))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return row[0] if row else None

    def append(self, conversation_id: str, incoming: IncomingMessage, analysis: MessageAnalysis,
               model_version: str, max_messages: int, stored_text: str | None = None) -> AppendResult:
        """Store one analysed message (creating the conversation on first use). The text
        stored is `stored_text` (the redacted text) when given.

        A message whose id the conversation already holds is not stored again (webhook
        retries): the stored one comes back with `duplicate=True`."""
        now = _now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if incoming.id is not None:
                    existing = self._db.execute(
                        "SELECT 1 FROM messages WHERE conversation_id = ? AND message_id = ?",
                        (conversation_id, incoming.id)).fetchone()
                    if existing:
                        self._db.execute("ROLLBACK")
                        conversation = self._read(conversation_id)
                        assert conversation is not None
                        message = next(m for m in conversation.messages if m.id == incoming.id)
                        return AppendResult(conversation, message, duplicate=True)
                self._upsert_conversation(conversation_id, incoming, now)
                count, last_seq = self._db.execute(
                    "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = ?",
                    (conversation_id,)).fetchone()
                if count >= max_messages:
                    raise ConversationFull(f"conversation {conversation_id!r} already holds {count} messages")
                seq = last_seq + 1
                message_id = incoming.id or self._generated_id(conversation_id, seq)
                stored_analysis = analysis.model_copy(update={"id": message_id})
                timestamp = incoming.timestamp.isoformat() if incoming.timestamp else None
                self._db.execute(
                    "INSERT INTO messages (conversation_id, seq, message_id, role, text, timestamp, analysis,"
                    " model_version, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (conversation_id, seq, message_id, incoming.role.value,
                     incoming.text if stored_text is None else stored_text, timestamp,
                     stored_analysis.model_dump_json(), model_version, now))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            conversation = self._read(conversation_id)
        assert conversation is not None
        return AppendResult(conversation, conversation.messages[-1], duplicate=False)

    # --- internals (called with the lock held) ------------------------------------------

    def _generated_id(self, conversation_id: str, seq: int) -> str:
        taken = {row[0] for row in self._db.execute(
            "SELECT message_id FROM messages WHERE conversation_id = ?", (conversation_id,))}
        return unused_id(f"m{seq}", taken)

    def _upsert_conversation(self, conversation_id: str, incoming: IncomingMessage, now: str) -> None:
        row = self._db.execute("SELECT channel, customer_id, language, metadata FROM conversations WHERE id = ?",
                               (conversation_id,)).fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO conversations (id, channel, customer_id, language, metadata, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, (incoming.channel.value if incoming.channel else "other"), incoming.customer_id,
                 incoming.language, json.dumps(incoming.metadata), now, now))
            return
        channel, customer_id, language, metadata = row
        merged = {**json.loads(metadata), **incoming.metadata}
        self._db.execute(
            "UPDATE conversations SET channel = ?, customer_id = ?, language = ?, metadata = ?, updated_at = ?"
            " WHERE id = ?",
            (incoming.channel.value if incoming.channel else channel, incoming.customer_id or customer_id,
             incoming.language or language, json.dumps(merged), now, conversation_id))

    def _read(self, conversation_id: str) -> StoredConversation | None:
        row = self._db.execute(
            "SELECT id, channel, customer_id, language, metadata, created_at, updated_at, escalation_level"
            " FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            return None
        conversation = StoredConversation(*row[:4], json.loads(row[4]), row[5], row[6], row[7])
        for message_id, role, text, timestamp, analysis in self._db.execute(
            "SELECT message_id, role, text, timestamp, analysis FROM messages WHERE conversation_id = ?"
            " ORDER BY seq", (conversation_id,)):
            conversation.messages.append(StoredMessage(
                message_id, role, text, timestamp, MessageAnalysis.model_validate_json(analysis)))
        return conversation
