"""A micro-batch through the recorder with the text inspector on: spaCy runs over the batch's
messages together, and only redacted text reaches the database file."""

from __future__ import annotations

import asyncio

import pytest

from nlp.analyzer import Analyzer
from nlp.config import InspectionConfig
from nlp.inspection import build_inspector
from nlp.schemas import IncomingMessage, Role
from service.conversations import ConversationRecorder
from service.microbatch import MicroBatcher
from tests.conftest import open_store

TEXTS = [
    "Thank you so much, the refund arrived and everything works perfectly now!",
    "This is the third time I'm writing. I'm furious, cancel my account today.",
    "Could you tell me what time your store opens on Sunday?",
    "My card was charged twice for order 1042 and I need the money back.",
    "The app keeps crashing whenever I open the settings page.",
    "I love the new update, great job team.",
    "Someone logged into my account from another country, please help urgently!",
    "ok",
    "Where is my parcel? It was due last week and tracking shows nothing.",
    "I'm confused about which plan I should pick for a family of four.",
    "I want to speak to a manager, nobody has helped me.",
    "Please call me back at your earliest convenience regarding my claim.",
]


@pytest.mark.sqlite  # reads the database file's bytes
def test_a_batch_parses_its_messages_together_and_stores_only_redacted_text(
    analyzer, tmp_path, database_url, monkeypatch
):
    """One micro-batch of 12 requests: spaCy runs in batches over all of them (one call
    parses the cue candidates, one finds the entities of all), never message by message;
    and what reaches the database file is the redacted text."""
    redacting = Analyzer(
        analyzer.encoder, analyzer.bundle, analyzer.policy, build_inspector(InspectionConfig(match_categories=False))
    )
    assert redacting.inspector is not None
    nlp = redacting.inspector.nlp
    piped: list[int] = []
    original_pipe = nlp.pipe

    def counting_pipe(texts, *args, **kwargs):
        docs = list(texts)
        piped.append(len(docs))
        return original_pipe(docs, *args, **kwargs)

    monkeypatch.setattr(nlp, "pipe", counting_pipe)
    names = [f"My name is Maria Fernandez and my email is maria{n}@example.com. {text}" for n, text in enumerate(TEXTS)]
    store = open_store(database_url, cache_messages=100)

    async def run():
        batcher = MicroBatcher(redacting, max_messages=64, max_wait_ms=200)
        await batcher.start()
        recorder = ConversationRecorder(redacting, store, batcher, max_messages=100, commit_group_max_messages=64)
        try:
            return await asyncio.gather(
                *(
                    recorder.record(f"c{n}", IncomingMessage(role=Role.customer, text=text))
                    for n, text in enumerate(names)
                )
            ), batcher.batches
        finally:
            await batcher.stop()

    recorded, batches = asyncio.run(run())
    assert batches == 1 and len(recorded) == len(TEXTS)
    # One call parses the cue candidates, one finds every message's entities (on the text alone).
    assert len(piped) == 2 and 0 < piped[0] < len(TEXTS) and piped[1] == len(TEXTS), f"spaCy calls: {piped}"
    store.close()
    written = b"".join(path.read_bytes() for path in tmp_path.glob("s.db*"))
    assert b"example.com" not in written and b"Fernandez" not in written
    assert all("[email]" in r.message.text for r in recorded)
