"""Group commit on the per-message path (`service/group_commit.py`), through the recorder on
both backends: concurrent posts share transactions (fewer COMMITs than messages, counted on
the engine) and each is stored once, in its caller's order; a message that fails in a group
fails alone; `changed` fires once per level change; two processes' groups on the same
conversations never deadlock; a group whose commit fails answers every caller with the error
and leaves nothing in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import Connection, event

from nlp.analyzer import Analyzer
from nlp.config import InspectionConfig
from nlp.inspection import build_inspector
from nlp.schemas import IncomingMessage, Role
from service.conversations import ConversationFull, ConversationRecorder, RecordedMessage
from service.microbatch import MicroBatcher
from service.store import ConversationStore
from tests.api.test_alerts import ESCALATE_TEXT, NONE_TEXT, URGENT_TEXT
from tests.conftest import open_store

Outcome = RecordedMessage | Exception


def customer(text: str, mid: str | None = None) -> IncomingMessage:
    return IncomingMessage(id=mid, role=Role.customer, text=text)


def count_commits(store: ConversationStore) -> list[int]:
    """A one-item list counting the COMMITs on the store's engine (reads included, which
    only makes "fewer commits than messages" harder to pass)."""
    commits = [0]

    def on_commit(_: Connection) -> None:
        commits[0] += 1

    event.listen(store.database.engine, "commit", on_commit)
    return commits


def with_recorders(
    analyzer: Analyzer,
    stores: list[ConversationStore],
    body: Callable[[list[ConversationRecorder]], Awaitable[Any]],
    *,
    max_messages: int = 100,
) -> Any:
    """Run `body` with one recorder per store (as separate server processes would hold),
    sharing a micro-batcher that waits for every request on its way (so concurrent posts
    meet in a batch, and then in a group commit)."""

    async def run() -> Any:
        batcher = MicroBatcher(analyzer, max_messages=64, max_wait_ms=1000)
        await batcher.start()
        recorders = [
            ConversationRecorder(analyzer, store, batcher, max_messages=max_messages, commit_group_max_messages=64)
            for store in stores
        ]
        try:
            return await body(recorders)
        finally:
            await batcher.stop()

    return asyncio.run(run())


async def attempt(recorder: ConversationRecorder, conversation_id: str, message: IncomingMessage) -> Outcome:
    try:
        return await recorder.record(conversation_id, message)
    except Exception as exc:  # compared by the test
        return exc


def test_concurrent_posts_are_stored_once_in_order_in_fewer_commits(analyzer: Analyzer, database_url: str):
    callers, per_caller, conversations = 24, 5, 8  # three callers on each conversation
    store = open_store(database_url, cache_messages=1000)
    commits = count_commits(store)

    async def caller(recorder: ConversationRecorder, number: int) -> list[Outcome]:
        conversation = f"c{number % conversations}"
        return [
            await attempt(recorder, conversation, customer(f"caller {number} says {n}", f"k{number}-{n}"))
            for n in range(per_caller)
        ]

    async def body(recorders: list[ConversationRecorder]) -> list[list[Outcome]]:
        return list(await asyncio.gather(*(caller(recorders[0], number) for number in range(callers))))

    results = with_recorders(analyzer, [store], body)
    messages = callers * per_caller
    assert all(isinstance(r, RecordedMessage) and not r.duplicate for rs in results for r in rs), results
    assert commits[0] < messages / 2, f"{commits[0]} commits for {messages} messages"
    for c in range(conversations):
        stored = open_store(database_url).get(f"c{c}")
        assert stored is not None
        ids = [m.id for m in stored.messages]
        assert [m.seq for m in stored.messages] == list(range(1, len(ids) + 1))
        mine = [number for number in range(callers) if number % conversations == c]
        assert sorted(ids) == sorted(f"k{number}-{n}" for number in mine for n in range(per_caller))
        for number in mine:  # each caller's messages in the order it sent them
            assert [mid for mid in ids if mid.startswith(f"k{number}-")] == [
                f"k{number}-{n}" for n in range(per_caller)
            ]
        for number in mine:  # and each answer is the message as stored
            for result in results[number]:
                assert isinstance(result, RecordedMessage)
                assert stored.messages[result.message.seq - 1].id == result.message.id
        assert store.get(f"c{c}").messages[-1].id == ids[-1]  # the cache agrees with the database


def test_a_message_that_fails_in_a_group_fails_alone(analyzer: Analyzer, database_url: str):
    store = open_store(database_url, cache_messages=1000)

    async def body(recorders: list[ConversationRecorder]) -> tuple[list[Outcome], int]:
        (recorder,) = recorders
        for conversation, mid in [
            ("full", "f1"),
            ("full", "f2"),
            ("full", "f3"),
            ("a", "a1"),
            ("b", "b1"),
        ]:  # cached now
            await recorder.record(conversation, customer("hello", mid))
        groups = recorder.commits.groups
        posts = [
            ("a", customer("first with this id", "x")),
            ("full", customer("one too many", "f4")),
            ("a", customer("same id again, same group", "x")),
            ("b", customer("an innocent bystander", "b2")),
        ]
        outcomes = list(await asyncio.gather(*(attempt(recorder, c, m) for c, m in posts)))
        return outcomes, recorder.commits.groups - groups

    (first, full, again, bystander), groups = with_recorders(analyzer, [store], body, max_messages=3)
    assert groups == 1, "the four posts should have shared one group commit"
    assert isinstance(full, ConversationFull)  # answered 409 by the API
    assert isinstance(first, RecordedMessage) and not first.duplicate
    assert isinstance(again, RecordedMessage) and again.duplicate  # the retry answer
    assert again.message.text == "first with this id" and again.message.seq == first.message.seq
    assert isinstance(bystander, RecordedMessage) and not bystander.duplicate
    reread = open_store(database_url)
    assert [m.id for m in reread.get("a").messages] == ["a1", "x"]
    assert [m.id for m in reread.get("b").messages] == ["b1", "b2"]
    assert [m.id for m in reread.get("full").messages] == ["f1", "f2", "f3"]
    assert [m.id for m in store.get("a").messages] == ["a1", "x"]  # and the cache agrees


@pytest.fixture(scope="module")
def cue_analyzer(analyzer: Analyzer) -> Analyzer:
    """Detects cues, which move the level (no redaction: the texts are compared)."""
    return Analyzer(
        analyzer.encoder,
        analyzer.bundle,
        analyzer.policy,
        inspector=build_inspector(InspectionConfig(match_categories=False, redact_pii=False)),
    )


def test_changed_fires_once_per_level_change_under_concurrency(cue_analyzer: Analyzer, database_url: str):
    """Concurrent callers on three conversations, their cues moving the levels: in each
    conversation's stored order, every message saw the level the one before it left, and
    says `changed` exactly when it moved it."""
    texts = (NONE_TEXT, ESCALATE_TEXT, URGENT_TEXT, NONE_TEXT)
    conversations = ("hot0", "hot1", "hot2")
    store = open_store(database_url, cache_messages=1000)

    async def caller(recorder: ConversationRecorder, number: int) -> list[Outcome]:
        conversation = conversations[number % len(conversations)]
        return [
            await attempt(recorder, conversation, customer(texts[(number + n) % len(texts)], f"k{number}-{n}"))
            for n in range(3)
        ]

    async def body(recorders: list[ConversationRecorder]) -> list[list[Outcome]]:
        return list(await asyncio.gather(*(caller(recorders[0], number) for number in range(12))))

    results = [r for rs in with_recorders(cue_analyzer, [store], body) for r in rs]
    assert all(isinstance(r, RecordedMessage) for r in results), results
    total_changes = 0
    for conversation in conversations:
        mine = [r for r in results if isinstance(r, RecordedMessage) and r.conversation.id == conversation]
        by_seq = sorted(mine, key=lambda r: r.message.seq)
        assert [r.message.seq for r in by_seq] == list(range(1, 13))
        levels = [r.summary.escalation.level for r in by_seq]
        for k, result in enumerate(by_seq):
            escalation = result.summary.escalation
            assert escalation.previous_level == (levels[k - 1] if k else None)
            assert escalation.changed == (escalation.level != (levels[k - 1] if k else "none"))
        changes = sum(r.summary.escalation.changed for r in by_seq)
        assert changes == sum(a != b for a, b in zip(["none", *levels], levels))
        assert open_store(database_url).get(conversation).escalation_level == levels[-1]
        total_changes += changes
    assert total_changes >= len(conversations), "the cues should move every conversation's level"


def test_two_processes_groups_on_the_same_conversations_never_deadlock(analyzer: Analyzer, database_url: str):
    """Two stores (two processes) write groups over the same conversations, one in the
    reverse order of the other: without one lock order, PostgreSQL would find deadlocks."""
    stores = [open_store(database_url, cache_messages=1000) for _ in range(2)]
    names = [f"conv-{k}" for k in range(10)]

    async def caller(recorder: ConversationRecorder, process: int, number: int) -> list[Outcome]:
        rotated = names[number:] + names[:number]  # a process's callers are on different conversations at once
        order = rotated if process == 0 else rotated[::-1]
        return [
            await attempt(recorder, c, customer(f"p{process} c{number}", f"p{process}-{number}-{c}")) for c in order
        ]

    async def body(recorders: list[ConversationRecorder]) -> list[list[Outcome]]:
        callers = [caller(recorder, p, n) for p, recorder in enumerate(recorders) for n in range(6)]
        return list(await asyncio.gather(*callers))

    results = [r for rs in with_recorders(analyzer, stores, body) for r in rs]
    assert all(isinstance(r, RecordedMessage) and not r.duplicate for r in results), [
        r for r in results if not isinstance(r, RecordedMessage)
    ][:3]
    for name in names:
        stored = open_store(database_url).get(name)
        assert stored is not None and [m.seq for m in stored.messages] == list(range(1, 13))
        assert len({m.id for m in stored.messages}) == 12


def test_a_group_whose_commit_fails_answers_every_caller_and_caches_nothing(analyzer: Analyzer, database_url: str):
    store = open_store(database_url, cache_messages=1000)
    failing = [False]

    def fail_commit(_: Connection) -> None:  # the database refusing the COMMIT (a full disk, a lost server)
        if failing[0]:
            raise OSError("the disk is full")

    event.listen(store.database.engine, "commit", fail_commit)

    async def body(recorders: list[ConversationRecorder]) -> list[Outcome]:
        (recorder,) = recorders
        for conversation in ("a", "b"):
            await recorder.record(conversation, customer("hello", f"{conversation}1"))
        failing[0] = True
        try:
            posts = [("a", "a2"), ("b", "b2"), ("a", "a3")]
            return list(await asyncio.gather(*(attempt(recorder, c, customer("lost", mid)) for c, mid in posts)))
        finally:
            failing[0] = False

    outcomes = with_recorders(analyzer, [store], body)
    assert all(isinstance(outcome, OSError) for outcome in outcomes), outcomes
    for conversation in ("a", "b"):
        assert not store.cached_has_message(conversation, f"{conversation}2")
        assert [m.id for m in store.get(conversation).messages] == [f"{conversation}1"]
        assert [m.id for m in open_store(database_url).get(conversation).messages] == [f"{conversation}1"]
