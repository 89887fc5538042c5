"""Baseline: the conversations, their messages and the alert outbox, as convintel wrote them
before migrations existed. It creates what is missing and leaves what exists alone, so a
SQLite file written by an earlier version (tables present, no alembic_version) is adopted
without touching its rows: older files lack the escalation columns, the listing indexes or
the outbox table, and get them here.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ESCALATION_COLUMNS = ("escalation_level", "escalation_route", "escalation_rules")
_INDEXES = {
    "conversations": {
        "conversations_by_update": ["updated_at", "id"],
        "conversations_by_customer": ["customer_id", "updated_at", "id"],
    },
    "alert_outbox": {
        "alert_outbox_due": ["status", "next_attempt_at"],
        "alert_outbox_order": ["target_url", "conversation_id", "status", "seq"],
    },
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "conversations" not in tables:
        op.create_table(
            "conversations",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("channel", sa.Text, nullable=False),
            sa.Column("customer_id", sa.Text),
            sa.Column("language", sa.Text),
            sa.Column("metadata", sa.Text, nullable=False, server_default="{}"),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("updated_at", sa.Text, nullable=False),
            *(sa.Column(name, sa.Text) for name in _ESCALATION_COLUMNS),
        )
    else:
        present = {column["name"] for column in inspector.get_columns("conversations")}
        for name in _ESCALATION_COLUMNS:
            if name not in present:
                op.add_column("conversations", sa.Column(name, sa.Text))
    if "messages" not in tables:
        op.create_table(
            "messages",
            sa.Column("conversation_id", sa.Text, sa.ForeignKey("conversations.id"), nullable=False),
            sa.Column("seq", sa.Integer, nullable=False, autoincrement=False),
            sa.Column("message_id", sa.Text, nullable=False),
            sa.Column("role", sa.Text, nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("timestamp", sa.Text),
            sa.Column("analysis", sa.Text, nullable=False),
            sa.Column("model_version", sa.Text, nullable=False),
            sa.Column("received_at", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("conversation_id", "seq"),
            sa.UniqueConstraint("conversation_id", "message_id"),
        )
    if "alert_outbox" not in tables:
        op.create_table(
            "alert_outbox",
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("id", sa.Text, nullable=False, unique=True),
            sa.Column("type", sa.Text, nullable=False),
            sa.Column("conversation_id", sa.Text, nullable=False),
            sa.Column("target_url", sa.Text, nullable=False),
            sa.Column("target_name", sa.Text, nullable=False),
            sa.Column("format", sa.Text, nullable=False),
            sa.Column("body", sa.Text, nullable=False),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            sa.Column("next_attempt_at", sa.Float),
            sa.Column("last_error", sa.Text),
            sa.Column("last_attempt_at", sa.Text),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("delivered_at", sa.Text),
            sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="alert_outbox_status"),
            sqlite_autoincrement=True,
        )
    for table, indexes in _INDEXES.items():
        named = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table)}
        for name, columns in indexes.items():
            if name not in named:
                op.create_index(name, table, columns)


def downgrade() -> None:
    for table in ("alert_outbox", "messages", "conversations"):
        op.drop_table(table)
