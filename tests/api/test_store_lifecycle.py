"""The store's listing and deletion: keyset pages newest change first, filters, deletions
that leave nothing in memory (in this process or another), batches by age, and files
written before the listing columns and indexes existed."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from nlp.schemas import IncomingMessage, Role
from service.conversations import RecordedMessage
from service.store import ConversationFilter, ConversationStore, ListPosition, sqlite_url, stored_time
from service.store.migrate import current_revision, head_revision
from service.store.tables import alert_outbox, conversations, messages
from tests.api.test_conversations import customer, record_all
from tests.api.test_store import analysis
from tests.conftest import open_store


def add(
    store: ConversationStore,
    conversation_id: str,
    text: str = "hello",
    *,
    level: str = "none",
    channel: str | None = None,
    customer_id: str | None = None,
) -> None:
    incoming = IncomingMessage(role=Role.customer, text=text, channel=channel, customer_id=customer_id)
    with store.transaction(conversation_id) as transaction:
        transaction.append(incoming, analysis(), stored_text=text, model_version="v1")
        transaction.set_escalation_level(level, route="supervisor" if level != "none" else "none", rules=["r1"])


def set_updated_at(store: ConversationStore, conversation_id: str, moment: datetime) -> None:
    """Change a conversation's last-change time in the database, as a write long ago would have left it."""
    with store.database.write() as db:
        db.execute(
            update(conversations).where(conversations.c.id == conversation_id).values(updated_at=stored_time(moment))
        )


EVERYTHING = ConversationFilter()


def walk(store: ConversationStore, where: ConversationFilter = EVERYTHING, limit: int = 2) -> list[str]:
    """Every id a client paging with `limit` sees, in order."""
    seen, after = [], None
    while True:
        page, after = store.list_conversations(where, limit=limit, after=after)
        seen += [listing.id for listing in page]
        if after is None:
            return seen


T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def seeded(database_url: str) -> ConversationStore:
    """Five conversations, changed an hour apart, c5 last; c3 and c4 at the same moment."""
    store = open_store(database_url)
    add(store, "c1", level="none", channel="chat", customer_id="alice")
    add(store, "c2", level="monitor", channel="email", customer_id="bob")
    add(store, "c3", level="escalate", channel="chat", customer_id="alice")
    add(store, "c4", level="urgent", channel="voice")
    add(store, "c5", "one", level="none", channel="chat", customer_id="bob")
    add(store, "c5", "two", level="none")
    for i, moment in enumerate([T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(hours=2)]):
        set_updated_at(store, f"c{i + 1}", moment)
    set_updated_at(store, "c5", T0 + timedelta(hours=3))
    return store


def test_pages_walk_every_conversation_once_newest_change_first(database_url: str):
    store = seeded(database_url)
    assert walk(store, limit=2) == ["c5", "c4", "c3", "c2", "c1"]  # c3 and c4 tie: id, descending
    assert walk(store, limit=1) == walk(store, limit=200) == ["c5", "c4", "c3", "c2", "c1"]
    page, after = store.list_conversations(ConversationFilter(), limit=5)
    assert after is None and [p.message_count for p in page] == [2, 1, 1, 1, 1]
    assert (page[1].escalation_level, page[1].escalation_route, page[1].escalation_rules) == (
        "urgent",
        "supervisor",
        ["r1"],
    )


def test_a_conversation_added_while_paging_shifts_nothing(database_url: str):
    store = seeded(database_url)
    first, after = store.list_conversations(ConversationFilter(), limit=2)
    add(store, "c0", level="urgent")  # newest of all: it belongs before the first page
    rest = walk_from(store, after)
    assert [p.id for p in first] + rest == ["c5", "c4", "c3", "c2", "c1"]


def walk_from(store: ConversationStore, after: ListPosition | None) -> list[str]:
    seen = []
    while after is not None:
        page, after = store.list_conversations(ConversationFilter(), limit=2, after=after)
        seen += [p.id for p in page]
    return seen


def test_each_filter(database_url: str):
    store = seeded(database_url)
    assert walk(store, ConversationFilter(min_level="none")) == ["c5", "c4", "c3", "c2", "c1"]
    assert walk(store, ConversationFilter(min_level="escalate")) == ["c4", "c3"]
    assert walk(store, ConversationFilter(channel="chat")) == ["c5", "c3", "c1"]
    assert walk(store, ConversationFilter(customer_id="bob")) == ["c5", "c2"]
    assert walk(store, ConversationFilter(updated_since=T0 + timedelta(hours=2))) == ["c5", "c4", "c3"]
    # The same moment, naive (UTC) and in another zone.
    assert walk(store, ConversationFilter(updated_since=datetime(2026, 3, 2, 12, 0))) == ["c5", "c4", "c3"]
    plus_two = datetime(2026, 3, 2, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert walk(store, ConversationFilter(updated_since=plus_two)) == ["c5", "c4", "c3"]
    both = ConversationFilter(min_level="monitor", channel="chat", customer_id="alice")
    assert walk(store, both) == ["c3"]
    assert walk(store, ConversationFilter(updated_since=datetime(9999, 12, 31, tzinfo=UTC))) == []


@pytest.mark.sqlite
def test_the_listing_is_an_index_walk(database_url: str, tmp_path: Path):
    seeded(database_url)
    with closing(sqlite3.connect(tmp_path / "s.db")) as db:
        plan = " ".join(
            row[3]
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM conversations WHERE (updated_at, id) < (?, ?)"
                " ORDER BY updated_at DESC, id DESC LIMIT 3",
                ("2026", "c"),
            )
        )
    assert "conversations_by_update" in plan and "TEMP B-TREE" not in plan, plan


