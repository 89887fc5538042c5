"""Property tests (hypothesis) on the input schemas and the analyzer: arbitrary Unicode,
empty and huge strings, mixed scripts, control characters and surrogate halves. The
analyzer is the real one (encoder, heads, spaCy cues and redaction); example counts are
modest because each analysis costs tens of milliseconds."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from nlp.analyzer import Analyzer
from nlp.schemas import NOT_BLANK_PATTERN, Message, Transcript
from nlp.text import normalize_text, storable
from service.runtime import load_analyzer
from service.settings import Settings

SCRIPTS = [
    "hello there",
    "Привет, мир",
    "مرحبا بالعالم",
    "你好世界",
    "नमस्ते दुनिया",
    "こんにちは",
    "😡🙏🔥",
    "e\u0301",
    "\u202eevil\u202c",
    "שלום",
    "ﷺ",
    "𝕳𝖊𝖑𝖑𝖔",
    "\u200b",
    "\ufeff",
    "\x00",
    "\x1b[31m",
    "\t\n",
]
# Any code point, surrogate halves included (JSON can carry them).
ANY_CHAR = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.sampled_from(["\x00", "\x1c", "\x85"]))
ANY_TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=60),
    st.lists(st.sampled_from(SCRIPTS), min_size=1, max_size=8).map(" ".join),  # mixed scripts
    st.builds(lambda chunk, n: chunk * n, st.text(ANY_CHAR, min_size=1, max_size=8), st.integers(200, 2500)),  # huge
)
ROLES = st.sampled_from(["customer", "agent", "bot", "system"])
QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODEL = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


def valid_text(text: str) -> bool:
    """Something besides whitespace and control characters once NUL is dropped."""
    return bool(normalize_text(storable(text)))


# --- schemas ---------------------------------------------------------------------------


@QUICK
@given(text=ANY_TEXT, role=ROLES)
@example(text="", role="customer")
@example(text="\x1c\x1f \u3000", role="customer")
@example(text="\ud83d", role="customer")
@example(text="\x00\u200b\x01", role="customer")
def test_message_validation_accepts_exactly_the_non_blank_texts(text: str, role: str):
    try:
        message = Message.model_validate({"role": role, "text": text})
    except ValidationError as exc:
        assert [e["loc"] for e in exc.errors()] == [("text",)]
        assert not valid_text(text)
        assert not re.search(NOT_BLANK_PATTERN, text), "the spec's pattern agrees with the validator"
        return
    assert valid_text(message.text) and re.search(NOT_BLANK_PATTERN, text)
    message.text.encode("utf-8")  # surrogate halves are gone: the text can be stored and sent back
    assert "\x00" not in message.text  # PostgreSQL cannot store NUL


@QUICK
@given(
    texts=st.lists(ANY_TEXT.filter(valid_text), min_size=1, max_size=4),
    metadata=st.dictionaries(
        st.text(ANY_CHAR, max_size=5), st.one_of(st.text(ANY_CHAR, max_size=5), st.integers(), st.none()), max_size=3
    ),
)
def test_a_valid_transcript_survives_a_json_round_trip(texts: list[str], metadata: dict):
    transcript = Transcript.model_validate(
        {"messages": [{"role": "customer", "text": t} for t in texts], "metadata": metadata}
    )
    again = Transcript.model_validate_json(transcript.model_dump_json())
    assert again == transcript


@QUICK
@given(
    body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(ANY_CHAR),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=12,
    )
)
def test_arbitrary_json_is_a_validation_error_or_a_transcript(body):
    try:
        Transcript.model_validate(body)
    except ValidationError:
        pass  # answered 422 by the service; anything else would be a 500


# --- the analyzer ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_analyzer() -> Analyzer:
    """The analyzer as served: policy, encoder, heads, cue detection and redaction."""
    return load_analyzer(Settings(_env_file=None))


@MODEL
@given(
    texts=st.lists(ANY_TEXT.filter(valid_text), min_size=1, max_size=3), roles=st.lists(ROLES, min_size=3, max_size=3)
)
@example(texts=["a" * 20_000, "word " * 4000], roles=["customer"] * 3)
@example(texts=["\u200bok", "\x00\x01no", "\ufeffyes"], roles=["customer"] * 3)
@example(texts=["I'll cancel \ud83d and sue you, call +1 555 123 4567"], roles=["customer"] * 3)
@example(texts=[" ".join(SCRIPTS)], roles=["customer"] * 3)
def test_the_analyzer_answers_every_valid_transcript(full_analyzer: Analyzer, texts: list[str], roles: list[str]):
    transcript = Transcript.model_validate(
        {"messages": [{"role": role, "text": text} for text, role in zip(texts, roles)]}
    )
    result = full_analyzer.analyze(transcript)
    assert [m.id for m in result.messages] == [f"m{i}" for i in range(1, len(texts) + 1)]
    for message, text in zip(result.messages, transcript.messages):
        assert abs(sum(message.sentiment.probabilities.values()) - 1) < 1e-3
        assert -1 <= message.sentiment.score <= 1
        if message.role.value != "customer":  # urgency is a property of the customer's messages
            assert message.urgency is None
        else:
            assert message.urgency is not None
            assert abs(sum(message.urgency.probabilities.values()) - 1) < 1e-3
            assert 0 <= message.urgency.score <= 1
        assert message.emotions and set(message.warnings) <= {"truncated", "no_words"}
        # Whitespace-delimited ASCII words give at least one word piece each; "AA¢AA¢..." is
        # one word to the tokenizer (¢ is not punctuation to BERT), so \b would overcount.
        if len(re.findall(r"(?<!\S)[A-Za-z]{2,12}(?!\S)", text.text)) > 300:  # more words than the encoder reads
            assert "truncated" in message.warnings
    assert result.conversation.escalation.level in {"none", "monitor", "escalate", "urgent"}
    json.loads(result.model_dump_json())  # the answer serialises: no 500 on the way out


def test_huge_and_emoji_only_texts_are_documented_partial_results(full_analyzer: Analyzer):
    transcript = Transcript.model_validate(
        {
            "messages": [
                {"role": "customer", "text": "refund " * 3000},
                {"role": "customer", "text": "😡" * 500},
                {"role": "customer", "text": "x" * 20_000},
            ]
        }
    )
    many_words, emoji, one_huge_word = full_analyzer.analyze(transcript).messages
    assert "truncated" in many_words.warnings
    assert "no_words" in emoji.warnings
    assert one_huge_word.warnings == []  # one word piece ([UNK]) for a 20,000-letter "word"
