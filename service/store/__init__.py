"""Conversation state: the store (`ConversationStore`) over one database, SQLite or
PostgreSQL (`Database`), with its schema (`tables`), migrations (`migrate`) and message
cache (`cache`). See docs/operations.md for running it on PostgreSQL."""

from service.database_url import sqlite_url
from service.store.cache import MessageCache
from service.store.conversation_store import DELETE_BATCH, ConversationStore, ConversationTransaction
from service.store.database import Database, PoolConfig
from service.store.records import (
    ConversationFilter,
    ConversationHeader,
    ConversationListing,
    ListPosition,
    MessageExists,
    StoredConversation,
    StoredMessage,
    stored_time,
)

__all__ = [
    "DELETE_BATCH",
    "ConversationFilter",
    "ConversationHeader",
    "ConversationListing",
    "ConversationStore",
    "ConversationTransaction",
    "Database",
    "ListPosition",
    "MessageCache",
    "MessageExists",
    "PoolConfig",
    "StoredConversation",
    "StoredMessage",
    "sqlite_url",
    "stored_time",
]