def test_deletion_removes_rows_and_memory(database_url: str):
    store = seeded(database_url)
    store.get("c5")
    assert store.cached_has_message("c5", "m1") is True
    assert store.delete("c5") and not store.delete("c5")
    assert store.get("c5") is None and store.cached_has_message("c5", "m1") is None
    assert store.delete_customer("alice") == 2 and store.delete_customer("alice") == 0
    assert walk(store) == ["c4", "c2"]
    with store.database.read() as db:
        assert db.execute(select(func.count()).select_from(messages)).scalar_one() == 2


def test_deletion_by_age_goes_in_batches_oldest_first(database_url: str):
    store = seeded(database_url)
    cutoff = T0 + timedelta(hours=2, minutes=30)
    assert store.count_updated_before(cutoff) == 4
    assert store.delete_updated_before(cutoff, limit=3) == 3
    assert walk(store) == ["c5", "c4"]  # c3 and c4 tie in age: the lower id goes first
    assert store.delete_updated_before(cutoff, limit=3) == 1
    assert walk(store) == ["c5"] and store.count_updated_before(cutoff) == 0


def test_another_process_never_serves_a_deleted_conversation_from_memory(database_url: str):
    ours, theirs = open_store(database_url), open_store(database_url)
    add(ours, "c1", "the old secret")
    assert ours.cached_has_message("c1", "m1") is True
    assert theirs.delete("c1")
    assert ours.get("c1") is None and ours.cached_has_message("c1", "m1") is None
    # Deleted and started again elsewhere, with as many messages: not the old one's text.
    add(ours, "c2", "the old secret")
    theirs.delete("c2")
    time.sleep(0.002)  # the guard is the creation time, in milliseconds
    add(theirs, "c2", "a new start")
    assert [m.text for m in ours.get("c2").messages] == ["a new start"]


@pytest.mark.sqlite
def test_a_file_from_before_the_listing_columns_is_migrated(tmp_path: Path):
    """A file an earlier version wrote (no alembic_version) is adopted: what it lacks is
    added, its rows are kept, and it is at the newest revision."""
    path = tmp_path / "s.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(
            """
            CREATE TABLE conversations (id TEXT PRIMARY KEY, channel TEXT NOT NULL, customer_id TEXT,
                language TEXT, metadata TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL);
            CREATE TABLE messages (conversation_id TEXT NOT NULL REFERENCES conversations(id),
                seq INTEGER NOT NULL, message_id TEXT NOT NULL, role TEXT NOT NULL, text TEXT NOT NULL,
                timestamp TEXT, analysis TEXT NOT NULL, model_version TEXT NOT NULL, received_at TEXT NOT NULL,
                PRIMARY KEY (conversation_id, seq), UNIQUE (conversation_id, message_id));
            INSERT INTO conversations VALUES ('old', 'chat', NULL, NULL, '{}',
                '2025-01-01T00:00:00.000+00:00', '2025-01-01T00:00:00.000+00:00');
            """
        )
    store = open_store(sqlite_url(path), cache_messages=10)
    with closing(sqlite3.connect(path)) as db:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"conversations_by_update", "conversations_by_customer", "alert_outbox_due"} <= indexes
    assert "alert_outbox" in tables and current_revision(store.database) == head_revision()
    (old,), _ = store.list_conversations(ConversationFilter(), limit=10)
    assert (old.id, old.escalation_level, old.escalation_route, old.escalation_rules) == ("old", None, None, [])
    assert walk(store, ConversationFilter(min_level="monitor")) == []
    add(store, "new", level="monitor")
    assert walk(store, ConversationFilter(min_level="monitor")) == ["new"]


def test_a_message_posted_again_after_another_process_deleted_it_is_recorded_anew(analyzer, database_url: str):
    ours, theirs = open_store(database_url), open_store(database_url)
    record_all(analyzer, ours, [("c1", customer("my card was charged twice", "a"))])
    assert ours.cached_has_message("c1", "a") is True  # our retry check would call it a retry
    assert theirs.delete("c1")
    (result,), encoded = record_all(analyzer, ours, [("c1", customer("charged twice, again", "a"))])
    assert isinstance(result, RecordedMessage) and not result.duplicate and encoded == 1
    assert [m.text for m in theirs.get("c1").messages] == ["charged twice, again"]


def test_deleting_a_conversation_deletes_its_alert_events_and_their_quotes(database_url: str, tmp_path: Path):
    """The alert outbox keeps its events in the store's database, and an event quotes the
    conversation's evidence: deleting the conversation deletes them, text and all (on
    SQLite, from the files too)."""
    store = open_store(database_url)
    secret = "quokka-ledger-7731"
    add(store, "c1", text=f"my {secret} was charged twice")
    add(store, "c2")
    with store.database.write() as db:
        for number, conversation in enumerate(["c1", "c2"]):
            db.execute(
                insert(alert_outbox).values(
                    id=f"evt-{number}",
                    type="escalation.changed",
                    conversation_id=conversation,
                    target_url="http://h",
                    target_name="h",
                    format="json",
                    body=f'{{"quote": "{secret}"}}',
                    status="pending",
                    created_at=stored_time(T0),
                )
            )
    assert store.delete("c1")
    with store.database.read() as db:
        assert list(db.execute(select(alert_outbox.c.conversation_id)).scalars()) == ["c2"]
    store.close()
    if store.database.is_sqlite:  # PostgreSQL's dead rows are VACUUM's: docs/operations.md
        on_disk = b"".join(path.read_bytes() for path in tmp_path.glob("s.db*"))
        assert on_disk.count(secret.encode()) == 1, "only c2's event still quotes it"
