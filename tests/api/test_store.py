"""The conversation store: one transaction per message (with its escalation level), and a
bounded memory cache that never goes stale, even with a second writer on the same file."""

from __future__ import annotations

import pytest

from nlp.schemas import IncomingMessage, MessageAnalysis, Role, SentimentResult, UrgencyResult
from service.store import ConversationStore, ConversationTransaction, MessageExists
from tests.conftest import open_store


def analysis(label: str = "neutral") -> MessageAnalysis:
    return MessageAnalysis(
        id="pending",
        role=Role.customer,
        emotions=[],
        sentiment=SentimentResult(label=label, score=0.0, probabilities={label: 1.0}),
        urgency=UrgencyResult(label="low", score=0.0, probabilities={"low": 1.0}),
    )


def message(text: str, mid: str | None = None, role: Role = Role.customer) -> IncomingMessage:
    return IncomingMessage(id=mid, role=role, text=text)


def append(
    store: ConversationStore, conversation_id: str, incoming: IncomingMessage, label: str = "neutral"
) -> ConversationTransaction:
    """One message in its own transaction; the transaction, committed, comes back."""
    with store.transaction(conversation_id) as transaction:
        transaction.append(incoming, analysis(label), stored_text=incoming.text, model_version="v1")
    return transaction


@pytest.fixture
def parsed(monkeypatch) -> list[str]:
    """Every stored analysis the store parses back from the database."""
    seen: list[str] = []
    real = MessageAnalysis.model_validate_json

    def spy(data, *args, **kwargs):
        seen.append(data)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(MessageAnalysis, "model_validate_json", spy)
    return seen


def test_a_new_message_reads_no_stored_analysis_back(database_url: str, parsed: list[str]):
    store = open_store(database_url)
    for i in range(5):
        append(store, "c1", message(f"message {i}"))
    result = append(store, "c1", message("the sixth"))
    assert parsed == []
    assert [m.id for m in result.conversation.messages] == ["m1", "m2", "m3", "m4", "m5", "m6"]
    assert [m.text for m in store.get("c1").messages][-1] == "the sixth"
    assert parsed == []


def test_messages_another_writer_stored_are_read_once(database_url: str, parsed: list[str]):
    first, second = open_store(database_url), open_store(database_url)
    append(first, "c1", message("from the first", "a"))
    append(second, "c1", message("from the second", "b"), "negative")
    assert len(parsed) == 1  # the second store had not seen "a"
    assert first.cached_has_message("c1", "b") is False  # memory alone cannot know yet
    result = append(first, "c1", message("first again", "c"))
    assert [(m.seq, m.id) for m in result.conversation.messages] == [(1, "a"), (2, "b"), (3, "c")]
    assert result.conversation.messages[1].analysis.sentiment.label == "negative"
    assert len(parsed) == 2  # only "b" was new to the first store
    # A message id the other process stored is refused inside the write transaction.
    with pytest.raises(MessageExists):
        append(first, "c1", message("from the second", "b"))
    assert len(first.get("c1").messages) == 3


def test_escalation_level_is_committed_with_its_message(database_url: str):
    store = open_store(database_url)
    with store.transaction("c1") as first:
        first.append(message("hello"), analysis(), stored_text="hello", model_version="v1")
        first.set_escalation_level("monitor")
    assert first.previous_level is None and first.conversation.escalation_level == "monitor"
    with store.transaction("c1") as second:
        assert second.previous_level == "monitor"
        second.append(message("my lawyer will call"), analysis(), stored_text="my lawyer will call", model_version="v1")
        assert second.conversation.messages[-1].text == "my lawyer will call"  # the level sees the new message
        second.set_escalation_level("urgent")
    assert open_store(database_url).get("c1").escalation_level == "urgent"


def test_a_failing_transaction_leaves_nothing_behind(database_url: str):
    store = open_store(database_url)
    append(store, "c1", message("kept", "a"))
    with pytest.raises(RuntimeError), store.transaction("c1") as transaction:
        transaction.append(message("not kept", "b"), analysis(), stored_text="not kept", model_version="v1")
        raise RuntimeError("policy failed")
    assert not store.cached_has_message("c1", "b")  # forgotten (None), or cached without it
    assert [m.id for m in open_store(database_url).get("c1").messages] == ["a"]
    assert [m.id for m in store.get("c1").messages] == ["a"]


def test_the_cache_is_bounded_and_evicted_conversations_read_back(database_url: str, parsed: list[str]):
    store = open_store(database_url, cache_messages=5)
    for conversation in ("c1", "c2", "c3"):
        for i in range(3):
            append(store, conversation, message(f"{conversation} {i}"))
            assert len(store.cache) <= 5
    assert store.cached_has_message("c1", "m1") is None  # evicted
    assert store.cached_has_message("c3", "m3") is True
    assert [m.text for m in store.get("c1").messages] == ["c1 0", "c1 1", "c1 2"]
    assert len(parsed) == 3


def test_message_ids_are_unique_per_conversation(database_url: str):
    store = open_store(database_url, cache_messages=0)
    append(store, "c1", message("once", "x"))
    with pytest.raises(MessageExists):
        append(store, "c1", message("once", "x"))
    assert store.cached_has_message("c1", "x") is None and store.find_message("c1", "x")
    append(store, "c2", message("another conversation may use it", "x"))
    # Default ids skip ids callers already took: "m3" is taken, so the third message is "m3-1".
    append(store, "c1", message("named like a default", "m3"))
    assert [m.id for m in append(store, "c1", message("unnamed")).conversation.messages] == ["x", "m3", "m3-1"]
