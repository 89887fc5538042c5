"""Conversation state for the per-message webhook, in the database (SQLite or PostgreSQL,
service/store/database.py), with the analysed messages kept in memory (service/store/cache.py)
so that each new message costs one message, not the whole conversation.

Each accepted message is committed before the reply goes out, together with the
conversation's new escalation level, in one transaction (shared, in its own savepoint, with
the other messages of its group commit: service/group_commit.py): a crash or restart loses
nothing that was acknowledged, and the level never lags behind its message. The write transaction
locks the conversation (SQLite: the IMMEDIATE transaction; PostgreSQL: its row and its id),
so several server processes, on one SQLite file or one PostgreSQL database, append to the
same conversation in turn: no message is lost or stored twice, and each level change is
seen by exactly one of them.

Deleted conversations leave no text behind: their messages and alert events go in the same
transaction, and on SQLite the freed pages are zeroed and the WAL emptied."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, literal, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from nlp.message_ids import assign_message_ids
from nlp.schemas import IncomingMessage, MessageAnalysis
from nlp.vocabulary import ESCALATION_LEVELS
from service.store.cache import MessageCache
from service.store.database import Database
from service.store.records import (
    ConversationFilter,
    ConversationListing,
    ListPosition,
    MessageExists,
    StoredConversation,
    StoredMessage,
    now_stored,
    stored_time,
)
from service.store.tables import CONVERSATION_TABLES, conversations, messages

DELETE_BATCH = 500
"""Conversations deleted per transaction by purge and erasure: each batch is one short write
transaction, so other writers (the webhook, other processes) wait for one batch at most."""

_HEADER = (
    conversations.c.id,
    conversations.c.channel,
    conversations.c.customer_id,
    conversations.c.language,
    conversations.c.metadata,
    conversations.c.created_at,
    conversations.c.updated_at,
    conversations.c.escalation_level,
)
Header = tuple[Any, ...]
"""A conversation's row as `_HEADER` reads it."""


def _last_seq(conversation_id: Any) -> Any:
    """The conversation's last sequence number, 0 without messages (an index lookup)."""
    return (
        select(func.coalesce(func.max(messages.c.seq), 0))
        .where(messages.c.conversation_id == conversation_id)
        .scalar_subquery()
    )


