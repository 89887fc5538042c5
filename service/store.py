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
so another process writing to the same file is picked up.

Deleted conversations leave no text behind in the database files: the connection runs with
`secure_delete` (freed content is overwritten with zeros), and every deleting transaction
ends with a TRUNCATE checkpoint, which copies the zeroed pages into the main file and empties
the WAL, whose older frames still hold the text."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nlp.message_ids import assign_message_ids
from nlp.schemas import IncomingMessage, MessageAnalysis, Role
from nlp.signals import Turn
from nlp.timestamps import parse_timestamp
from nlp.vocabulary import ESCALATION_LEVELS, EscalationLevel

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    customer_id TEXT,
    language TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    escalation_level TEXT,
    escalation_route TEXT,
    escalation_rules TEXT
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

# Columns added after files were first written: added to older files when they are opened.
_ADDED_COLUMNS = {"escalation_level": "TEXT", "escalation_route": "TEXT", "escalation_rules": "TEXT"}
# The list endpoint walks conversations newest change first (keyset on updated_at, id),
# retention deletes the oldest, and erasure finds a customer's: each is an index walk.
_INDEXES = """
CREATE INDEX IF NOT EXISTS conversations_by_update ON conversations (updated_at, id);
CREATE INDEX IF NOT EXISTS conversations_by_customer ON conversations (customer_id, updated_at, id);
"""
DELETE_BATCH = 500
"""Conversations deleted per transaction by purge and erasure: each batch is one short write
transaction, so other writers (the webhook, other processes) wait for one batch at most."""

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
class ConversationHeader:
    """A conversation's own row: what a listing shows and the stored conversation starts with."""

    id: str
    channel: str
    customer_id: str | None
    language: str | None
    metadata: dict[str, Any]
    created_at: str
    updated_at: str


@dataclass
class StoredConversation(ConversationHeader):
    escalation_level: str | None = None
    messages: list[StoredMessage] = field(default_factory=list)

    @property
    def analyses(self) -> list[MessageAnalysis]:
        return [m.analysis for m in self.messages]

    @property
    def turns(self) -> list[Turn]:
        return [m.turn for m in self.messages]


@dataclass(frozen=True)
class ConversationFilter:
    """Which conversations a listing holds; a field left None does not filter."""

    min_level: EscalationLevel | None = None
    """Escalation level at least this (a conversation without a level counts as `none`)."""
    channel: str | None = None
    customer_id: str | None = None
    updated_since: datetime | None = None
    """Changed at or after this moment (millisecond resolution, as stored)."""


@dataclass(frozen=True)
class ListPosition:
    """Where a listing stopped: the last item's change time (as stored) and id. The next
    page starts after it, so conversations inserted meanwhile never shift a page."""

    updated_at: str
    id: str


@dataclass
class ConversationListing(ConversationHeader):
    """One conversation as a listing shows it: its header, level, route and message count,
    read without its messages."""

    escalation_level: str | None
    escalation_route: str | None
    escalation_rules: list[str]
    message_count: int


class MessageExists(Exception):
    """The conversation already holds a message with this id (ids are unique per conversation)."""


@dataclass
class _CachedMessages:
    messages: list[StoredMessage]
    ids: set[str]
    created_at: str
    """The conversation's creation time: a conversation deleted and created again (by another
    process) under the same id has another, so its old messages are not taken for its own."""
    summary_state: object | None = None
    """The recorder's incremental summary of these messages (opaque here); forgotten with them."""

    @property
    def last_seq(self) -> int:
        return self.messages[-1].seq if self.messages else 0


