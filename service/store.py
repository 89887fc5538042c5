"""Conversation state for the per-message webhook, in SQLite, with the analysed messages
kept in memory so that each new message costs one message, not the whole conversation.

Each accepted message is committed (WAL journal, synchronous=FULL) before the reply goes
out, together with the conversation's new escalation level, in one transaction: a crash or
restart loses nothing that was acknowledged, and the level never lags behind its message.
Writes take an IMMEDIATE transaction, so several server processes can share one file safely.

The memory cache holds recent conversations' stored messages with their parsed analyses,
bounded by a total number of messages (least recently used conversations go first). It
is never trusted blindly: every read and write first asks SQLite for the conversation's
last sequence number (one index lookup) and reads only messages the cache has not seen,
so another process writing to the same file is picked up."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nlp.message_ids import assign_message_ids
from nlp.schemas import IncomingMessage, MessageAnalysis, Role
from nlp.signals import Turn
from nlp.timestamps import parse_timestamp

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

_HEADER_COLUMNS = "id, channel, customer_id, language, metadata, created_at, updated_at, escalation_level"


@dataclass
class StoredMessage:
    seq: int
    id: str
    role: str
    text: str
    timestamp: str | None
    analysis: MessageAnalysis
    turn: Turn = field(init=False, repr=False)
    """The message as the summary reads it, built once (the timestamp parsed)."""

    def __post_init__(self) -> None:
        self.turn = Turn(
            id=self.id,
            role=Role(self.role),
            text=self.text,
            timestamp=parse_timestamp(self.timestamp),
        )


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
        return [m.turn for m in self.messages]


class MessageExists(Exception):
    """The conversation already holds a message with this id (ids are unique per conversation)."""


@dataclass
class _CachedMessages:
    messages: list[StoredMessage]
    ids: set[str]

    @property
    def last_seq(self) -> int:
        return self.messages[-1].seq if self.messages else 0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class MessageCache:
    """Stored messages of recent conversations, least recently used first out, holding at
    most `max_messages` messages in all (0: nothing is kept). Thread-safe."""

    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self._entries: OrderedDict[str, _CachedMessages] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()  # held for dictionary work only, never during I/O

    def __len__(self) -> int:
        """Messages held."""
        return self._size

    def get(self, conversation_id: str) -> _CachedMessages | None:
        with self._lock:
            entry = self._entries.get(conversation_id)
            if entry is not None:
                self._entries.move_to_end(conversation_id)
            return entry

    def has_message(self, conversation_id: str, message_id: str) -> bool | None:
        """Whether the cached conversation holds `message_id`; None when it is not cached."""
        with self._lock:
            entry = self._entries.get(conversation_id)
            return None if entry is None else message_id in entry.ids

    def put(self, conversation_id: str, messages: list[StoredMessage]) -> None:
        """Remember `messages` (the whole conversation, in order) for `conversation_id`."""
        with self._lock:
            old = self._entries.pop(conversation_id, None)
            if old is not None:
                self._size -= len(old.messages)
            if len(messages) > self.max_messages:
                return  # larger than the whole cache: read from disk each time
            self._entries[conversation_id] = _CachedMessages(messages, {m.id for m in messages})
            self._size += len(messages)
            while self._size > self.max_messages:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted.messages)


class ConversationStore:
    """SQLite-backed conversations; safe to share between threads."""

    def __init__(self, path: Path, *, cache_messages: int) -> None:
        """`cache_messages`: stored messages kept in memory with their parsed analyses (0: none)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.cache = MessageCache(cache_messages)
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

    def cached_has_message(self, conversation_id: str, message_id: str) -> bool | None:
        """Whether the conversation holds `message_id`, from memory alone: None when the
        conversation is not cached. No I/O, so it may run on the event loop. A True is
        final; a False may miss a message another process stored a moment ago (the write
        path checks again in its transaction)."""
        return self.cache.has_message(conversation_id, message_id)

    def find_message(self, conversation_id: str, message_id: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM messages WHERE conversation_id = ? AND message_id = ?", (conversation_id, message_id)
            ).fetchone()
        return row is not None

    def get(self, conversation_id: str) -> StoredConversation | None:
        """The conversation with all its messages in arrival order, or None."""
        with self._lock:
            header = self._header(conversation_id)
            if header is None:
                return None
            return self._conversation(header, self._messages(conversation_id))

    @contextmanager
    def transaction(self, conversation_id: str) -> Iterator[ConversationTransaction]:
        """A write transaction on one conversation (SQLite's IMMEDIATE: writers queue, so
        what it reads is every committed message). Everything added through it commits when
        the block ends, or nothing does when it raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                header = self._header(conversation_id)
                messages = self._messages(conversation_id) if header else []
                transaction = ConversationTransaction(self, conversation_id, header, messages)
                yield transaction
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            if transaction.added:
                self.cache.put(conversation_id, transaction.messages)  # only once committed

    # --- internals (called with the lock held) ------------------------------------------

    def _header(self, conversation_id: str) -> tuple | None:
        return self._db.execute(
            f"SELECT {_HEADER_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()

    @staticmethod
    def _conversation(header: tuple, messages: list[StoredMessage]) -> StoredConversation:
        """A snapshot: its message list is its own, so later appends do not change it."""
        return StoredConversation(*header[:4], json.loads(header[4]), *header[5:8], messages=list(messages))

    def _messages(self, conversation_id: str) -> list[StoredMessage]:
        """The conversation's messages in order: the cached ones, plus any stored since
        (by this or another process), read and parsed once."""
        cached = self.cache.get(conversation_id)
        last_seq = self._db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()[0]
        if cached is not None and cached.last_seq == last_seq:
            return cached.messages
        known = cached.messages if cached is not None and cached.last_seq < last_seq else []
        after = known[-1].seq if known else 0
        messages = known + [
            StoredMessage(seq, message_id, role, text, timestamp, MessageAnalysis.model_validate_json(analysis))
            for seq, message_id, role, text, timestamp, analysis in self._db.execute(
                "SELECT seq, message_id, role, text, timestamp, analysis FROM messages"
                " WHERE conversation_id = ? AND seq > ? ORDER BY seq",
                (conversation_id, after),
            )
        ]
        self.cache.put(conversation_id, messages)
        return messages

    def _upsert_conversation(
        self, conversation_id: str, header: tuple | None, incoming: IncomingMessage, now: str
    ) -> tuple:
        """Create or update the conversation row; return its new header."""
        if header is None:
            channel = incoming.channel.value if incoming.channel else "other"
            metadata = json.dumps(incoming.metadata)
            self._db.execute(
                "INSERT INTO conversations (id, channel, customer_id, language, metadata, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, channel, incoming.customer_id, incoming.language, metadata, now, now),
            )
            return (conversation_id, channel, incoming.customer_id, incoming.language, metadata, now, now, None)
        _, channel, customer_id, language, metadata, created_at, _, level = header
        channel = incoming.channel.value if incoming.channel else channel
        customer_id, language = incoming.customer_id or customer_id, incoming.language or language
        metadata = json.dumps({**json.loads(metadata), **incoming.metadata}) if incoming.metadata else metadata
        self._db.execute(
            "UPDATE conversations SET channel = ?, customer_id = ?, language = ?, metadata = ?, updated_at = ?"
            " WHERE id = ?",
            (channel, customer_id, language, metadata, now, conversation_id),
        )
        return (conversation_id, channel, customer_id, language, metadata, created_at, now, level)


class ConversationTransaction:
    """One conversation inside a write transaction (`ConversationStore.transaction`): its
    committed state when the transaction began, and the writes that commit with it."""

    def __init__(
        self, store: ConversationStore, conversation_id: str, header: tuple | None, messages: list[StoredMessage]
    ) -> None:
        self._store = store
        self._db = store._db
        self.conversation_id = conversation_id
        self._header = header
        self.messages = list(messages)
        """Every message, in order: the committed ones, then those added here."""
        self.previous_level: str | None = header[7] if header else None
        """The escalation level committed before this transaction (None: none yet, or a new conversation)."""
        self.added = False

    def append(
        self, incoming: IncomingMessage, analysis: MessageAnalysis, *, stored_text: str, model_version: str
    ) -> StoredMessage:
        """Add one analysed message, creating the conversation on first use. Its id is the
        caller's, or the next free `m<position>`; `stored_text` is what is written (the
        redacted text). Raises MessageExists when the caller's id is already stored."""
        now = _now()
        self._header = self._store._upsert_conversation(self.conversation_id, self._header, incoming, now)
        seq = (self.messages[-1].seq if self.messages else 0) + 1
        message_id = assign_message_ids([incoming.id], first_position=seq, taken={m.id for m in self.messages})[0]
        stored_analysis = analysis.model_copy(update={"id": message_id})
        message = StoredMessage(
            seq,
            message_id,
            incoming.role.value,
            stored_text,
            incoming.timestamp.isoformat() if incoming.timestamp else None,
            stored_analysis,
        )
        try:
            self._db.execute(
                "INSERT INTO messages (conversation_id, seq, message_id, role, text, timestamp, analysis,"
                " model_version, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.conversation_id,
                    seq,
                    message_id,
                    message.role,
                    message.text,
                    message.timestamp,
                    stored_analysis.model_dump_json(),
                    model_version,
                    now,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise MessageExists(f"conversation {self.conversation_id!r} already holds message {message_id!r}") from exc
        self.messages.append(message)
        self.added = True
        return message

    def set_escalation_level(self, level: str) -> None:
        """Record the conversation's escalation level; it commits with the messages added."""
        self._db.execute("UPDATE conversations SET escalation_level = ? WHERE id = ?", (level, self.conversation_id))
        assert self._header is not None, "a conversation's level is set after a message is added"
        self._header = (*self._header[:7], level)

    @property
    def connection(self) -> sqlite3.Connection:
        """The transaction's connection, for writes to other tables that must commit or roll
        back with this conversation's (the alert outbox: service/alerts/outbox.py)."""
        return self._db

    @property
    def conversation(self) -> StoredConversation:
        """The conversation as it will be committed (it exists once a message is added)."""
        assert self._header is not None, "the conversation does not exist yet: add a message first"
        return self._store._conversation(self._header, self.messages)
