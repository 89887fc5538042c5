"""The per-message write (`service.conversations.ConversationRecorder`): one transaction per
message with its level, retries that encode and write nothing, `changed` once per change."""

from __future__ import annotations

import asyncio

from nlp.analyzer import Analyzer
from nlp.config import InspectionConfig
from nlp.conversation import ConversationSummarizer
from nlp.inspection import build_inspector
from nlp.schemas import IncomingMessage, Role
from service.conversations import ConversationFull, ConversationRecorder, RecordedMessage
from service.microbatch import MicroBatcher
from service.store import ConversationStore
from tests.conftest import open_store


def record_all(
    analyzer: Analyzer, store: ConversationStore, posts: list[tuple[str, IncomingMessage]], max_messages: int = 100
) -> tuple[list[RecordedMessage | Exception], int]:
    """Record each post in turn with a fresh recorder; the results, and how many messages were encoded."""

    async def run() -> tuple[list[RecordedMessage | Exception], int]:
        batcher = MicroBatcher(analyzer, max_messages=8, max_wait_ms=0)
        await batcher.start()
        recorder = ConversationRecorder(
            analyzer, store, batcher, max_messages=max_messages, commit_group_max_messages=64
        )
        results: list[RecordedMessage | Exception] = []
        try:
            for conversation_id, message in posts:
                try:
                    results.append(await recorder.record(conversation_id, message))
                except ConversationFull as exc:
                    results.append(exc)
        finally:
            await batcher.stop()
        return results, batcher.batched_messages

    return asyncio.run(run())


def customer(text: str, mid: str | None = None) -> IncomingMessage:
    return IncomingMessage(id=mid, role=Role.customer, text=text)


def test_a_retry_encodes_and_writes_nothing(analyzer: Analyzer, database_url: str):
    store = open_store(database_url, cache_messages=100)
    results, encoded = record_all(
        analyzer,
        store,
        [("c1", customer("my card was charged twice", "a")), ("c1", customer("my card was charged twice", "a"))],
    )
    first, retry = results
    assert isinstance(first, RecordedMessage) and isinstance(retry, RecordedMessage)
    assert encoded == 1 and not first.duplicate and retry.duplicate
    assert retry.message.analysis == first.message.analysis
    assert not retry.summary.escalation.changed
    assert [m.id for m in store.get("c1").messages] == ["a"]


def test_a_retry_stored_by_another_process_after_the_check_is_a_duplicate(analyzer: Analyzer, database_url: str):
    ours, theirs = (open_store(database_url, cache_messages=100) for _ in range(2))
    record_all(analyzer, ours, [("c1", customer("hello", "a"))])  # "c1" is now in our cache
    record_all(analyzer, theirs, [("c1", customer("the other process stored this", "b"))])
    assert ours.cached_has_message("c1", "b") is False  # our retry check cannot know
    (result,), encoded = record_all(analyzer, ours, [("c1", customer("posted again", "b"))])
    assert isinstance(result, RecordedMessage) and result.duplicate and encoded == 1
    assert result.message.text == "the other process stored this"
    assert [m.id for m in ours.get("c1").messages] == ["a", "b"]


def test_the_level_is_committed_with_its_message_and_changes_once(analyzer: Analyzer, database_url: str):
    with_cues = Analyzer(
        analyzer.encoder,
        analyzer.bundle,
        analyzer.policy,
        inspector=build_inspector(InspectionConfig(match_categories=False)),
    )
    store = open_store(database_url, cache_messages=0)
    posts = [
        ("c1", customer("hi, a question about my plan")),
        ("c1", customer("I want to speak to a manager right now, this is the third time I ask")),
        ("c1", customer("I want to speak to a manager right now, this is the third time I ask!!")),
    ]
    results, _ = record_all(with_cues, store, posts)
    levels = [r.summary.escalation.level for r in results if isinstance(r, RecordedMessage)]
    changed = [r.summary.escalation.changed for r in results if isinstance(r, RecordedMessage)]
    assert [r.message.id for r in results if isinstance(r, RecordedMessage)] == ["m1", "m2", "m3"]
    assert store.get("c1").escalation_level == levels[-1]
    assert changed == [levels[0] != "none", levels[1] != levels[0], levels[2] != levels[1]]
    assert levels[1] != levels[0], "a human request should move the level"


def test_a_full_conversation_is_refused_and_nothing_is_written(analyzer: Analyzer, database_url: str):
    store = open_store(database_url, cache_messages=100)
    results, _ = record_all(
        analyzer, store, [("c1", customer("one")), ("c1", customer("two")), ("c1", customer("three"))], max_messages=2
    )
    assert isinstance(results[2], ConversationFull)
    assert len(store.get("c1").messages) == 2


def test_the_summary_is_kept_one_message_at_a_time_and_equals_the_full_one(
    analyzer: Analyzer, database_url: str, monkeypatch
):
    """Each new message of a cached conversation adds one message to its kept summary (not
    every stored one); another process writing in between makes the next one rebuild. Every
    summary equals the one recomputed from the stored conversation."""
    added: list[str] = []
    original = ConversationSummarizer.add

    def counting_add(self: ConversationSummarizer, analysis, turn) -> None:
        added.append(analysis.id)
        original(self, analysis, turn)

    monkeypatch.setattr(ConversationSummarizer, "add", counting_add)
    ours, theirs = (open_store(database_url, cache_messages=100) for _ in range(2))
    texts = ["hi, my card was charged twice", "still waiting, this is urgent", "please cancel my account now"]
    results, _ = record_all(analyzer, ours, [("c1", customer(text)) for text in texts])
    assert added == ["m1", "m2", "m3"], "one message added per post"
    record_all(analyzer, theirs, [("c1", customer("the other process stored this"))])
    added.clear()
    (after,), _ = record_all(analyzer, ours, [("c1", customer("and now?"))])
    assert added == ["m1", "m2", "m3", "m4", "m5"], "rebuilt from the stored analyses after another writer"
    for count, result in enumerate([*results, after], start=1):
        assert isinstance(result, RecordedMessage)
        stored = result.conversation
        full = analyzer.summarize(stored.analyses, stored.turns, stored.channel, metadata=stored.metadata)  # type: ignore[arg-type]
        full.escalation.previous_level, full.escalation.changed = (
            result.summary.escalation.previous_level,
            result.summary.escalation.changed,
        )
        assert len(stored.messages) == (count if count <= 3 else 5)
        assert result.summary == full