def _marks(values: Iterable[Any]) -> str:
    """`?, ?, ?`: one placeholder per value, for an `IN (...)` list."""
    return ", ".join("?" for _ in values)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def stored_time(moment: datetime) -> str:
    """`moment` as the store writes times (UTC, milliseconds), so that stored times compare
    with it as strings; naive means UTC. A moment that has no UTC time (within a day of
    year 1 or 9999) becomes the earliest or latest time there is."""
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)
    return moment.isoformat(timespec="milliseconds")


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

    def put(
        self, conversation_id: str, messages: list[StoredMessage], created_at: str, summary_state: object | None = None
    ) -> None:
        """Remember `messages` (the whole conversation, in order) for `conversation_id`,
        created at `created_at`, with the recorder's `summary_state` of them."""
        with self._lock:
            old = self._entries.pop(conversation_id, None)
            if old is not None:
                self._size -= len(old.messages)
            if len(messages) > self.max_messages:
                return  # larger than the whole cache: read from disk each time
            self._entries[conversation_id] = _CachedMessages(
                messages, {m.id for m in messages}, created_at, summary_state
            )
            self._size += len(messages)
            while self._size > self.max_messages:
                _, evicted = self._entries.popitem(last=False)
                self._size -= len(evicted.messages)

    def discard(self, conversation_ids: Iterable[str]) -> None:
        """Forget these conversations (deleted: their text must not outlive them in memory)."""
        with self._lock:
            for conversation_id in conversation_ids:
                old = self._entries.pop(conversation_id, None)
                if old is not None:
                    self._size -= len(old.messages)


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
        # Deleted rows are overwritten with zeros, freed pages too: erased text is gone
        # from the file, not merely unlinked (it costs writes on deletion only).
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(conversations)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in columns:  # files written before the column existed
                self._db.execute(f"ALTER TABLE conversations ADD COLUMN {column} {kind}")
        self._db.executescript(_INDEXES)  # older files get them here too
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
                self.cache.discard([conversation_id])  # deleted, perhaps by another process
                return None
            return self._conversation(header, self._messages(conversation_id, header[5]))

    @contextmanager
    def transaction(self, conversation_id: str) -> Iterator[ConversationTransaction]:
        """A write transaction on one conversation (SQLite's IMMEDIATE: writers queue, so
        what it reads is every committed message). Everything added through it commits when
        the block ends, or nothing does when it raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                header = self._header(conversation_id)
                messages = self._messages(conversation_id, header[5]) if header else []
                transaction = ConversationTransaction(self, conversation_id, header, messages)
                cached = self.cache.get(conversation_id)
                if cached is not None and cached.messages is messages:
                    transaction.summary_state = cached.summary_state
                yield transaction
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            if transaction.added:  # only once committed
                self.cache.put(conversation_id, transaction.messages, transaction.created_at, transaction.summary_state)

    # --- listing and deletion -----------------------------------------------------------

    def list_conversations(
        self, where: ConversationFilter, *, limit: int, after: ListPosition | None = None
    ) -> tuple[list[ConversationListing], ListPosition | None]:
        """Up to `limit` conversations matching `where`, newest change first (ties: id,
        descending), starting after `after`; and the position to ask the next page from
        (None on the last page). One index walk: no message is read."""
        conditions: list[str] = []
        params: list[Any] = []
        if where.min_level is not None and where.min_level != ESCALATION_LEVELS[0]:
            levels = ESCALATION_LEVELS[ESCALATION_LEVELS.index(where.min_level) :]
            conditions.append(f"COALESCE(escalation_level, '{ESCALATION_LEVELS[0]}') IN ({_marks(levels)})")
            params += levels
        for column in ("channel", "customer_id"):
            if getattr(where, column) is not None:
                conditions.append(f"{column} = ?")
                params.append(getattr(where, column))
        if where.updated_since is not None:
            conditions.append("updated_at >= ?")
            params.append(stored_time(where.updated_since))
        if after is not None:
            conditions.append("(updated_at, id) < (?, ?)")
            params += [after.updated_at, after.id]
        # Message count: sequence numbers run 1..n and messages are only ever removed with
        # their conversation, so the last one (an index lookup) is the count.
        query = (
            "SELECT id, channel, customer_id, language, metadata, created_at, updated_at, escalation_level,"
            " escalation_route, escalation_rules,"
            " (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = conversations.id)"
            " FROM conversations"
            + (" WHERE " + " AND ".join(conditions) if conditions else "")
            + " ORDER BY updated_at DESC, id DESC LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(query, (*params, limit + 1)).fetchall()
        listings = [
            ConversationListing(*row[:4], json.loads(row[4]), *row[5:9], json.loads(row[9]) if row[9] else [], row[10])
            for row in rows[:limit]
        ]
        if len(rows) <= limit:
            return listings, None
        return listings, ListPosition(listings[-1].updated_at, listings[-1].id)

    def delete(self, conversation_id: str) -> bool:
        """Delete the conversation and its messages; False when there is none."""
        return bool(self._delete_batch("id = ?", (conversation_id,), limit=1))

    def delete_customer(self, customer_id: str) -> int:
        """Delete every conversation whose customer is `customer_id`; how many there were."""
        deleted = 0
        while batch := self._delete_batch("customer_id = ?", (customer_id,), limit=DELETE_BATCH):
            deleted += batch
        return deleted

    def delete_updated_before(self, cutoff: datetime, *, limit: int = DELETE_BATCH) -> int:
        """Delete up to `limit` conversations last changed before `cutoff`, oldest first, in
        one transaction; how many. Call again until it returns less than `limit`."""
        return self._delete_batch("updated_at < ?", (stored_time(cutoff),), limit=limit)

    def count_updated_before(self, cutoff: datetime) -> int:
        """How many conversations were last changed before `cutoff`."""
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM conversations WHERE updated_at < ?", (stored_time(cutoff),)
            ).fetchone()[0]

    def _conversation_tables(self) -> list[str]:
        """Every table whose rows belong to a conversation (a `conversation_id` column): the
        messages, and tables other modules keep in this file, such as the alert outbox,
        whose events quote the conversation. Deleting a conversation deletes their rows too,
        so no copy of its text outlives it."""
        tables = [row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [
            table
            for table in tables
            if any(column[1] == "conversation_id" for column in self._db.execute(f'PRAGMA table_info("{table}")'))
        ]

    def _delete_batch(self, where: str, params: tuple, *, limit: int) -> int:
        """Delete up to `limit` conversations matching `where`, with their messages, in one
        IMMEDIATE transaction (so a message committed meanwhile by another writer either
        lands before and goes with its conversation, or after, in a new one); then empty
        the WAL, whose older frames hold the deleted text."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                ids = [
                    row[0]
                    for row in self._db.execute(
                        f"SELECT id FROM conversations WHERE {where} ORDER BY updated_at, id LIMIT ?", (*params, limit)
                    )
                ]
                if ids:
                    for table in self._conversation_tables():
                        self._db.execute(f'DELETE FROM "{table}" WHERE conversation_id IN ({_marks(ids)})', ids)
                    self._db.execute(f"DELETE FROM conversations WHERE id IN ({_marks(ids)})", ids)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self.cache.discard(ids)
            if ids:
                self._empty_wal()
        return len(ids)

    def _empty_wal(self) -> None:
        """Copy every WAL frame into the main file and truncate the WAL to zero bytes. It
        waits (up to the busy timeout) for other connections' reads; if one still holds an
        old snapshot, the WAL is emptied by a later checkpoint instead."""
        busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning("WAL not emptied after a deletion: another connection is reading; a later checkpoint will")

    # --- internals (called with the lock held) ------------------------------------------

    def _header(self, conversation_id: str) -> tuple | None:
        return self._db.execute(
            f"SELECT {_HEADER_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()

    @staticmethod
    def _conversation(header: tuple, messages: list[StoredMessage]) -> StoredConversation:
        """A snapshot: its message list is its own, so later appends do not change it."""
        return StoredConversation(*header[:4], json.loads(header[4]), *header[5:8], messages=list(messages))

    def _messages(self, conversation_id: str, created_at: str) -> list[StoredMessage]:
        """The conversation's messages in order: the cached ones, plus any stored since
        (by this or another process), read and parsed once. `created_at` is the stored
        conversation's: cached messages of an earlier conversation under its id are dropped."""
        cached = self.cache.get(conversation_id)
        if cached is not None and cached.created_at != created_at:
            cached = None
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
        self.cache.put(conversation_id, messages, created_at)
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
        self.summary_state: object | None = None
        """The recorder's incremental summary of the messages, as cached (None: not cached);
        what it holds when the transaction commits is cached with the messages."""

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

    def set_escalation_level(self, level: str, *, route: str | None = None, rules: Iterable[str] = ()) -> None:
        """Record the conversation's escalation level, with the route and the names of the
        rules that fired (kept so a listing shows them without re-reading the messages; no
        text); it commits with the messages added."""
        self._db.execute(
            "UPDATE conversations SET escalation_level = ?, escalation_route = ?, escalation_rules = ? WHERE id = ?",
            (level, route, json.dumps(list(rules)), self.conversation_id),
        )
        assert self._header is not None, "a conversation's level is set after a message is added"
        self._header = (*self._header[:7], level)

    @property
    def connection(self) -> sqlite3.Connection:
        """The transaction's connection, for writes to other tables that must commit or roll
        back with this conversation's (the alert outbox: service/alerts/outbox.py)."""
        return self._db

    @property
    def created_at(self) -> str:
        """When the conversation was created (it exists once a message is added)."""
        assert self._header is not None, "the conversation does not exist yet: add a message first"
        return self._header[5]

    @property
    def conversation(self) -> StoredConversation:
        """The conversation as it will be committed (it exists once a message is added)."""
        assert self._header is not None, "the conversation does not exist yet: add a message first"
        return self._store._conversation(self._header, self.messages)