class ConversationStore:
    """Conversations in a `Database`; safe to share between threads."""

    def __init__(self, database: Database, *, cache_messages: int) -> None:
        """`cache_messages`: stored messages kept in memory with their parsed analyses (0: none).
        The database must be migrated (`service.store.migrate.upgrade`)."""
        self.database = database
        self.cache = MessageCache(cache_messages)

    def close(self) -> None:
        """Close the database's connections."""
        self.database.close()

    def cached_has_message(self, conversation_id: str, message_id: str) -> bool | None:
        """Whether the conversation holds `message_id`, from memory alone: None when the
        conversation is not cached. No I/O, so it may run on the event loop. A True is
        final; a False may miss a message another process stored a moment ago (the write
        path checks again in its transaction)."""
        return self.cache.has_message(conversation_id, message_id)

    def find_message(self, conversation_id: str, message_id: str) -> bool:
        with self.database.read() as db:
            row = db.execute(
                select(literal(1)).where(
                    messages.c.conversation_id == conversation_id, messages.c.message_id == message_id
                )
            ).first()
        return row is not None

    def get(self, conversation_id: str) -> StoredConversation | None:
        """The conversation with all its messages in arrival order, or None."""
        with self.database.read() as db:
            header = self._header(db, conversation_id)
            if header is None:
                self.cache.discard([conversation_id])  # deleted, perhaps by another process
                return None
            return self._conversation(header, self._messages(db, conversation_id, header[5]))

    @contextmanager
    def transaction(self, conversation_id: str) -> Iterator[ConversationTransaction]:
        """A write transaction on one conversation, holding its lock: what it reads is every
        committed message, and no other writer adds one until it ends. Everything added
        through it commits when the block ends, or nothing does when it raises."""
        with self.transactions([conversation_id]) as opened:
            yield opened[conversation_id]

    @contextmanager
    def transactions(self, conversation_ids: Iterable[str]) -> Iterator[dict[str, ConversationTransaction]]:
        """One write transaction on several conversations (a group commit: one commit, one
        fsync), holding each one's lock, each as a `ConversationTransaction`. Everything
        commits when the block ends, or nothing does when it raises; a write wrapped in a
        transaction's `savepoint` can fail alone.

        The locks are taken in one global order, by conversation id, so two processes'
        transactions on overlapping conversations wait for each other, never deadlock. The
        message cache learns what was added only once it is committed; a conversation whose
        write did not commit whole is forgotten, and read again next time."""
        ids = sorted(set(conversation_ids))
        committed = False
        try:
            with self.database.write() as db:
                opened = {conversation_id: self._open(db, conversation_id) for conversation_id in ids}
                yield opened
            committed = True
        finally:
            if not committed:  # what is cached may include the in-place summary of a rolled-back message
                self.cache.discard(ids)
        for conversation_id, transaction in opened.items():
            if transaction.added:
                self.cache.put(conversation_id, transaction.messages, transaction.created_at, transaction.summary_state)
            elif transaction.rolled_back:
                self.cache.discard([conversation_id])

    def _open(self, db: Connection, conversation_id: str) -> ConversationTransaction:
        """Lock one conversation in the write transaction `db` and read what it holds."""
        self.database.lock_key(db, conversation_id)
        header = self._header(db, conversation_id, lock=True)
        existing = self._messages(db, conversation_id, header[5]) if header else []
        transaction = ConversationTransaction(self, db, conversation_id, header, existing)
        cached = self.cache.get(conversation_id)
        if cached is not None and cached.messages is existing:
            transaction.summary_state = cached.summary_state
        return transaction

    # --- listing and deletion -----------------------------------------------------------

    def list_conversations(
        self, where: ConversationFilter, *, limit: int, after: ListPosition | None = None
    ) -> tuple[list[ConversationListing], ListPosition | None]:
        """Up to `limit` conversations matching `where`, newest change first (ties: id,
        descending), starting after `after`; and the position to ask the next page from
        (None on the last page). One index walk: no message is read."""
        c = conversations.c
        conditions: list[ColumnElement[bool]] = []
        if where.min_level is not None and where.min_level != ESCALATION_LEVELS[0]:
            levels = ESCALATION_LEVELS[ESCALATION_LEVELS.index(where.min_level) :]
            conditions.append(func.coalesce(c.escalation_level, ESCALATION_LEVELS[0]).in_(levels))
        if where.channel is not None:
            conditions.append(c.channel == where.channel)
        if where.customer_id is not None:
            conditions.append(c.customer_id == where.customer_id)
        if where.updated_since is not None:
            conditions.append(c.updated_at >= stored_time(where.updated_since))
        if after is not None:
            conditions.append(tuple_(c.updated_at, c.id) < tuple_(after.updated_at, after.id))
        # Message count: sequence numbers run 1..n and messages are only ever removed with
        # their conversation, so the last one (an index lookup) is the count.
        query = (
            select(*_HEADER, c.escalation_route, c.escalation_rules, _last_seq(c.id))
            .where(*conditions)
            .order_by(c.updated_at.desc(), c.id.desc())
            .limit(limit + 1)
        )
        with self.database.read() as db:
            rows = db.execute(query).all()
        listings = [
            ConversationListing(*row[:4], json.loads(row[4]), *row[5:9], json.loads(row[9]) if row[9] else [], row[10])
            for row in rows[:limit]
        ]
        if len(rows) <= limit:
            return listings, None
        return listings, ListPosition(listings[-1].updated_at, listings[-1].id)

    def delete(self, conversation_id: str) -> bool:
        """Delete the conversation and its messages; False when there is none."""
        return bool(self._delete_batch(conversations.c.id == conversation_id, limit=1))

    def delete_customer(self, customer_id: str) -> int:
        """Delete every conversation whose customer is `customer_id`; how many there were."""
        deleted = 0
        while batch := self._delete_batch(conversations.c.customer_id == customer_id, limit=DELETE_BATCH):
            deleted += batch
        return deleted

    def delete_updated_before(self, cutoff: datetime, *, limit: int = DELETE_BATCH) -> int:
        """Delete up to `limit` conversations last changed before `cutoff`, oldest first, in
        one transaction; how many. Call again until it returns less than `limit`."""
        return self._delete_batch(conversations.c.updated_at < stored_time(cutoff), limit=limit)

    def count_updated_before(self, cutoff: datetime) -> int:
        """How many conversations were last changed before `cutoff`."""
        with self.database.read() as db:
            return db.execute(select(func.count()).where(conversations.c.updated_at < stored_time(cutoff))).scalar_one()

    def _delete_batch(self, where: ColumnElement[bool], *, limit: int) -> int:
        """Delete up to `limit` conversations matching `where`, with their rows in every
        conversation table, in one write transaction that locks them first (so a message
        committed meanwhile by another writer either lands before and goes with its
        conversation, or after, in a new one); then leave no copy in the files."""
        with self.database.write() as db:
            chosen = select(conversations.c.id).where(where).order_by(conversations.c.updated_at, conversations.c.id)
            # Locked in id order, the order every writer locks in (`transactions`), so a
            # group commit holding some of them and waiting for another cannot deadlock with
            # this; `where` is checked again on the locked rows (changed while waiting).
            ids = list(
                db.execute(
                    select(conversations.c.id)
                    .where(conversations.c.id.in_(chosen.limit(limit).scalar_subquery()), where)
                    .order_by(self.database.in_lock_order(conversations.c.id))
                    .with_for_update()
                ).scalars()
            )
            if ids:
                for table in CONVERSATION_TABLES:
                    db.execute(delete(table).where(table.c.conversation_id.in_(ids)))
                db.execute(delete(conversations).where(conversations.c.id.in_(ids)))
        self.cache.discard(ids)
        if ids:
            self.database.after_delete()
        return len(ids)

    # --- internals (inside a transaction) -----------------------------------------------

    @staticmethod
    def _header(db: Connection, conversation_id: str, *, lock: bool = False) -> Header | None:
        query = select(*_HEADER).where(conversations.c.id == conversation_id)
        row = db.execute(query.with_for_update() if lock else query).first()
        return tuple(row) if row is not None else None

    @staticmethod
    def _conversation(header: Header, stored: list[StoredMessage]) -> StoredConversation:
        """A snapshot: its message list is its own, so later appends do not change it."""
        return StoredConversation(*header[:4], json.loads(header[4]), *header[5:8], messages=list(stored))

    def _messages(self, db: Connection, conversation_id: str, created_at: str) -> list[StoredMessage]:
        """The conversation's messages in order: the cached ones, plus any stored since
        (by this or another process), read and parsed once. `created_at` is the stored
        conversation's: cached messages of an earlier conversation under its id are dropped."""
        cached = self.cache.get(conversation_id)
        if cached is not None and cached.created_at != created_at:
            cached = None
        last_seq = db.execute(select(_last_seq(conversation_id))).scalar_one()
        if cached is not None and cached.last_seq == last_seq:
            return cached.messages
        known = cached.messages if cached is not None and cached.last_seq < last_seq else []
        after = known[-1].seq if known else 0
        m = messages.c
        rows = db.execute(
            select(m.seq, m.message_id, m.role, m.text, m.timestamp, m.analysis)
            .where(m.conversation_id == conversation_id, m.seq > after)
            .order_by(m.seq)
        )
        found = known + [
            StoredMessage(seq, message_id, role, text, timestamp, MessageAnalysis.model_validate_json(analysis))
            for seq, message_id, role, text, timestamp, analysis in rows
        ]
        self.cache.put(conversation_id, found, created_at)
        return found


