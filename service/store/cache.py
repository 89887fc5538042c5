"""The in-memory cache of recent conversations' stored messages with their parsed analyses.

It is never trusted blindly: the store checks a cached conversation against the database's
last sequence number (one index lookup) before each use and reads only the messages the
cache has not seen, so another process writing to the same database is picked up."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from service.store.records import StoredMessage


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
                return  # larger than the whole cache: read from the database each time
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
