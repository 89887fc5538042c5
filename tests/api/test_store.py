"""The conversation store: one transaction per message (with its escalation level), and a
bounded memory cache that never goes stale, even with a second writer on the same file."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.schemas import IncomingMessage, MessageAnalysis, Role, SentimentResult, UrgencyResult
from service import store as store_module
from service.store import ConversationFull, ConversationStore, StoredConversation


def analysis(label: str = "neutral") -> MessageAnalysis:
    return MessageAnalysis(
        id="pending", role=Role.customer, emotions=[],
        sentiment=SentimentResult(label=label, score=0.0, probabilities={label: 1.0}),
        urgency=UrgencyResult(label="low", score=0.0, probabilities={"low": 1.0}),
    )


def open_store(folder: Path, cache_messages: int = 100) -> ConversationStore:
    """A store on the one file of the folder: several calls act like several server processes."""
    return ConversationStore(folder / "s.db", cache_messages=cache_messages)


def message(text: str, mid: str | None = None, role: Role = Role.customer) -> IncomingMessage:
    return IncomingMessage(id=mid, role=role, text=text)


@pytest.fixture
def parsed(monkeypatch) -> list[str]:
    """Every stored analysis the store parses back from SQLite."""
    seen: list[str] = []
    real = MessageAnalysis.model_validate_json

    def spy(data, *args, **kwargs):
        seen.append(data)
        return real(data, *args, **kwargs)

    monkeypatch.setattr(store_module.MessageAnalysis, "model_validate_json", spy)
    return seen


def test_a_new_message_reads_no_stored_analysis_back(tmp_path: Path, parsed: list[str]):
    store = open_store(tmp_path)
    for i in range(5):
        store.append("c1", message(f"message {i}"), analysis(), "v1", 100)
    result = store.append("c1", message("the sixth"), analysis(), "v1", 100)
    assert parsed == []
    assert [m.id for m in result.conversation.messages] == ["m1", "m2", "m3", "m4", "m5", "m6"]
    assert [m.text for m in store.get("c1").messages][-1] == "the sixth"
    assert parsed == []


def test_messages_another_writer_stored_are_read_once(tmp_path: Path, parsed: list[str]):
    first, second = open_store(tmp_path), open_store(tmp_path)
    first.append("c1", message("from the first", "a"), analysis(), "v1", 100)
    second.append("c1", message("from the second", "b"), analysis("negative"), "v1", 100)
    assert len(parsed) == 1  # the second store had not seen "a"
    assert first.cached_has_message("c1", "b") is False  # memory alone cannot know yet
    result = first.append("c1", message("first again", "c"), analysis(), "v1", 100)
    assert [(m.seq, m.id) for m in result.conversation.messages] == [(1, "a"), (2, "b"), (3, "c")]
    assert result.conversation.messages[1].analysis.sentiment.label == "negative"
    assert len(parsed) == 2  # only "b" was new to the first store
    # A retry the other process stored is still caught inside the write transaction.
    retry = first.append("c1", message("from the second", "b"), analysis(), "v1", 100)
    assert retry.duplicate and retry.message.text == "from the second"
    assert len(first.get("c1").messages) == 3


def test_escalation_level_is_committed_with_its_message(tmp_path: Path):
    store = open_store(tmp_path)
    seen: list[StoredConversation] = []

    def level(conversation: StoredConversation) -> str:
        seen.append(conversation)
        return "urgent" if any("lawyer" in m.text for m in conversation.messages) else "monitor"

    first = store.append("c1", message("hello"), analysis(), "v1", 100, escalation_level=level)
    assert first.previous_level is None and first.conversation.escalation_level == "monitor"
    second = store.append("c1", message("my lawyer will call"), analysis(), "v1", 100, escalation_level=level)
    assert seen[-1].messages[-1].text == "my lawyer will call"  # the level sees the new message
    assert second.previous_level == "monitor"
    assert open_store(tmp_path).get("c1").escalation_level == "urgent"


def test_a_failing_level_leaves_nothing_behind(tmp_path: Path):
    store = open_store(tmp_path)
    store.append("c1", message("kept", "a"), analysis(), "v1", 100)

    def broken(conversation: StoredConversation) -> str:
        raise RuntimeError("policy failed")

    with pytest.raises(RuntimeError):
        store.append("c1", message("not kept", "b"), analysis(), "v1", 100, escalation_level=broken)
    assert store.cached_has_message("c1", "b") is False
    assert [m.id for m in open_store(tmp_path).get("c1").messages] == ["a"]
    assert [m.id for m in store.get("c1").messages] == ["a"]


def test_the_cache_is_bounded_and_evicted_conversations_read_back(tmp_path: Path, parsed: list[str]):
    store = open_store(tmp_path, cache_messages=5)
    for conversation in ("c1", "c2", "c3"):
        for i in range(3):
            store.append(conversation, message(f"{conversation} {i}"), analysis(), "v1", 100)
            assert len(store.cache) <= 5
    assert store.cached_has_message("c1", "m1") is None  # evicted
    assert store.cached_has_message("c3", "m3") is True
    assert [m.text for m in store.get("c1").messages] == ["c1 0", "c1 1", "c1 2"]
    assert len(parsed) == 3


def test_duplicates_and_the_message_limit(tmp_path: Path):
    store = open_store(tmp_path, cache_messages=0)
    store.append("c1", message("once", "x"), analysis(), "v1", 2)
    again = store.append("c1", message("once", "x"), analysis(), "v1", 2)
    assert again.duplicate and len(again.conversation.messages) == 1
    assert store.cached_has_message("c1", "x") is None and store.find_message("c1", "x")
    store.append("c1", message("twice"), analysis(), "v1", 2)
    with pytest.raises(ConversationFull):
        store.append("c1", message("three times"), analysis(), "v1", 2)
    assert len(store.get("c1").messages) == 2
