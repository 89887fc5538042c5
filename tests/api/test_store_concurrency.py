"""Concurrent writers on one conversation, on both backends: two stores (as two server
processes would hold) with eight threads each append to the same conversations, new ones
included. Each write transaction sees every message committed before it and the level they
left, so no message is lost or stored twice, each writer's messages keep their order, and
every level change is seen by exactly one transaction."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from service.store import ConversationStore, sqlite_url
from tests.api.test_store import analysis, message
from tests.conftest import open_store

THREADS_PER_STORE = 8
MESSAGES_PER_THREAD = 12
CONVERSATIONS = ("hot", "warm")


def level_after(seq: int) -> str:
    """The level a conversation has after its `seq`-th message: it changes with every message."""
    return "monitor" if seq % 2 else "none"


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return sqlite_url(tmp_path / "s.db")


def write(store: ConversationStore, writer: str, seen: list[tuple[str, int, str | None]], errors: list) -> None:
    try:
        for i in range(MESSAGES_PER_THREAD):
            conversation = CONVERSATIONS[i % len(CONVERSATIONS)]
            with store.transaction(conversation) as transaction:
                stored = transaction.append(
                    message(f"{writer} {i}", f"{writer}-{i}"), analysis(), stored_text="x", model_version="v1"
                )
                transaction.set_escalation_level(level_after(stored.seq))
                seen.append((conversation, stored.seq, transaction.previous_level))
    except Exception as exc:  # reported by the test
        errors.append(exc)


def test_concurrent_writers_take_turns_on_each_conversation(shared_url: str):
    stores = [open_store(shared_url, cache_messages=50) for _ in range(2)]
    seen: list[tuple[str, int, str | None]] = []
    errors: list[Exception] = []
    threads = [
        threading.Thread(target=write, args=(store, f"s{s}t{t}", seen, errors))
        for s, store in enumerate(stores)
        for t in range(THREADS_PER_STORE)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[:3]
    writers = [f"s{s}t{t}" for s in range(2) for t in range(THREADS_PER_STORE)]
    total = 0
    for conversation in CONVERSATIONS:
        stored = stores[0].get(conversation)
        assert stored is not None
        ids = [m.id for m in stored.messages]
        assert [m.seq for m in stored.messages] == list(range(1, len(ids) + 1))
        assert len(set(ids)) == len(ids), "a message stored twice"
        expected = {
            f"{w}-{i}" for w in writers for i in range(MESSAGES_PER_THREAD) if i % 2 == (conversation == "warm")
        }
        assert set(ids) == expected, "a message lost"
        for writer in writers:  # each writer's messages in the order it wrote them
            mine = [int(mid.rsplit("-", 1)[1]) for mid in ids if mid.startswith(f"{writer}-")]
            assert mine == sorted(mine)
        assert stored.escalation_level == level_after(len(ids))
        assert stores[1].get(conversation).messages[-1].id == ids[-1]  # the other store reads the same
        total += len(ids)
    # Each transaction saw the level the previous message left: every change seen once.
    assert len(seen) == total == len(writers) * MESSAGES_PER_THREAD
    assert sorted((c, seq) for c, seq, _ in seen) == sorted({(c, seq) for c, seq, _ in seen})
    assert all(previous == (level_after(seq - 1) if seq > 1 else None) for _, seq, previous in seen)
    for store in stores:
        store.close()


def test_deleting_while_others_append_never_breaks_a_write(shared_url: str):
    """A deletion locks the conversations it deletes: an append either lands before and
    goes with them, or after, in a new conversation starting at message 1."""
    writer_store, deleter = open_store(shared_url), open_store(shared_url)
    errors: list[Exception] = []
    stop = threading.Event()

    def append_many(writer: str) -> None:
        try:
            for i in range(40):
                with writer_store.transaction("hot") as transaction:
                    transaction.append(message("x", f"{writer}-{i}"), analysis(), stored_text="x", model_version="v1")
        except Exception as exc:  # reported by the test
            errors.append(exc)

    def delete_repeatedly() -> None:
        while not stop.is_set():
            deleter.delete("hot")

    threads = [threading.Thread(target=append_many, args=(f"w{k}",)) for k in range(4)]
    cleaner = threading.Thread(target=delete_repeatedly)
    for thread in [cleaner, *threads]:
        thread.start()
    for thread in threads:
        thread.join(120)
    stop.set()
    cleaner.join(60)
    assert not errors, errors[:3]
    left = writer_store.get("hot")
    assert left is None or [m.seq for m in left.messages] == list(range(1, len(left.messages) + 1))
    writer_store.close()
    deleter.close()
