"""The schema as the code reads and writes it (SQLAlchemy Core): the conversations, their
messages and the alert outbox, all in one database. Migrations (service/store/migrations/)
create and change it; this module describes the newest revision."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

conversations = Table(
    "conversations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("channel", Text, nullable=False),
    Column("customer_id", Text),
    Column("language", Text),
    Column("metadata", Text, nullable=False, server_default="{}"),
    # Times are ISO strings (UTC, milliseconds): they sort as text, on either backend.
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("escalation_level", Text),
    Column("escalation_route", Text),
    Column("escalation_rules", Text),
    # The list endpoint walks conversations newest change first (keyset on updated_at, id),
    # retention deletes the oldest, and erasure finds a customer's: each is an index walk.
    Index("conversations_by_update", "updated_at", "id"),
    Index("conversations_by_customer", "customer_id", "updated_at", "id"),
)

messages = Table(
    "messages",
    metadata,
    Column("conversation_id", Text, ForeignKey("conversations.id"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("message_id", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("timestamp", Text),
    Column("analysis", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("received_at", Text, nullable=False),
    UniqueConstraint("conversation_id", "message_id"),
)

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", Text, nullable=False, unique=True),
    Column("type", Text, nullable=False),
    Column("conversation_id", Text, nullable=False),
    Column("target_url", Text, nullable=False),
    Column("target_name", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Float),  # unix seconds
    Column("last_error", Text),
    Column("last_attempt_at", Text),
    Column("created_at", Text, nullable=False),
    Column("delivered_at", Text),
    Index("alert_outbox_due", "status", "next_attempt_at"),
    Index("alert_outbox_order", "target_url", "conversation_id", "status", "seq"),
    sqlite_autoincrement=True,
)

CONVERSATION_TABLES = tuple(table for table in metadata.sorted_tables if "conversation_id" in table.c)
"""Every table whose rows belong to a conversation: the messages, and tables other modules
keep in this database, such as the alert outbox, whose events quote the conversation.
Deleting a conversation deletes their rows too, so no copy of its text outlives it."""