class ConversationTransaction:
    """One conversation inside a write transaction (`ConversationStore.transaction`): its
    committed state when the transaction began, and the writes that commit with it."""

    def __init__(
        self,
        store: ConversationStore,
        connection: Connection,
        conversation_id: str,
        header: Header | None,
        committed: list[StoredMessage],
    ) -> None:
        self._store = store
        self._db = connection
        self.conversation_id = conversation_id
        self._header = header
        self.messages = list(committed)
        """Every message, in order: the committed ones, then those added here."""
        self.previous_level: str | None = header[7] if header else None
        """The escalation level committed before this transaction (None: none yet, or a new conversation)."""
        self.added = False
        self.rolled_back = False
        """A savepoint rolled back a message added here: what is cached of the conversation
        may have changed with it, and is forgotten."""
        self.summary_state: object | None = None
        """The recorder's incremental summary of the messages, as cached (None: not cached);
        what it holds when the transaction commits is cached with the messages."""

    @property
    def level(self) -> str | None:
        """The escalation level as it stands in this transaction: the committed one, or the
        last one set here (None: none yet)."""
        return self._header[7] if self._header else None

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Writes that succeed or fail together inside the transaction (a SAVEPOINT): when the
        block raises, they alone are undone, in the database and in this object, and the
        exception goes on; the transaction's other writes still commit."""
        count, header, added = len(self.messages), self._header, self.added
        try:
            with self._db.begin_nested():
                yield
        except BaseException:
            if len(self.messages) > count:  # the summary may have advanced with them, in place
                del self.messages[count:]
                self.summary_state = None  # rebuilt from the messages when next needed
                self.rolled_back = True
            self._header, self.added = header, added
            raise

    def append(
        self, incoming: IncomingMessage, analysis: MessageAnalysis, *, stored_text: str, model_version: str
    ) -> StoredMessage:
        """Add one analysed message, creating the conversation on first use. Its id is the
        caller's, or the next free `m<position>`; `stored_text` is what is written (the
        redacted text). Raises MessageExists when the caller's id is already stored."""
        now = now_stored()
        seq = (self.messages[-1].seq if self.messages else 0) + 1
        message_id = assign_message_ids([incoming.id], first_position=seq, taken={m.id for m in self.messages})[0]
        if message_id in {m.id for m in self.messages}:  # the lock makes this list complete
            raise MessageExists(f"conversation {self.conversation_id!r} already holds message {message_id!r}")
        self._header = self._upsert_conversation(incoming, now)
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
                insert(messages).values(
                    conversation_id=self.conversation_id,
                    seq=seq,
                    message_id=message_id,
                    role=message.role,
                    text=message.text,
                    timestamp=message.timestamp,
                    analysis=stored_analysis.model_dump_json(),
                    model_version=model_version,
                    received_at=now,
                )
            )
        except IntegrityError as exc:  # the schema's guard, should the lock ever be bypassed
            raise MessageExists(f"conversation {self.conversation_id!r} already holds message {message_id!r}") from exc
        self.messages.append(message)
        self.added = True
        return message

    def set_escalation_level(self, level: str, *, route: str | None = None, rules: Iterable[str] = ()) -> None:
        """Record the conversation's escalation level, with the route and the names of the
        rules that fired (kept so a listing shows them without re-reading the messages; no
        text); it commits with the messages added."""
        self._db.execute(
            update(conversations)
            .where(conversations.c.id == self.conversation_id)
            .values(escalation_level=level, escalation_route=route, escalation_rules=json.dumps(list(rules)))
        )
        assert self._header is not None, "a conversation's level is set after a message is added"
        self._header = (*self._header[:7], level)

    @property
    def connection(self) -> Connection:
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

    def _upsert_conversation(self, incoming: IncomingMessage, now: str) -> Header:
        """Create or update the conversation row; return its new header."""
        if self._header is None:
            channel = incoming.channel.value if incoming.channel else "other"
            metadata = json.dumps(incoming.metadata)
            self._db.execute(
                insert(conversations).values(
                    id=self.conversation_id,
                    channel=channel,
                    customer_id=incoming.customer_id,
                    language=incoming.language,
                    metadata=metadata,
                    created_at=now,
                    updated_at=now,
                )
            )
            return (self.conversation_id, channel, incoming.customer_id, incoming.language, metadata, now, now, None)
        _, channel, customer_id, language, metadata, created_at, _, level = self._header
        channel = incoming.channel.value if incoming.channel else channel
        customer_id, language = incoming.customer_id or customer_id, incoming.language or language
        metadata = json.dumps({**json.loads(metadata), **incoming.metadata}) if incoming.metadata else metadata
        self._db.execute(
            update(conversations)
            .where(conversations.c.id == self.conversation_id)
            .values(channel=channel, customer_id=customer_id, language=language, metadata=metadata, updated_at=now)
        )
        return (self.conversation_id, channel, customer_id, language, metadata, created_at, now, level)
